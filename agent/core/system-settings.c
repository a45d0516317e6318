/* system-settings: the system actions' typed settings (see system-settings.h). */
#include "system-settings.h"

CaSystemSettings *
ca_system_settings_new(const CaConfig *config)
{
    CaSystemSettings *s = g_new0(CaSystemSettings, 1);

    s->power_cycle_command =
        g_strdup(ca_config_get_string(config, "watchdog", "power-cycle-command"));
    s->reboot_command = g_strdup(ca_config_get_string(config, "watchdog", "reboot-command"));
    s->command_timeout_s = (guint) ca_config_get_int(config, "watchdog", "command-timeout");
    return s;
}

CaSystemSettings *
ca_system_settings_copy(const CaSystemSettings *s)
{
    CaSystemSettings *c = g_new0(CaSystemSettings, 1);

    c->power_cycle_command = g_strdup(s->power_cycle_command);
    c->reboot_command = g_strdup(s->reboot_command);
    c->command_timeout_s = s->command_timeout_s;
    return c;
}

void
ca_system_settings_free(CaSystemSettings *s)
{
    if (!s)
        return;
    g_free(s->power_cycle_command);
    g_free(s->reboot_command);
    g_free(s);
}

gboolean
ca_system_settings_equal(const CaSystemSettings *a, const CaSystemSettings *b)
{
    return g_strcmp0(a->power_cycle_command, b->power_cycle_command) == 0 &&
           g_strcmp0(a->reboot_command, b->reboot_command) == 0 &&
           a->command_timeout_s == b->command_timeout_s;
}
