/* uplink: keeps the device online through NetworkManager (libnm). CaUplink follows the
 * devices and active connections of the configured uplinks, turns them into facts for
 * the pure policy (failover.c), runs its probes (probe.c) and carries out its decisions:
 * route metrics applied at runtime by Reapply, activation and deactivation, the watchdog's
 * re-activation, the cellular profile created when missing. It reports the link state,
 * events, a status line and whether any uplink is usable upward.
 * Owns: NMClient, probes, the watchdog state file. Does not own: MQTT (agent.c publishes),
 * the modem (agent.c feeds modem facts and planned outages in, and carries the watchdog's
 * modem reset out to the modem owner), the system actions (agent.c carries power-cycle and
 * reboot out to agent/system). It never talks to ModemManager itself. */
#pragma once
#include "config.h"
#include "failover.h"
#include "watchdog.h"

#include <cjson/cJSON.h>
#include <gio/gio.h>

G_BEGIN_DECLS

#define CA_TYPE_UPLINK (ca_uplink_get_type())
G_DECLARE_FINAL_TYPE(CaUplink, ca_uplink, CA, UPLINK, GObject)

/* What the modem module knows about the modem (agent.c copies it in). */
typedef struct {
    gboolean present;          /* ModemManager has the modem */
    gboolean usable;           /* not failed, locked or otherwise unable to connect */
    gboolean registered;       /* home or roaming */
    gboolean bearer_connected; /* a data bearer is connected */
    int signal_quality;        /* percent, -1 unknown */
    const char *state;         /* ModemManager's name: "registered", "connected", ... */
    const char *registration;  /* "home", "roaming", "searching", "denied", ... */
} CaUplinkModemFacts;

/* New uplink manager for the settings of uplink-settings.h ([uplink-*], [cellular],
 * [health], [watchdog], [mqtt] host and port for tcp:mqtt probes, [agent] state-dir), read
 * once. Nothing happens before start. */
CaUplink *ca_uplink_new(CaConfig *config);
/* Connect to NetworkManager (asynchronously; retried while the bus is missing). */
void ca_uplink_start(CaUplink *self);
/* Apply a reloaded config: the policy is rebuilt only when its settings changed. */
void ca_uplink_set_config(CaUplink *self, CaConfig *config);
/* Modem facts for the cellular uplink; NULL when no modem module reports. */
void ca_uplink_set_modem_facts(CaUplink *self, const CaUplinkModemFacts *facts);
/* The modem's owner begins (active) or ends a planned outage of the cellular uplink (a
 * modem reset, the disable/enable of an SMS resync). Meanwhile the cellular uplink's
 * failures are no evidence: no failover because of them, no watchdog step, no
 * re-activation fighting the operation; its recoveries still count. After max_seconds
 * without an end they count again, so a hung operation cannot blind the watchdog. At the
 * end the uplink is judged as it is then, and probed at once. */
void ca_uplink_set_planned_outage(CaUplink *self, gboolean active, guint max_seconds);
/* A data cap on the cellular uplink, or none (the plan's at-limit action, docs/usage.md):
 * essential-only restricts it to the agent's own traffic while it carries the default
 * route, disconnect takes it down, next-uplink puts it last (and restricts it when it still
 * carries the traffic). Kept across reloads. */
void ca_uplink_set_cap(CaUplink *self, CaFoCap cap);
/* The outcome of a watchdog step handed out by "modem-reset" or "system-step" (error NULL:
 * done); reported as the step's watchdog-result event. */
void ca_uplink_step_done(CaUplink *self, CaWdStep step, const GError *error);
/* Same as ca_uplink_step_done(self, CA_WD_STEP_MODEM_RESET, error). */
void ca_uplink_modem_reset_done(CaUplink *self, const GError *error);
/* Passive evidence against the uplink in use (e.g. MQTT socket errors): probe it now. */
void ca_uplink_note_trouble(CaUplink *self, const char *why);
/* NetworkManager checkpoints for remote configuration (uplink-checkpoint.c): a checkpoint
 * of every device, rolled back by NetworkManager itself after rollback_timeout_s unless
 * destroyed first. The path, or NULL with no error when NetworkManager is not running (there
 * is nothing of its to protect). */
void ca_uplink_checkpoint_create_async(CaUplink *self, guint rollback_timeout_s,
                                       GAsyncReadyCallback callback, gpointer user_data);
char *ca_uplink_checkpoint_create_finish(CaUplink *self, GAsyncResult *result, GError **error);
/* Restore the devices to checkpoint path (which NetworkManager then forgets). */
void ca_uplink_checkpoint_rollback_async(CaUplink *self, const char *path,
                                         GAsyncReadyCallback callback, gpointer user_data);
gboolean ca_uplink_checkpoint_rollback_finish(CaUplink *self, GAsyncResult *result, GError **error);
/* Forget checkpoint path, keeping the devices as they are (failures logged). */
void ca_uplink_checkpoint_destroy(CaUplink *self, const char *path);
/* Economy mode (docs/economy.md): probe_interval_ms > 0 gives the uplink in use health
 * rounds at that interval, passed without probes when ca_uplink_note_alive() reported
 * traffic since the last one, and refreshes <base>/link every report_interval_ms (the
 * longer of it and [health] report-interval; 0 there stays 0). 0, 0 ends it. */
void ca_uplink_set_economy(CaUplink *self, gint64 probe_interval_ms, gint64 report_interval_ms);
/* Passive evidence for the uplink in use: traffic from the broker came through it
 * (ignored when the broker is on this machine). */
void ca_uplink_note_alive(CaUplink *self);
/* NetworkManager's Metered property (a CaMetered, economy.h) of the uplink in use's
 * device; FALSE when no uplink is in use. */
gboolean ca_uplink_get_active_metered(CaUplink *self, int *out_metered);
/* Health rounds of the uplink in use passed without probes (passive health). */
guint64 ca_uplink_get_passive_rounds(CaUplink *self);
/* Stop: cancel everything, drop the NMClient; completes once libnm is quiet. */
void ca_uplink_shutdown_async(CaUplink *self, GAsyncReadyCallback callback, gpointer user_data);
gboolean ca_uplink_shutdown_finish(CaUplink *self, GAsyncResult *result, GError **error);

/* The retained <base>/link payload now (new object, caller frees). */
cJSON *ca_uplink_get_link_json(CaUplink *self);
/* The watchdog's budgets of the rolling 24 h (ca_watchdog_budgets_json; caller frees). */
cJSON *ca_uplink_get_watchdog_json(CaUplink *self);
/* One line for systemd's STATUS (owned by self). */
const char *ca_uplink_get_status(CaUplink *self);
/* Name of the uplink in use, NULL if none. */
const char *ca_uplink_get_active(CaUplink *self);
/* May a connection to the broker work now? FALSE only on positive knowledge that there is
 * no path: NetworkManager runs, the broker is not on this machine, no managed uplink is
 * usable and NetworkManager has no connection with a default route. TRUE whenever any of
 * that is unknown (no NetworkManager, not connected to it yet). See docs/uplinks.md. */
gboolean ca_uplink_is_usable(CaUplink *self);
/* Re-activate the connection of the uplink in use (cmd/reconnect), as the watchdog's
 * first step does; why is logged. Returns the uplink's name (owned by self) once
 * NetworkManager was asked; its outcome shows in <base>/link. NULL with error
 * (CA_ERROR_NOT_READY: no uplink in use or NetworkManager absent; CA_ERROR_NETWORK: an
 * activation is already under way, no such connection). */
const char *ca_uplink_reactivate(CaUplink *self, const char *why, GError **error);
/* Force the uplink name to carry traffic whenever it can, or return to the automatic
 * choice (name NULL); see ca_failover_force. Kept until changed, a restart or a reload
 * that changes the uplinks. Errors: CA_ERROR_NOT_READY (no policy yet), CA_ERROR_INVALID_INPUT
 * (no such uplink, or activate=never). */
gboolean ca_uplink_force(CaUplink *self, const char *name, GError **error);
/* A reboot someone asked for (a command) counts against the watchdog's persisted reboot
 * budget ([watchdog] reboot-budget, rolling 24 h), recorded durably before it runs. FALSE
 * with a message when the budget is spent. */
gboolean ca_uplink_take_reboot_budget(CaUplink *self, const char *source, GError **error);
/* The forced uplink's name, NULL for the automatic choice. */
const char *ca_uplink_get_forced(CaUplink *self);

/* Signals:
 *   "link-changed"   (): the link state changed; publish ca_uplink_get_link_json().
 *   "event"          (const char *type, gpointer fields): publish one event on <base>/events;
 *                    fields is a cJSON object (borrowed) with the event's members.
 *   "switched"       (const char *from, const char *to, const char *kind): the uplink in use
 *                    changed (kind "initial", "failover" or "failback"; from may be NULL)
 *                    and the kernel routes through it; MQTT should reconnect over it now.
 *   "status-changed" (const char *status): new STATUS line.
 *   "usable-changed" (gboolean usable): ca_uplink_is_usable() changed.
 *   "modem-reset"    (const char *reason) -> gboolean: the watchdog's modem-reset step. A
 *                    handler that takes it (agent.c, to the modem's owner) returns TRUE
 *                    and reports with ca_uplink_modem_reset_done(). Unhandled, the step
 *                    fails ("no modem to reset").
 *   "system-step"    (int step, const char *reason) -> gboolean: the watchdog's power-cycle
 *                    or reboot step (a CaWdStep). A handler that takes it (agent.c, to
 *                    agent/system) returns TRUE and reports with ca_uplink_step_done().
 *                    Unhandled, the step fails. */

G_END_DECLS
