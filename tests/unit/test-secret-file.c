/* secret-file.c: one rule for every secret file (owner, mode, size, content), and its users
 * (the TOTP secret, the SIM PIN file) refusing what breaks it. */
#include "error.h"
#include "modem-facts.h"
#include "secret-file.h"
#include "totp.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dir;

static char *
make(const char *name, const char *content, gssize len, int mode)
{
    char *path = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(path, content, len, NULL));
    g_assert_cmpint(g_chmod(path, mode), ==, 0);
    return path;
}

static void
test_rule(void)
{
    static const struct {
        const char *name;
        int mode;
        const char *error; /* NULL: readable */
    } cases[] = {
        {"ok-600", 0600, NULL},
        {"ok-400", 0400, NULL},
        {"group-read", 0640, "accessible to group or others (mode 0640)"},
        {"group-write", 0620, "accessible to group or others (mode 0620)"},
        {"other-read", 0604, "accessible to group or others (mode 0604)"},
        {"world", 0666, "chmod go-rwx"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = make(cases[i].name, "s3cret\n", -1, cases[i].mode);
        g_autoptr(GError) error = NULL;
        g_autofree char *line = ca_secret_file_read_line(path, &error);

        if (!cases[i].error) {
            g_assert_no_error(error);
            g_assert_cmpstr(line, ==, "s3cret");
        } else {
            g_assert_null(line);
            g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG);
            g_assert_nonnull(strstr(error->message, cases[i].error));
        }
    }
}

static void
test_owner(void)
{
    g_autofree char *path = make("owner", "s3cret\n", -1, 0600);
    g_autoptr(GError) error = NULL;
    g_autofree char *line = NULL;

    if (geteuid() != 0) {
        g_test_skip("chown to another user needs root");
        return;
    }
    g_assert_cmpint(chown(path, 4242, 4242), ==, 0);
    line = ca_secret_file_read_line(path, &error);
    g_assert_null(line);
    g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG);
    g_assert_nonnull(strstr(error->message, "owned by uid 4242"));
}

static void
test_content(void)
{
    g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL, e4 = NULL, e5 = NULL;
    g_autofree char *crlf = make("crlf", "  pw with spaces\r\nsecond\n", -1, 0600);
    g_autofree char *empty = make("empty", "", 0, 0600);
    g_autofree char *blank = make("blank", "\nsecond line\n", -1, 0600);
    g_autofree char *nul = make("nul", "pw\0x\n", 5, 0600);
    g_autofree char *big_text = g_strnfill(CA_SECRET_FILE_MAX + 1, 'a');
    g_autofree char *big = make("big", big_text, -1, 0600);
    g_autofree char *missing = g_build_filename(dir, "missing", NULL);
    g_autofree char *l1 = ca_secret_file_read_line(crlf, &e1);
    g_autofree char *l2 = ca_secret_file_read_line(empty, &e2);
    g_autofree char *l3 = ca_secret_file_read_line(blank, &e3);
    g_autoptr(GBytes) b4 = ca_secret_file_read(nul, &e4);
    g_autoptr(GBytes) b5 = ca_secret_file_read(big, &e5);
    g_autoptr(GError) e6 = NULL, e7 = NULL;
    g_autoptr(GBytes) b6 = ca_secret_file_read(missing, &e6);
    g_autoptr(GBytes) b7 = ca_secret_file_read(dir, &e7);

    g_assert_no_error(e1);
    g_assert_cmpstr(l1, ==, "  pw with spaces");
    g_assert_null(l2);
    g_assert_error(e2, CA_ERROR, CA_ERROR_INVALID_CONFIG);
    g_assert_null(l3);
    g_assert_error(e3, CA_ERROR, CA_ERROR_INVALID_CONFIG);
    g_assert_nonnull(strstr(e3->message, "first line is empty"));
    g_assert_error(e4, CA_ERROR, CA_ERROR_INVALID_CONFIG);
    g_assert_error(e5, CA_ERROR, CA_ERROR_INVALID_CONFIG);
    g_assert_error(e6, CA_ERROR, CA_ERROR_IO);
    g_assert_error(e7, CA_ERROR, CA_ERROR_INVALID_CONFIG);
    g_assert_null(b4);
    g_assert_null(b5);
    g_assert_null(b6);
    g_assert_null(b7);
}

/* The users: a group-writable TOTP secret and a world-readable PIN file are refused. */
static void
test_users(void)
{
    g_autofree char *totp = make("totp", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\n", -1, 0620);
    g_autofree char *pin = make("pin", "1234\n", -1, 0644);
    g_autoptr(GError) e1 = NULL, e2 = NULL, e3 = NULL;
    g_autoptr(GBytes) secret = ca_totp_load_secret(totp, &e1);
    g_autofree char *p = ca_modem_read_pin_file(pin, &e2);
    g_autofree char *p2 = NULL;

    g_assert_null(secret);
    g_assert_error(e1, CA_ERROR, CA_ERROR_INVALID_CONFIG);
    g_assert_null(p);
    g_assert_error(e2, CA_ERROR, CA_ERROR_INVALID_CONFIG);
    g_assert_cmpint(g_chmod(pin, 0600), ==, 0);
    p2 = ca_modem_read_pin_file(pin, &e3);
    g_assert_no_error(e3);
    g_assert_cmpstr(p2, ==, "1234");
}

int
main(int argc, char **argv)
{
    int rc;
    g_autoptr(GDir) d = NULL;
    const char *name;

    g_test_init(&argc, &argv, NULL);
    dir = g_dir_make_tmp("test-secret-file-XXXXXX", NULL);
    g_test_add_func("/secret-file/rule", test_rule);
    g_test_add_func("/secret-file/owner", test_owner);
    g_test_add_func("/secret-file/content", test_content);
    g_test_add_func("/secret-file/users", test_users);
    rc = g_test_run();
    d = g_dir_open(dir, 0, NULL);
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        g_remove(path);
    }
    g_rmdir(dir);
    g_free(dir);
    return rc;
}
