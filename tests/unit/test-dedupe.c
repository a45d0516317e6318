/* Unit tests for dedupe: latest value wins across reopen, count and age bounds,
 * compaction, torn and corrupt journal lines. */
#include "autocleanups.h"
#include "dedupe.h"
#include "error.h"

#include <glib/gstdio.h>
#include <string.h>

static char *
make_dir(void)
{
    g_autoptr(GError) error = NULL;
    char *dir = g_dir_make_tmp("ca-dedupe-XXXXXX", &error);

    g_assert_no_error(error);
    return dir;
}

static void
rm_rf(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        if (g_file_test(path, G_FILE_TEST_IS_DIR))
            rm_rf(path);
        else
            g_unlink(path);
    }
    g_rmdir(dir);
}

static cJSON *
status(const char *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", s);
    return o;
}

static const char *
status_of(CaDedupe *d, const char *id)
{
    const cJSON *v = ca_dedupe_lookup(d, id);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(v, "status");
    return cJSON_IsString(s) ? s->valuestring : NULL;
}

static void
test_dedupe_latest(void)
{
    g_autofree char *dir = make_dir();
    g_autofree char *path = g_build_filename(dir, "sub", "out.journal", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(CaDedupe) d = ca_dedupe_open(path, 100, 3600, 1000, &error);
    g_autoptr(cJSON) queued = status("queued");
    g_autoptr(cJSON) sent = status("sent");

    g_assert_no_error(error);
    g_assert_null(ca_dedupe_lookup(d, "a"));
    g_assert_true(ca_dedupe_record(d, "a", queued, 1000, &error));
    g_assert_true(ca_dedupe_record(d, "b", queued, 1001, &error));
    g_assert_true(ca_dedupe_record(d, "a", sent, 1002, &error));
    g_assert_cmpstr(status_of(d, "a"), ==, "sent");
    g_assert_cmpint(ca_dedupe_get_time(d, "a"), ==, 1002);
    g_clear_pointer(&d, ca_dedupe_free);

    d = ca_dedupe_open(path, 100, 3600, 1003, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(ca_dedupe_count(d), ==, 2);
    g_assert_cmpstr(status_of(d, "a"), ==, "sent");
    g_assert_cmpstr(status_of(d, "b"), ==, "queued");
    g_assert_cmpuint(ca_dedupe_journal_lines(d), ==, 3);
    rm_rf(dir);
}

static void
collect_ids(const char *id, const cJSON *value, gint64 t, gpointer data)
{
    g_string_append_printf(data, "%s,", id);
}

/* A boot-time clock the test moves: *user_data seconds. */
static gint64
fake_boot(gpointer user_data)
{
    return *(gint64 *) user_data;
}

static void
test_dedupe_bounds(void)
{
    g_autofree char *dir = make_dir();
    g_autofree char *path = g_build_filename(dir, "j", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(CaDedupe) d = ca_dedupe_open(path, 3, 100, 0, &error);
    g_autoptr(cJSON) v = status("sent");
    g_autoptr(GString) order = g_string_new(NULL);
    gint64 boot = 0; /* time really passes: the boot clock keeps pace with the wall clock */

    ca_dedupe_set_monotonic(d, fake_boot, &boot);
    boot = 10;
    g_assert_true(ca_dedupe_record(d, "a", v, 10, &error));
    boot = 20;
    g_assert_true(ca_dedupe_record(d, "b", v, 20, &error));
    boot = 30;
    g_assert_true(ca_dedupe_record(d, "c", v, 30, &error));
    /* Updating a moves it to the back; d then pushes out the least recent, b. */
    boot = 40;
    g_assert_true(ca_dedupe_record(d, "a", v, 40, &error));
    boot = 50;
    g_assert_true(ca_dedupe_record(d, "d", v, 50, &error));
    ca_dedupe_foreach(d, collect_ids, order);
    g_assert_cmpstr(order->str, ==, "c,a,d,");
    /* Age: at 135 everything older than 35 goes (c). */
    boot = 135;
    g_assert_true(ca_dedupe_expire(d, 135, &error));
    g_assert_null(ca_dedupe_lookup(d, "c"));
    g_assert_nonnull(ca_dedupe_lookup(d, "a"));
    g_clear_pointer(&d, ca_dedupe_free);
    /* Reopening later applies the age bound to what was stored. */
    d = ca_dedupe_open(path, 3, 100, 145, &error);
    g_assert_no_error(error);
    g_assert_null(ca_dedupe_lookup(d, "a"));
    g_assert_nonnull(ca_dedupe_lookup(d, "d"));
    g_assert_cmpuint(ca_dedupe_count(d), ==, 1);
    g_assert_cmpuint(ca_dedupe_journal_lines(d), ==, 1);
    rm_rf(dir);
}

static void
test_dedupe_compaction(void)
{
    g_autofree char *dir = make_dir();
    g_autofree char *path = g_build_filename(dir, "j", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(CaDedupe) d = ca_dedupe_open(path, 10, 1000000, 0, &error);
    g_autoptr(cJSON) v = status("sent");

    /* One id updated many times: the journal never grows past 2 x live + slack. */
    for (int i = 0; i < 2000; i++) {
        g_assert_true(ca_dedupe_record(d, "same", v, i, &error));
        g_assert_cmpuint(ca_dedupe_journal_lines(d), <=, 2 + 256 + 1);
    }
    g_clear_pointer(&d, ca_dedupe_free);
    d = ca_dedupe_open(path, 10, 1000000, 2000, &error);
    g_assert_cmpuint(ca_dedupe_count(d), ==, 1);
    g_assert_cmpint(ca_dedupe_get_time(d, "same"), ==, 1999);
    rm_rf(dir);
}

/* The wall clock steps 31 days forward (NTP's first answer on a board with no real-time
 * clock) while only seconds pass: no id is forgotten, and the moved times are what the
 * journal holds after a restart. A step back is followed the same way. */
static void
test_dedupe_clock_jump(void)
{
    g_autofree char *dir = make_dir();
    g_autofree char *path = g_build_filename(dir, "j", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(CaDedupe) d = ca_dedupe_open(path, 10, 30 * 86400, 1000, &error);
    g_autoptr(cJSON) v = status("sent");
    const gint64 jump = 31 * 86400;
    gint64 boot = 500;

    g_assert_no_error(error);
    ca_dedupe_set_monotonic(d, fake_boot, &boot);
    g_assert_true(ca_dedupe_record(d, "a", v, 1000, &error));
    boot += 10;
    g_assert_true(ca_dedupe_expire(d, 1010 + jump, &error));
    g_assert_no_error(error);
    g_assert_nonnull(ca_dedupe_lookup(d, "a"));
    g_assert_cmpint(ca_dedupe_get_time(d, "a"), ==, 1000 + jump);
    boot += 10;
    g_assert_true(ca_dedupe_record(d, "b", v, 1020 + jump, &error));
    g_clear_pointer(&d, ca_dedupe_free);
    /* After a restart, the stored times are the moved ones: both still known. */
    d = ca_dedupe_open(path, 10, 30 * 86400, 1030 + jump, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(ca_dedupe_count(d), ==, 2);
    g_assert_cmpint(ca_dedupe_get_time(d, "a"), ==, 1000 + jump);
    /* A step back of a year does not keep ids for ever: they still age from their moved
     * times and go 30 days of boot time later. */
    boot = 1000;
    ca_dedupe_set_monotonic(d, fake_boot, &boot);
    g_assert_true(ca_dedupe_expire(d, 1030 + jump - 365 * 86400, &error));
    g_assert_cmpuint(ca_dedupe_count(d), ==, 2);
    boot += 30 * 86400 + 60;
    g_assert_true(ca_dedupe_expire(d, 1030 + jump - 365 * 86400 + 30 * 86400 + 60, &error));
    g_assert_cmpuint(ca_dedupe_count(d), ==, 0);
    rm_rf(dir);
}

static void
test_dedupe_torn(void)
{
    g_autofree char *dir = make_dir();
    g_autofree char *path = g_build_filename(dir, "j", NULL);
    const char *journal = "{\"id\":\"a\",\"t\":5,\"v\":{\"status\":\"queued\"}}\n"
                          "garbage line\n"
                          "{\"id\":\"b\",\"t\":6}\n"
                          "{\"id\":\"a\",\"t\":7,\"v\":{\"status\":\"sent\"}}\n"
                          "{\"id\":\"c\",\"t\":8,\"v\":{\"sta";
    g_autoptr(GError) error = NULL;
    g_autoptr(CaDedupe) d = NULL;
    g_autoptr(cJSON) v = status("delivered");
    g_autofree char *text = NULL;

    g_assert_true(g_file_set_contents(path, journal, -1, NULL));
    d = ca_dedupe_open(path, 10, 1000, 10, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(ca_dedupe_count(d), ==, 1);
    g_assert_cmpstr(status_of(d, "a"), ==, "sent");
    /* The rewrite dropped the bad lines, so a new record is a clean line. */
    g_assert_true(ca_dedupe_record(d, "c", v, 11, &error));
    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_assert_cmpstr(text, ==,
                    "{\"id\":\"a\",\"t\":7,\"v\":{\"status\":\"sent\"}}\n"
                    "{\"id\":\"c\",\"t\":11,\"v\":{\"status\":\"delivered\"}}\n");
    /* The damaged lines (not the torn last one a power cut leaves) are kept in <path>.bad
     * and counted, so the owner can report them instead of forgetting ids silently. */
    g_assert_cmpuint(ca_dedupe_get_quarantined(d), ==, 2);
    {
        g_autofree char *bad_path = g_strconcat(path, ".bad", NULL);
        g_autofree char *bad = NULL;

        g_assert_true(g_file_get_contents(bad_path, &bad, NULL, NULL));
        g_assert_cmpstr(bad, ==, "garbage line\n{\"id\":\"b\",\"t\":6}\n");
    }
    /* Reopened: nothing damaged any more. */
    g_clear_pointer(&d, ca_dedupe_free);
    d = ca_dedupe_open(path, 10, 1000, 12, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(ca_dedupe_get_quarantined(d), ==, 0);
    rm_rf(dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/dedupe/latest", test_dedupe_latest);
    g_test_add_func("/dedupe/bounds", test_dedupe_bounds);
    g_test_add_func("/dedupe/compaction", test_dedupe_compaction);
    g_test_add_func("/dedupe/torn", test_dedupe_torn);
    g_test_add_func("/dedupe/clock-jump", test_dedupe_clock_jump);
    return g_test_run();
}
