/* The ModemManager adapter's typed settings (modem-settings.c): loaded from the built-in
 * defaults (every key name must be in the table: a typo is a critical, which fails here),
 * from a file that sets every key, and compared for reload. */
#include "modem-settings.h"

#include <string.h>

static CaConfig *
load(const char *text)
{
    g_autoptr(GError) error = NULL;
    CaConfig *config = ca_config_load_from_data("test.conf", text, strlen(text), &error);

    g_assert_no_error(error);
    g_assert_nonnull(config);
    return config;
}

static void
test_modem_defaults(void)
{
    g_autoptr(CaConfig) config = load("");
    CaModemSettings s = {0};

    ca_modem_settings_load(&s, config);
    g_assert_cmpstr(s.match, ==, "");
    g_assert_true(s.enable);
    g_assert_cmpstr(s.pin_file, ==, "");
    g_assert_cmpuint(s.signal_rate, ==, 30);
    g_assert_cmpstr(s.state_dir, ==, ca_config_get_string(config, "agent", "state-dir"));
    ca_modem_settings_clear(&s);
    g_assert_null(s.match);
}

static void
test_sms_defaults(void)
{
    g_autoptr(CaConfig) config = load("");
    CaSmsSettings s = {0};

    ca_sms_settings_load(&s, config);
    g_assert_true(s.enabled);
    g_assert_false(s.keep_on_modem);
    g_assert_cmpuint(s.max_parts, ==, 10);
    g_assert_cmpuint(s.send_timeout_s, ==, 120);
    g_assert_cmpuint(s.rate_limit, ==, 30);
    g_assert_cmpuint(s.retries, ==, 3);
    g_assert_cmpuint(s.spool_limit, ==, 1000);
    g_assert_cmpuint(s.dedupe_limit, ==, 10000);
    g_assert_cmpuint(s.dedupe_days, ==, 30);
    g_assert_cmpuint(s.receive_timeout_s, ==, 60);
    g_assert_cmpuint(s.resync_delay_s, ==, 60);
    /* Hours, not seconds: each automatic resync on cellular costs the data link. */
    g_assert_cmpuint(s.resync_interval_s, >=, 3600);
    g_assert_cmpuint(s.partial_after_s, >=, 3600);
    g_assert_cmpuint(s.storage_warn, ==, 20);
    ca_sms_settings_clear(&s);
}

static void
test_every_key_read(void)
{
    g_autoptr(CaConfig) config = load("[modem]\nmatch=861234567890124\nenable=false\n"
                                      "pin-file=/etc/pin\n[telemetry]\nsignal-rate=5\n"
                                      "[agent]\nstate-dir=/tmp/x\n"
                                      "[sms]\nenabled=false\nkeep-on-modem=true\nmax-parts=3\n"
                                      "send-timeout=9\nrate-limit=7\nretries=1\nspool-limit=11\n"
                                      "dedupe-limit=123\ndedupe-days=2\nreceive-timeout=6\n"
                                      "resync-delay=4\nresync-interval=600\npartial-after=20\n"
                                      "storage-warn=8\n");
    CaModemSettings m = {0};
    CaSmsSettings s = {0};

    ca_modem_settings_load(&m, config);
    g_assert_cmpstr(m.match, ==, "861234567890124");
    g_assert_false(m.enable);
    g_assert_cmpstr(m.pin_file, ==, "/etc/pin");
    g_assert_cmpuint(m.signal_rate, ==, 5);
    g_assert_cmpstr(m.state_dir, ==, "/tmp/x");
    ca_sms_settings_load(&s, config);
    g_assert_false(s.enabled);
    g_assert_true(s.keep_on_modem);
    g_assert_cmpuint(s.max_parts, ==, 3);
    g_assert_cmpuint(s.send_timeout_s, ==, 9);
    g_assert_cmpuint(s.rate_limit, ==, 7);
    g_assert_cmpuint(s.retries, ==, 1);
    g_assert_cmpuint(s.spool_limit, ==, 11);
    g_assert_cmpuint(s.dedupe_limit, ==, 123);
    g_assert_cmpuint(s.dedupe_days, ==, 2);
    g_assert_cmpuint(s.receive_timeout_s, ==, 6);
    g_assert_cmpuint(s.resync_delay_s, ==, 4);
    g_assert_cmpuint(s.resync_interval_s, ==, 600);
    g_assert_cmpuint(s.partial_after_s, ==, 20);
    g_assert_cmpuint(s.storage_warn, ==, 8);
    g_assert_cmpstr(s.state_dir, ==, "/tmp/x");
    ca_modem_settings_clear(&m);
    ca_sms_settings_clear(&s);
}

static void
test_equal(void)
{
    g_autoptr(CaConfig) a = load("");
    g_autoptr(CaConfig) b = load("[sms]\npartial-after=20\n");
    g_autoptr(CaConfig) c = load("[modem]\npin-file=/etc/pin\n[sms]\nmax-parts=10\n");
    CaModemSettings ma = {0}, mb = {0}, mc = {0};
    CaSmsSettings sa = {0}, sb = {0}, sc = {0};

    ca_modem_settings_load(&ma, a);
    ca_modem_settings_load(&mb, b);
    ca_modem_settings_load(&mc, c);
    ca_sms_settings_load(&sa, a);
    ca_sms_settings_load(&sb, b);
    ca_sms_settings_load(&sc, c);
    g_assert_true(ca_modem_settings_equal(&ma, &mb));
    g_assert_false(ca_modem_settings_equal(&ma, &mc));
    g_assert_false(ca_sms_settings_equal(&sa, &sb));
    g_assert_true(ca_sms_settings_equal(&sa, &sc)); /* max-parts set to its default */
    ca_modem_settings_clear(&ma);
    ca_modem_settings_clear(&mb);
    ca_modem_settings_clear(&mc);
    ca_sms_settings_clear(&sa);
    ca_sms_settings_clear(&sb);
    ca_sms_settings_clear(&sc);
}

/* The example file the project ships (every key, commented or not) loads the same way. */
static void
test_shipped_config(void)
{
    /* CA_SOURCE_DIR (set by ctest): __FILE__ is relative in a package build. */
    const char *top = g_getenv("CA_SOURCE_DIR");
    g_autofree char *dir = g_path_get_dirname(__FILE__);
    g_autofree char *path =
        top ? g_build_filename(top, "config", "cellagent.conf", NULL)
            : g_build_filename(dir, "..", "..", "config", "cellagent.conf", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) config = NULL;
    CaModemSettings m = {0};
    CaSmsSettings s = {0};

    if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_test_skip("config/cellagent.conf not found");
        return;
    }
    config = ca_config_load(path, &error);
    g_assert_no_error(error);
    ca_modem_settings_load(&m, config);
    ca_sms_settings_load(&s, config);
    g_assert_cmpuint(s.partial_after_s, ==, 10800);
    g_assert_cmpuint(s.resync_interval_s, ==, 21600);
    ca_modem_settings_clear(&m);
    ca_sms_settings_clear(&s);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/settings-mm/modem-defaults", test_modem_defaults);
    g_test_add_func("/settings-mm/sms-defaults", test_sms_defaults);
    g_test_add_func("/settings-mm/every-key", test_every_key_read);
    g_test_add_func("/settings-mm/equal", test_equal);
    g_test_add_func("/settings-mm/shipped-config", test_shipped_config);
    return g_test_run();
}
