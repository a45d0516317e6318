/* remote-settings: the remote layer's typed settings (remote-settings.h). Pure. */
#include "remote-settings.h"

#include <string.h>

void
ca_remote_settings_load(CaRemoteSettings *out, const CaConfig *config)
{
    memset(out, 0, sizeof *out);
    out->device_id = g_strdup(ca_config_get_string(config, "agent", "device-id"));
    out->state_dir = g_strdup(ca_config_get_string(config, "agent", "state-dir"));
    out->allow_reboot = ca_config_get_bool(config, "commands", "allow-reboot");
    out->reboot_command = g_strdup(ca_config_get_string(config, "commands", "reboot-command"));
    out->reboot_delay_s = (guint) ca_config_get_int(config, "commands", "reboot-delay");
    ca_sms_command_settings_load(&out->sms_commands, config);
    out->alerts_enabled = ca_config_get_bool(config, "sms-alerts", "enabled");
    out->alert_numbers = g_strdupv((char **) ca_config_get_list(config, "sms-alerts", "numbers"));
    out->alerts.down_after_ms = ca_config_get_int(config, "sms-alerts", "data-down-after") * 1000;
    out->alerts.min_interval_ms = ca_config_get_int(config, "sms-alerts", "min-interval") * 1000;
}

void
ca_remote_settings_clear(CaRemoteSettings *settings)
{
    if (!settings)
        return;
    g_free(settings->device_id);
    g_free(settings->state_dir);
    g_free(settings->reboot_command);
    ca_sms_command_settings_clear(&settings->sms_commands);
    g_strfreev(settings->alert_numbers);
    memset(settings, 0, sizeof *settings);
}

CaRemoteSettingsChange
ca_remote_settings_diff(const CaRemoteSettings *a, const CaRemoteSettings *b)
{
    CaRemoteSettingsChange changed = 0;

    if (!ca_settings_str_equal(a->device_id, b->device_id))
        changed |= CA_REMOTE_SETTINGS_DEVICE_ID;
    if (!ca_settings_str_equal(a->state_dir, b->state_dir))
        changed |= CA_REMOTE_SETTINGS_STATE_DIR;
    if (a->allow_reboot != b->allow_reboot ||
        !ca_settings_str_equal(a->reboot_command, b->reboot_command) ||
        a->reboot_delay_s != b->reboot_delay_s)
        changed |= CA_REMOTE_SETTINGS_COMMANDS;
    if (!ca_sms_command_settings_equal(&a->sms_commands, &b->sms_commands))
        changed |= CA_REMOTE_SETTINGS_SMS_COMMANDS;
    if (a->alerts_enabled != b->alerts_enabled ||
        !ca_settings_strv_equal((const char *const *) a->alert_numbers,
                                (const char *const *) b->alert_numbers) ||
        a->alerts.down_after_ms != b->alerts.down_after_ms ||
        a->alerts.min_interval_ms != b->alerts.min_interval_ms)
        changed |= CA_REMOTE_SETTINGS_ALERTS;
    return changed;
}

gboolean
ca_remote_settings_equal(const CaRemoteSettings *a, const CaRemoteSettings *b)
{
    return ca_remote_settings_diff(a, b) == 0;
}
