/* actions: the device-level actions the uplink watchdog asks for, carried out on the main
 * loop: power-cycling the modem (power-cycle-command) and rebooting (reboot-command, or
 * systemd-logind's Manager.Reboot over the system bus). A command runs without a shell and
 * is killed after command-timeout. Owns: the command or the D-Bus call while it runs.
 * Does not own: deciding when (the watchdog ladder), reporting (the caller). */
#pragma once
#include "system-settings.h"

#include <gio/gio.h>

typedef enum {
    CA_SYSTEM_ACTION_POWER_CYCLE, /* run power-cycle-command */
    CA_SYSTEM_ACTION_REBOOT,      /* run reboot-command, or ask systemd-logind */
} CaSystemAction;

/* "power-cycle", "reboot". */
const char *ca_system_action_to_string(CaSystemAction action);

/* Carry out action with settings (copied). Completes when the command exited (with status
 * 0: success) or was killed, or logind answered. Errors: the command's (spawn failure, exit
 * status, CA_ERROR_TIMEOUT "command timed out and was killed"), CA_ERROR_INVALID_CONFIG
 * (no power-cycle-command, a command line that does not parse), logind's. */
void ca_system_action_run_async(CaSystemAction action, const CaSystemSettings *settings,
                                GCancellable *cancellable, GAsyncReadyCallback callback,
                                gpointer user_data);
gboolean ca_system_action_run_finish(GAsyncResult *result, GError **error);
