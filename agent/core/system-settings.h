/* system-settings: what the system actions (agent/system: power-cycling the modem,
 * rebooting) read from the config, typed and read once: [watchdog] power-cycle-command,
 * reboot-command and command-timeout. Whether a step is taken at all is the watchdog's
 * (uplink-settings.h). Owns: reading those keys. Does not own: validating them. */
#pragma once
#include "config.h"

#include <glib.h>

typedef struct {
    char *power_cycle_command; /* "" none (the step is then disabled) */
    char *reboot_command;      /* "" ask systemd-logind */
    guint command_timeout_s;   /* a command running longer is killed */
} CaSystemSettings;

/* Read the system actions' settings from a loaded (validated) config. */
CaSystemSettings *ca_system_settings_new(const CaConfig *config);
CaSystemSettings *ca_system_settings_copy(const CaSystemSettings *s);
void ca_system_settings_free(CaSystemSettings *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaSystemSettings, ca_system_settings_free)
/* TRUE when a and b hold the same settings. */
gboolean ca_system_settings_equal(const CaSystemSettings *a, const CaSystemSettings *b);
