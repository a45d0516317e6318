/* sms-command-settings: the SMS command channel's typed settings (sms-command-settings.h). */
#include "sms-command-settings.h"

#include <string.h>

void
ca_sms_command_settings_load(CaSmsCommandSettings *out, const CaConfig *config)
{
    memset(out, 0, sizeof *out);
    out->enabled = ca_config_get_bool(config, "sms-commands", "enabled");
    out->secret_file = g_strdup(ca_config_get_string(config, "sms-commands", "secret-file"));
    out->allowed_senders =
        g_strdupv((char **) ca_config_get_list(config, "sms-commands", "allowed-senders"));
    out->lockout_ms = ca_config_get_int(config, "sms-commands", "lockout") * 1000;
    out->max_failures_per_hour =
        (guint) ca_config_get_int(config, "sms-commands", "max-failures-per-hour");
}

void
ca_sms_command_settings_clear(CaSmsCommandSettings *settings)
{
    if (!settings)
        return;
    g_free(settings->secret_file);
    g_strfreev(settings->allowed_senders);
    memset(settings, 0, sizeof *settings);
}

gboolean
ca_sms_command_settings_equal(const CaSmsCommandSettings *a, const CaSmsCommandSettings *b)
{
    return a->enabled == b->enabled && ca_settings_str_equal(a->secret_file, b->secret_file) &&
           ca_settings_strv_equal((const char *const *) a->allowed_senders,
                                  (const char *const *) b->allowed_senders) &&
           a->lockout_ms == b->lockout_ms && a->max_failures_per_hour == b->max_failures_per_hour;
}
