/* Unit tests for the typed settings (settings.h): every settings struct loads from the
 * defaults and from a file that sets every key (a key a loader names that the table lacks
 * is a g_critical, fatal here), compares equal to itself and clears twice; the diff masks
 * name exactly what changed. */
#define CA_LOG_MODULE "test"
#include "agent-settings.h"
#include "config.h"
#include "log.h"
#include "mqtt-settings.h"
#include "remote-settings.h"
#include "sms-command-settings.h"
#include "telemetry-settings.h"
#include "usage-settings.h"

#include <string.h>

static CaConfig *
load_text(const char *text)
{
    g_autoptr(GError) error = NULL;
    CaConfig *c = ca_config_load_from_data("test.conf", text, strlen(text), &error);

    g_assert_no_error(error);
    return c;
}

/* The defaults, and tests/fuzz/corpus/config/all-keys.conf (every key set). */
static CaConfig *
load_case(const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;
    CaConfig *c;

    if (g_str_equal(name, "defaults"))
        return load_text("");
    path = g_build_filename(g_getenv("CA_SOURCE_DIR") ? g_getenv("CA_SOURCE_DIR") : ".", "tests",
                            "fuzz", "corpus", "config", "all-keys.conf", NULL);
    c = ca_config_load(path, &error);
    g_assert_no_error(error);
    return c;
}

static void
test_load(gconstpointer data)
{
    g_autoptr(CaConfig) c = load_case(data);
    CaAgentSettings agent, agent2;
    CaMqttSettings mqtt, mqtt2;
    CaRemoteSettings remote, remote2;
    CaSmsCommandSettings sms_commands, sms_commands2;
    CaTelemetrySettings telemetry, telemetry2;
    CaUsageSettings usage, usage2;
    g_auto(GStrv) plans = NULL;

    ca_agent_settings_load(&agent, c);
    ca_agent_settings_load(&agent2, c);
    g_assert_cmpstr(agent.device_id, ==, ca_config_get_string(c, "agent", "device-id"));
    g_assert_cmpstr(agent.state_dir, ==, ca_config_get_string(c, "agent", "state-dir"));
    g_assert_cmpstr(agent.runtime_dir, ==, ca_config_get_string(c, "agent", "runtime-dir"));
    g_assert_cmpuint(agent.diagnose_max_size, ==, ca_config_get_int(c, "diagnose", "max-size"));
    g_assert_cmpuint(agent.diagnose_chunk_size, ==, ca_config_get_int(c, "diagnose", "chunk-size"));
    g_assert_cmpstr(ca_log_level_to_string(agent.log_level), ==,
                    ca_config_get_string(c, "agent", "log-level"));
    g_assert_cmpstr(ca_clock_mode_to_string(agent.network_time), ==,
                    ca_config_get_string(c, "agent", "network-time"));
    g_assert_true(ca_agent_settings_equal(&agent, &agent2));
    g_assert_cmpint(ca_agent_settings_diff(&agent, &agent2), ==, 0);

    ca_mqtt_settings_load(&mqtt, c);
    ca_mqtt_settings_load(&mqtt2, c);
    g_assert_cmpstr(mqtt.host, ==, ca_config_get_string(c, "mqtt", "host"));
    g_assert_cmpint(mqtt.port, ==, ca_config_get_int(c, "mqtt", "port"));
    g_assert_cmpstr(mqtt.client_id, ==, ca_config_get_string(c, "mqtt", "client-id"));
    g_assert_cmpstr(mqtt.device_id, ==, agent.device_id);
    g_assert_true(ca_mqtt_settings_equal(&mqtt, &mqtt2));

    ca_remote_settings_load(&remote, c);
    ca_remote_settings_load(&remote2, c);
    g_assert_cmpstr(remote.reboot_command, ==,
                    ca_config_get_string(c, "commands", "reboot-command"));
    g_assert_cmpint(remote.alerts.down_after_ms, ==,
                    ca_config_get_int(c, "sms-alerts", "data-down-after") * 1000);
    g_assert_cmpuint(g_strv_length(remote.alert_numbers), ==,
                     g_strv_length((char **) ca_config_get_list(c, "sms-alerts", "numbers")));
    g_assert_true(ca_remote_settings_equal(&remote, &remote2));

    ca_sms_command_settings_load(&sms_commands, c);
    ca_sms_command_settings_load(&sms_commands2, c);
    g_assert_cmpint(sms_commands.lockout_ms, ==,
                    ca_config_get_int(c, "sms-commands", "lockout") * 1000);
    g_assert_true(ca_sms_command_settings_equal(&sms_commands, &sms_commands2));
    g_assert_true(ca_sms_command_settings_equal(&sms_commands, &remote.sms_commands));

    ca_telemetry_settings_load(&telemetry, c);
    ca_telemetry_settings_load(&telemetry2, c);
    g_assert_cmpuint(telemetry.policy.interval_s, ==,
                     ca_config_get_int(c, "telemetry", "interval"));
    g_assert_true(ca_telemetry_settings_equal(&telemetry, &telemetry2));

    plans = ca_config_get_groups_with_prefix(c, "plan-");
    ca_usage_settings_load(&usage, c);
    ca_usage_settings_load(&usage2, c);
    g_assert_cmpuint(usage.save_interval_ms, ==,
                     ca_config_get_int(c, "usage", "save-interval") * 1000);
    g_assert_cmpuint(usage.plans->len, ==, g_strv_length(plans));
    g_assert_true(ca_usage_settings_equal(&usage, &usage2));

    /* Clearing twice is harmless, and so is NULL. */
    ca_agent_settings_clear(&agent);
    ca_agent_settings_clear(&agent);
    ca_agent_settings_clear(&agent2);
    ca_agent_settings_clear(NULL);
    ca_mqtt_settings_clear(&mqtt);
    ca_mqtt_settings_clear(&mqtt);
    ca_mqtt_settings_clear(&mqtt2);
    ca_mqtt_settings_clear(NULL);
    ca_remote_settings_clear(&remote);
    ca_remote_settings_clear(&remote);
    ca_remote_settings_clear(&remote2);
    ca_remote_settings_clear(NULL);
    ca_sms_command_settings_clear(&sms_commands);
    ca_sms_command_settings_clear(&sms_commands2);
    ca_sms_command_settings_clear(NULL);
    ca_telemetry_settings_clear(&telemetry);
    ca_telemetry_settings_clear(&telemetry2);
    ca_telemetry_settings_clear(NULL);
    ca_usage_settings_clear(&usage);
    ca_usage_settings_clear(&usage);
    ca_usage_settings_clear(&usage2);
    ca_usage_settings_clear(NULL);
}

/* The defaults and all-keys.conf differ: the MQTT settings (port) tell. */
static void
test_defaults_differ(void)
{
    g_autoptr(CaConfig) a = load_case("defaults");
    g_autoptr(CaConfig) b = load_case("all-keys");
    CaMqttSettings ma, mb;

    ca_mqtt_settings_load(&ma, a);
    ca_mqtt_settings_load(&mb, b);
    g_assert_false(ca_mqtt_settings_equal(&ma, &mb));
    ca_mqtt_settings_clear(&ma);
    ca_mqtt_settings_clear(&mb);
}

typedef struct {
    const char *text; /* appended to a base config */
    CaAgentSettingsChange agent;
    CaRemoteSettingsChange remote;
    gboolean mqtt_changed;
    CaMqttSettingsChange mqtt; /* when not 0, exactly this */
} DiffCase;

static const DiffCase diff_cases[] = {
    {"", 0, 0, FALSE},
    {"[agent]\nlog-level=debug\n", CA_AGENT_SETTINGS_LOG_LEVEL, 0, FALSE},
    /* The device id is in three modules' settings (client-id follows it by default). */
    {"[agent]\ndevice-id=other\n", CA_AGENT_SETTINGS_DEVICE_ID, CA_REMOTE_SETTINGS_DEVICE_ID, TRUE},
    {"[agent]\nstate-dir=/tmp/other\n", CA_AGENT_SETTINGS_STATE_DIR, CA_REMOTE_SETTINGS_STATE_DIR,
     FALSE},
    {"[agent]\nruntime-dir=/tmp/other\n", CA_AGENT_SETTINGS_RUNTIME_DIR, 0, FALSE},
    {"[diagnose]\nmax-size=2048\n", CA_AGENT_SETTINGS_DIAGNOSE, 0, FALSE},
    {"[mqtt]\ntopic-prefix=other\n", CA_AGENT_SETTINGS_TOPIC_PREFIX, 0, TRUE},
    {"[mqtt]\nqueue-limit=5\n", 0, 0, TRUE, CA_MQTT_SETTINGS_QUEUE},
    {"[telemetry]\nhomeassistant=true\n", CA_AGENT_SETTINGS_HOMEASSISTANT, 0, FALSE},
    {"[telemetry]\ninterval=5\n", 0, 0, FALSE},
    {"[sms]\nenabled=false\n", CA_AGENT_SETTINGS_WIRING, 0, FALSE},
    {"[commands]\nreboot-delay=9\n", 0, CA_REMOTE_SETTINGS_COMMANDS, FALSE},
    {"[sms-commands]\nlockout=60\n", 0, CA_REMOTE_SETTINGS_SMS_COMMANDS, FALSE},
    {"[sms-alerts]\nmin-interval=60\n", 0, CA_REMOTE_SETTINGS_ALERTS, FALSE},
    {"[sms-alerts]\nenabled=true\nnumbers=+15550100\n", CA_AGENT_SETTINGS_WIRING,
     CA_REMOTE_SETTINGS_ALERTS, FALSE},
};

static void
test_diff(void)
{
    static const char base[] = "[agent]\ndevice-id=dev1\n";
    g_autoptr(CaConfig) a = load_text(base);

    for (gsize i = 0; i < G_N_ELEMENTS(diff_cases); i++) {
        const DiffCase *dc = &diff_cases[i];
        g_autofree char *text = g_strconcat(base, dc->text, NULL);
        g_autoptr(CaConfig) b = load_text(text);
        CaAgentSettings aa, ab;
        CaRemoteSettings ra, rb;
        CaMqttSettings ma, mb;

        ca_agent_settings_load(&aa, a);
        ca_agent_settings_load(&ab, b);
        ca_remote_settings_load(&ra, a);
        ca_remote_settings_load(&rb, b);
        ca_mqtt_settings_load(&ma, a);
        ca_mqtt_settings_load(&mb, b);
        g_test_message("case %s", dc->text);
        g_assert_cmpint(ca_agent_settings_diff(&aa, &ab), ==, dc->agent);
        g_assert_cmpint(ca_remote_settings_diff(&ra, &rb), ==, dc->remote);
        g_assert_cmpint(!ca_mqtt_settings_equal(&ma, &mb), ==, dc->mqtt_changed);
        if (dc->mqtt)
            g_assert_cmpint(ca_mqtt_settings_diff(&ma, &mb), ==, dc->mqtt);
        else if (dc->mqtt_changed)
            g_assert_cmpint(ca_mqtt_settings_diff(&ma, &mb), ==, CA_MQTT_SETTINGS_CONNECTION);
        ca_agent_settings_clear(&aa);
        ca_agent_settings_clear(&ab);
        ca_remote_settings_clear(&ra);
        ca_remote_settings_clear(&rb);
        ca_mqtt_settings_clear(&ma);
        ca_mqtt_settings_clear(&mb);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_data_func("/settings/load/defaults", "defaults", test_load);
    g_test_add_data_func("/settings/load/all-keys", "all-keys", test_load);
    g_test_add_func("/settings/defaults-differ", test_defaults_differ);
    g_test_add_func("/settings/diff", test_diff);
    return g_test_run();
}
