/* Unit tests for the system actions' typed settings (system-settings.c), from the shipped
 * config (defaults) and from all-keys.conf (every key set), checked against the file.
 * Paths: /settings-system/<case>. */
#include "system-settings.h"

#include <string.h>

static CaConfig *
load_file(const char *rel, GKeyFile **out_raw)
{
    /* CA_SOURCE_DIR (set by ctest): __FILE__ is relative in a package build. */
    const char *top = g_getenv("CA_SOURCE_DIR");
    g_autofree char *dir = g_path_get_dirname(__FILE__);
    g_autofree char *path =
        top ? g_build_filename(top, rel, NULL) : g_build_filename(dir, "..", "..", rel, NULL);
    g_autoptr(GError) error = NULL;
    CaConfig *c = ca_config_load(path, &error);

    g_assert_no_error(error);
    if (out_raw) {
        *out_raw = g_key_file_new();
        g_assert_true(g_key_file_load_from_file(*out_raw, path, G_KEY_FILE_NONE, NULL));
    }
    return c;
}

static void
test_defaults(void)
{
    g_autoptr(CaConfig) c = load_file("config/cellagent.conf", NULL);
    g_autoptr(CaSystemSettings) s = ca_system_settings_new(c);

    g_assert_cmpstr(s->power_cycle_command, ==, "");
    g_assert_cmpstr(s->reboot_command, ==, "");
    g_assert_cmpuint(s->command_timeout_s, ==, 60);
}

static void
test_all_keys(void)
{
    GKeyFile *raw = NULL;
    g_autoptr(CaConfig) c = load_file("tests/fuzz/corpus/config/all-keys.conf", &raw);
    g_autoptr(GKeyFile) kf = raw;
    g_autoptr(CaSystemSettings) s = ca_system_settings_new(c);
    g_autoptr(CaSystemSettings) copy = ca_system_settings_copy(s);
    g_autofree char *pc = g_key_file_get_string(kf, "watchdog", "power-cycle-command", NULL);
    g_autofree char *rb = g_key_file_get_string(kf, "watchdog", "reboot-command", NULL);

    g_assert_cmpstr(s->power_cycle_command, ==, pc);
    g_assert_cmpstr(s->reboot_command, ==, rb);
    g_assert_cmpint(s->command_timeout_s, ==,
                    g_key_file_get_integer(kf, "watchdog", "command-timeout", NULL));
    g_assert_true(ca_system_settings_equal(s, copy));
    copy->command_timeout_s++;
    g_assert_false(ca_system_settings_equal(s, copy));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/settings-system/defaults", test_defaults);
    g_test_add_func("/settings-system/all-keys", test_all_keys);
    return g_test_run();
}
