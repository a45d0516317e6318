/* Unit tests for the uplink module's typed settings (uplink-settings.c): every key read
 * from the shipped config (defaults) and from the fuzz corpus's all-keys.conf (every key
 * set, mostly off its default), checked against the file itself, so a key name mistyped
 * in the loader fails here (a missing key is a critical, a wrong one a mismatch).
 * Paths: /settings-nm/<case>. */
#include "uplink-settings.h"

#include <string.h>

static char *
source_path(const char *rel)
{
    /* CA_SOURCE_DIR (set by ctest): __FILE__ is relative in a package build. */
    const char *top = g_getenv("CA_SOURCE_DIR");
    g_autofree char *dir = g_path_get_dirname(__FILE__);

    return top ? g_build_filename(top, rel, NULL) : g_build_filename(dir, "..", "..", rel, NULL);
}

static CaConfig *
load_file(const char *rel)
{
    g_autofree char *path = source_path(rel);
    g_autoptr(GError) error = NULL;
    CaConfig *c = ca_config_load(path, &error);

    g_assert_no_error(error);
    return c;
}

static GKeyFile *
raw_file(const char *rel)
{
    g_autofree char *path = source_path(rel);
    g_autoptr(GError) error = NULL;
    GKeyFile *kf = g_key_file_new();

    g_key_file_set_list_separator(kf, ';');
    g_assert_true(g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &error));
    g_assert_no_error(error);
    return kf;
}

static void
test_defaults(void)
{
    g_autoptr(CaConfig) c = load_file("config/cellagent.conf");
    g_autoptr(CaUplinkSettings) s = ca_uplink_settings_new(c);
    const CaFoConfig *p = s->policy;

    g_assert_cmpstr(s->apn, ==, "internet");
    g_assert_cmpstr(s->username, ==, "");
    g_assert_cmpstr(s->password_file, ==, "");
    g_assert_cmpstr(s->mqtt_host, ==, "localhost");
    g_assert_cmpuint(s->mqtt_port, ==, 1883);
    g_assert_cmpstr(s->state_dir, ==, "/var/lib/cellagent");
    g_assert_true(ca_uplink_settings_broker_is_local(s));
    /* The policy part (failover.c's own loader): [uplink-cellular] implied. */
    g_assert_cmpuint(p->n_uplinks, ==, 1);
    g_assert_cmpstr(p->uplinks[0].name, ==, "cellular");
    g_assert_cmpstr(p->uplinks[0].connection, ==, "cellular");
    g_assert_cmpint(p->interval_ms, ==, 20000);
    g_assert_cmpint(p->watchdog.cooldown_ms[CA_WD_STEP_REBOOT], ==, 3600 * 1000);
    g_assert_false(p->watchdog.step_enabled[CA_WD_STEP_POWER_CYCLE]);
}

static void
test_all_keys(void)
{
    static const char *const file = "tests/fuzz/corpus/config/all-keys.conf";
    g_autoptr(CaConfig) c = load_file(file);
    g_autoptr(GKeyFile) kf = raw_file(file);
    g_autoptr(CaUplinkSettings) s = ca_uplink_settings_new(c);
    const CaFoConfig *p = s->policy;
    g_auto(GStrv) steps = g_key_file_get_string_list(kf, "watchdog", "steps", NULL, NULL);
    int w, k;

#define RAW(g, k)  g_key_file_get_string(kf, g, k, NULL)
#define RAWI(g, k) g_key_file_get_integer(kf, g, k, NULL)
    {
        g_autofree char *apn = RAW("cellular", "apn"), *user = RAW("cellular", "username"),
                        *pw = RAW("cellular", "password-file"), *host = RAW("mqtt", "host"),
                        *dir = RAW("agent", "state-dir"), *dns = RAW("health", "dns-name");

        g_assert_cmpstr(s->apn, ==, apn);
        g_assert_cmpstr(s->username, ==, user);
        g_assert_cmpstr(s->password_file, ==, pw);
        g_assert_cmpstr(s->mqtt_host, ==, host);
        g_assert_cmpint(s->mqtt_port, ==, RAWI("mqtt", "port"));
        g_assert_cmpstr(s->state_dir, ==, dir);
        g_assert_cmpstr(p->dns_name, ==, dns);
    }
    g_assert_cmpint(p->interval_ms, ==, RAWI("health", "interval") * 1000);
    g_assert_cmpint(p->fast_interval_ms, ==, RAWI("health", "fast-interval") * 1000);
    g_assert_cmpint(p->timeout_ms, ==, RAWI("health", "timeout") * 1000);
    g_assert_cmpint(p->down_after, ==, RAWI("health", "down-after"));
    g_assert_cmpint(p->up_after, ==, RAWI("health", "up-after"));
    g_assert_cmpint(p->hold_down_ms, ==, RAWI("health", "hold-down") * 1000);
    g_assert_cmpint(p->max_hold_down_ms, ==, RAWI("health", "max-hold-down") * 1000);
    g_assert_cmpint(p->flap_window_ms, ==, RAWI("health", "flap-window") * 1000);
    g_assert_cmpint(p->report_interval_ms, ==, RAWI("health", "report-interval") * 1000);
    /* [watchdog] */
    g_assert_cmpint(p->watchdog.enabled, ==,
                    g_key_file_get_boolean(kf, "watchdog", "enabled", NULL));
    g_assert_cmpint(p->watchdog.start_after_ms, ==, RAWI("watchdog", "start-after") * 1000);
    g_assert_cmpint(p->watchdog.healthy_reset_ms, ==, RAWI("watchdog", "healthy-reset") * 1000);
    g_assert_cmpint(p->watchdog.cooldown_ms[CA_WD_STEP_REACTIVATE], ==,
                    RAWI("watchdog", "reactivate-cooldown") * 1000);
    g_assert_cmpint(p->watchdog.cooldown_ms[CA_WD_STEP_MODEM_RESET], ==,
                    RAWI("watchdog", "modem-reset-cooldown") * 1000);
    g_assert_cmpint(p->watchdog.cooldown_ms[CA_WD_STEP_POWER_CYCLE], ==,
                    RAWI("watchdog", "power-cycle-cooldown") * 1000);
    g_assert_cmpint(p->watchdog.cooldown_ms[CA_WD_STEP_REBOOT], ==,
                    RAWI("watchdog", "reboot-cooldown") * 1000);
    g_assert_cmpint(p->watchdog.budget[CA_WD_STEP_MODEM_RESET], ==,
                    RAWI("watchdog", "modem-reset-budget"));
    g_assert_cmpint(p->watchdog.budget[CA_WD_STEP_POWER_CYCLE], ==,
                    RAWI("watchdog", "power-cycle-budget"));
    g_assert_cmpint(p->watchdog.budget[CA_WD_STEP_REBOOT], ==, RAWI("watchdog", "reboot-budget"));
    for (w = CA_WD_STEP_REACTIVATE; w < CA_WD_N_STEPS; w++) {
        gboolean listed =
            g_strv_contains((const char *const *) steps, ca_wd_step_to_string((CaWdStep) w));
        g_assert_cmpint(p->watchdog.step_enabled[w], ==, listed);
    }
    /* [uplink-NAME], sorted by name. */
    g_assert_cmpuint(p->n_uplinks, ==, 2);
    for (k = 0; k < 2; k++) {
        const CaFoUplinkConfig *u = &p->uplinks[k];
        g_autofree char *group = g_strdup_printf("uplink-%s", u->name);
        g_autofree char *conn = RAW(group, "connection"), *act = RAW(group, "activate");
        g_auto(GStrv) probes = g_key_file_get_string_list(kf, group, "probes", NULL, NULL);

        g_assert_true(g_key_file_has_group(kf, group));
        g_assert_cmpstr(u->connection, ==, conn);
        g_assert_cmpint(u->priority, ==, RAWI(group, "priority"));
        g_assert_cmpint(u->activate, ==,
                        strcmp(act, "on-demand") == 0 ? CA_ACTIVATE_ON_DEMAND
                        : strcmp(act, "never") == 0   ? CA_ACTIVATE_NEVER
                                                      : CA_ACTIVATE_ALWAYS);
        g_assert_true(g_strv_equal((const char *const *) u->probes, (const char *const *) probes));
    }
#undef RAW
#undef RAWI
}

static CaUplinkSettings *
from_text(const char *text)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) c = ca_config_load_from_data("test.conf", text, strlen(text), &error);

    g_assert_no_error(error);
    return ca_uplink_settings_new(c);
}

static void
test_diff(void)
{
    g_autoptr(CaUplinkSettings) a = from_text("[mqtt]\nhost=broker.example.com\n");
    g_autoptr(CaUplinkSettings) same = from_text("[mqtt]\nhost=broker.example.com\n");
    g_autoptr(CaUplinkSettings) host =
        from_text("[mqtt]\nhost=other.example.com\n[commands]\nallow-reboot=true\n");
    g_autoptr(CaUplinkSettings) apn = from_text("[mqtt]\nhost=broker.example.com\n"
                                                "[cellular]\napn=m2m\n");
    g_autoptr(CaUplinkSettings) hold = from_text("[mqtt]\nhost=broker.example.com\n"
                                                 "[health]\nhold-down=61\n");
    g_autoptr(CaUplinkSettings) up = from_text("[mqtt]\nhost=broker.example.com\n"
                                               "[uplink-wan]\npriority=10\n");
    g_autoptr(CaUplinkSettings) cmd = from_text("[mqtt]\nhost=broker.example.com\n"
                                                "[watchdog]\ncommand-timeout=5\n");

    g_assert_cmpint(ca_uplink_settings_diff(a, same), ==, CA_UPLINK_SETTINGS_SAME);
    g_assert_cmpint(ca_uplink_settings_diff(a, host), ==, CA_UPLINK_SETTINGS_PROBES);
    g_assert_cmpint(ca_uplink_settings_diff(a, apn), ==, CA_UPLINK_SETTINGS_POLICY);
    g_assert_cmpint(ca_uplink_settings_diff(a, hold), ==, CA_UPLINK_SETTINGS_POLICY);
    g_assert_cmpint(ca_uplink_settings_diff(a, up), ==, CA_UPLINK_SETTINGS_POLICY);
    /* The system actions' key is theirs: the policy stays. */
    g_assert_cmpint(ca_uplink_settings_diff(a, cmd), ==, CA_UPLINK_SETTINGS_SAME);
}

typedef struct {
    const char *host;
    gboolean local;
} LocalCase;

static const LocalCase local_cases[] = {
    {"localhost", TRUE},           {"LocalHost", TRUE},
    {"broker.localhost", TRUE},    {"127.0.0.1", TRUE},
    {"127.1.2.3", TRUE},           {"::1", TRUE},
    {"broker.example.com", FALSE}, {"192.0.2.10", FALSE},
    {"2001:db8::1", FALSE},        {"localhost.example.com", FALSE},
};

static void
test_broker_local(gconstpointer data)
{
    const LocalCase *lc = data;
    g_autofree char *text = g_strdup_printf("[mqtt]\nhost=%s\n", lc->host);
    g_autoptr(CaUplinkSettings) s = from_text(text);

    g_assert_cmpint(ca_uplink_settings_broker_is_local(s), ==, lc->local);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/settings-nm/defaults", test_defaults);
    g_test_add_func("/settings-nm/all-keys", test_all_keys);
    g_test_add_func("/settings-nm/diff", test_diff);
    for (gsize i = 0; i < G_N_ELEMENTS(local_cases); i++) {
        g_autofree char *path =
            g_strdup_printf("/settings-nm/broker-local/%s", local_cases[i].host);
        g_test_add_data_func(path, &local_cases[i], test_broker_local);
    }
    return g_test_run();
}
