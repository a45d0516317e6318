/* agent-settings: the composition root's typed settings (agent-settings.h). Pure. */
#include "agent-settings.h"

#include <string.h>

void
ca_agent_settings_load(CaAgentSettings *out, const CaConfig *config)
{
    CaLogLevel level = CA_LOG_INFO;
    CaClockMode mode = CA_CLOCK_MODE_SET;

    memset(out, 0, sizeof *out);
    out->device_id = g_strdup(ca_config_get_string(config, "agent", "device-id"));
    out->state_dir = g_strdup(ca_config_get_string(config, "agent", "state-dir"));
    out->runtime_dir = g_strdup(ca_config_get_string(config, "agent", "runtime-dir"));
    /* The table allows only names ca_log_level_from_string knows. */
    ca_log_level_from_string(ca_config_get_string(config, "agent", "log-level"), &level);
    out->log_level = level;
    /* Likewise for ca_clock_mode_from_string. */
    ca_clock_mode_from_string(ca_config_get_string(config, "agent", "network-time"), &mode);
    out->network_time = mode;
    out->sms_enabled = ca_config_get_bool(config, "sms", "enabled");
    out->sms_commands_enabled = ca_config_get_bool(config, "sms-commands", "enabled");
    out->sms_alerts_enabled = ca_config_get_bool(config, "sms-alerts", "enabled");
    out->homeassistant = ca_config_get_bool(config, "telemetry", "homeassistant");
    out->homeassistant_prefix =
        g_strdup(ca_config_get_string(config, "telemetry", "homeassistant-prefix"));
    out->topic_prefix = g_strdup(ca_config_get_string(config, "mqtt", "topic-prefix"));
    out->diagnose_max_size = (gsize) ca_config_get_int(config, "diagnose", "max-size");
    out->diagnose_chunk_size = (gsize) ca_config_get_int(config, "diagnose", "chunk-size");
}

void
ca_agent_settings_clear(CaAgentSettings *settings)
{
    if (!settings)
        return;
    g_free(settings->device_id);
    g_free(settings->state_dir);
    g_free(settings->runtime_dir);
    g_free(settings->homeassistant_prefix);
    g_free(settings->topic_prefix);
    memset(settings, 0, sizeof *settings);
}

CaAgentSettingsChange
ca_agent_settings_diff(const CaAgentSettings *a, const CaAgentSettings *b)
{
    CaAgentSettingsChange changed = 0;

    if (a->log_level != b->log_level)
        changed |= CA_AGENT_SETTINGS_LOG_LEVEL;
    if (!ca_settings_str_equal(a->device_id, b->device_id))
        changed |= CA_AGENT_SETTINGS_DEVICE_ID;
    if (!ca_settings_str_equal(a->state_dir, b->state_dir))
        changed |= CA_AGENT_SETTINGS_STATE_DIR;
    if (a->sms_enabled != b->sms_enabled || a->sms_commands_enabled != b->sms_commands_enabled ||
        a->sms_alerts_enabled != b->sms_alerts_enabled)
        changed |= CA_AGENT_SETTINGS_WIRING;
    if (a->homeassistant != b->homeassistant ||
        !ca_settings_str_equal(a->homeassistant_prefix, b->homeassistant_prefix))
        changed |= CA_AGENT_SETTINGS_HOMEASSISTANT;
    if (!ca_settings_str_equal(a->topic_prefix, b->topic_prefix))
        changed |= CA_AGENT_SETTINGS_TOPIC_PREFIX;
    if (!ca_settings_str_equal(a->runtime_dir, b->runtime_dir))
        changed |= CA_AGENT_SETTINGS_RUNTIME_DIR;
    if (a->diagnose_max_size != b->diagnose_max_size ||
        a->diagnose_chunk_size != b->diagnose_chunk_size)
        changed |= CA_AGENT_SETTINGS_DIAGNOSE;
    if (a->network_time != b->network_time)
        changed |= CA_AGENT_SETTINGS_NETWORK_TIME;
    return changed;
}

gboolean
ca_agent_settings_equal(const CaAgentSettings *a, const CaAgentSettings *b)
{
    return ca_agent_settings_diff(a, b) == 0;
}
