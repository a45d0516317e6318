/* Unit tests for spool: FIFO order across reopen, replace, limits, leftovers of an
 * interrupted write, quarantine, names. */
#include "error.h"
#include "spool.h"

#include <glib/gstdio.h>
#include <string.h>

static char *
make_dir(void)
{
    g_autoptr(GError) error = NULL;
    char *dir = g_dir_make_tmp("ca-spool-XXXXXX", &error);

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

/*****************************************************************************/
/* spool */

static void
test_spool_fifo(void)
{
    g_autofree char *dir = make_dir();
    g_autofree char *sub = g_build_filename(dir, "a", "b", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(CaSpool) s = ca_spool_open(sub, 100, 1 << 20, &error);
    g_auto(GStrv) names = NULL;
    g_autofree char *first = NULL;
    g_autofree char *data = NULL;
    gsize len = 0;

    g_assert_no_error(error);
    for (int i = 0; i < 12; i++) {
        g_autofree char *rec = g_strdup_printf("record %d", i);
        g_autofree char *name = NULL;
        g_assert_true(ca_spool_append(s, rec, strlen(rec), &name, &error));
        g_assert_no_error(error);
        if (i == 0)
            first = g_strdup(name);
    }
    g_assert_cmpstr(first, ==, "00000000000000000000");
    g_assert_cmpuint(ca_spool_count(s), ==, 12);
    g_assert_cmpuint(ca_spool_bytes(s), ==, 10 * 8 + 2 * 9);
    g_assert_true(ca_spool_remove(s, first, &error));
    g_assert_cmpstr(ca_spool_first(s), ==, "00000000000000000001");
    g_clear_pointer(&s, ca_spool_free);

    /* Reopened: same order; new records go after the highest sequence ever present. */
    s = ca_spool_open(sub, 100, 1 << 20, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(ca_spool_count(s), ==, 11);
    g_assert_true(ca_spool_append(s, "x", 1, NULL, &error));
    names = ca_spool_list(s);
    g_assert_cmpuint(g_strv_length(names), ==, 12);
    g_assert_cmpstr(names[0], ==, "00000000000000000001");
    g_assert_cmpstr(names[10], ==, "00000000000000000011");
    g_assert_cmpstr(names[11], ==, "00000000000000000012");
    data = ca_spool_get(s, names[10], &len, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(data, ==, "record 11");
    g_assert_cmpuint(len, ==, 9);
    rm_rf(dir);
}

static void
test_spool_put_replace(void)
{
    g_autofree char *dir = make_dir();
    g_autoptr(GError) error = NULL;
    g_autoptr(CaSpool) s = ca_spool_open(dir, 2, 20, &error);
    g_autofree char *got = NULL;

    g_assert_true(ca_spool_put(s, "in-abc", "0123456789", 10, &error));
    g_assert_true(ca_spool_put(s, "in-abc", "01234", 5, &error));
    g_assert_cmpuint(ca_spool_bytes(s), ==, 5);
    g_assert_cmpuint(ca_spool_count(s), ==, 1);
    got = ca_spool_get(s, "in-abc", NULL, &error);
    g_assert_cmpstr(got, ==, "01234");
    g_assert_true(ca_spool_contains(s, "in-abc"));
    g_assert_false(ca_spool_contains(s, "in-xyz"));
    /* Byte bound: a new 16-byte record would make 21 > 20. */
    g_assert_false(ca_spool_put(s, "b", "0123456789abcdef", 16, &error));
    g_assert_error(error, CA_ERROR, CA_ERROR_LIMIT);
    g_clear_error(&error);
    g_assert_true(ca_spool_put(s, "b", "0123456789abcde", 15, &error));
    /* Count bound: 2 records. */
    g_assert_false(ca_spool_put(s, "c", "", 0, &error));
    g_assert_error(error, CA_ERROR, CA_ERROR_LIMIT);
    g_clear_error(&error);
    /* Replacing in place is allowed at the count bound, and shrinking always. */
    g_assert_true(ca_spool_put(s, "b", "0", 1, &error));
    g_assert_no_error(error);
    /* Removing a missing record is fine. */
    g_assert_true(ca_spool_remove(s, "nothing", &error));
    rm_rf(dir);
}

static void
test_spool_leftovers(void)
{
    g_autofree char *dir = make_dir();
    g_autofree char *tmp = g_build_filename(dir, "00000000000000000007.tmp", NULL);
    g_autofree char *rec = g_build_filename(dir, "00000000000000000003", NULL);
    g_autofree char *foreign = g_build_filename(dir, "README txt", NULL);
    g_autofree char *bad = g_build_filename(dir, "00000000000000000004.bad", NULL);
    g_autofree char *quarantined = g_build_filename(dir, "00000000000000000003.bad", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(CaSpool) s = NULL;
    g_autofree char *name = NULL;

    g_assert_true(g_file_set_contents(tmp, "half", -1, NULL));
    g_assert_true(g_file_set_contents(rec, "{}", -1, NULL));
    g_assert_true(g_file_set_contents(foreign, "x", -1, NULL));
    g_assert_true(g_file_set_contents(bad, "x", -1, NULL));
    s = ca_spool_open(dir, 10, 1000, &error);
    g_assert_no_error(error);
    /* The interrupted write is gone, the others are not records. */
    g_assert_false(g_file_test(tmp, G_FILE_TEST_EXISTS));
    g_assert_true(g_file_test(foreign, G_FILE_TEST_EXISTS));
    g_assert_cmpuint(ca_spool_count(s), ==, 1);
    g_assert_true(ca_spool_append(s, "y", 1, &name, &error));
    g_assert_cmpstr(name, ==, "00000000000000000004");
    g_assert_true(ca_spool_quarantine(s, "00000000000000000003", &error));
    g_assert_true(g_file_test(quarantined, G_FILE_TEST_EXISTS));
    g_assert_cmpuint(ca_spool_count(s), ==, 1);
    rm_rf(dir);
}

static void
test_spool_names(void)
{
    g_autofree char *long_name = g_strnfill(CA_SPOOL_MAX_NAME + 1, 'a');
    g_autofree char *max_name = g_strnfill(CA_SPOOL_MAX_NAME, 'a');

    g_assert_true(ca_spool_name_is_valid("in-0123abc"));
    g_assert_true(ca_spool_name_is_valid("a.b_c:d-e"));
    g_assert_true(ca_spool_name_is_valid(max_name));
    g_assert_false(ca_spool_name_is_valid(long_name));
    g_assert_false(ca_spool_name_is_valid(""));
    g_assert_false(ca_spool_name_is_valid(".hidden"));
    g_assert_false(ca_spool_name_is_valid("../etc"));
    g_assert_false(ca_spool_name_is_valid("a/b"));
    g_assert_false(ca_spool_name_is_valid("x.tmp"));
    g_assert_false(ca_spool_name_is_valid("x.bad"));
}

static void
test_spool_unwritable(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaSpool) s = ca_spool_open("/proc/self/no-such-dir", 10, 100, &error);

    g_assert_null(s);
    g_assert_error(error, CA_ERROR, CA_ERROR_IO);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/spool/fifo", test_spool_fifo);
    g_test_add_func("/spool/put-replace-limits", test_spool_put_replace);
    g_test_add_func("/spool/leftovers", test_spool_leftovers);
    g_test_add_func("/spool/names", test_spool_names);
    g_test_add_func("/spool/unwritable", test_spool_unwritable);
    return g_test_run();
}
