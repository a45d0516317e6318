/* uplink: keeps the device online through NetworkManager (libnm). CaUplink follows the
 * devices and active connections of the configured uplinks, turns them into facts for
 * the pure policy (failover.c), runs its probes (probe.c) and carries out its decisions:
 * route metrics applied at runtime by Reapply, activation and deactivation, the watchdog
 * steps (re-activate, modem reset, power-cycle command, reboot), the cellular profile
 * created when missing. It reports the link state, events and a status line upward.
 * Owns: NMClient, probes, the watchdog state file. Does not own: MQTT (agent.c publishes)
 * or ModemManager (agent.c feeds modem facts in and carries modem resets out). */
#pragma once
#include "config.h"

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

/* New uplink manager for the [uplink-*], [cellular], [health], [watchdog], [mqtt]
 * (tcp:mqtt probes) and [agent] state-dir keys. Nothing happens before start. */
CaUplink *ca_uplink_new(CaConfig *config);
/* Connect to NetworkManager (asynchronously; retried while the bus is missing). */
void ca_uplink_start(CaUplink *self);
/* Apply a reloaded config (only acts when the uplink groups changed). */
void ca_uplink_set_config(CaUplink *self, CaConfig *config);
/* Modem facts for the cellular uplink; NULL when no modem module reports. */
void ca_uplink_set_modem_facts(CaUplink *self, const CaUplinkModemFacts *facts);
/* The modem module finished a reset asked for by the "modem-reset" signal (error NULL:
 * done); reported as the watchdog step's result. */
void ca_uplink_modem_reset_done(CaUplink *self, const GError *error);
/* Passive evidence against the uplink in use (e.g. MQTT socket errors): probe it now. */
void ca_uplink_note_trouble(CaUplink *self, const char *why);
/* Stop: cancel everything, drop the NMClient; completes once libnm is quiet. */
void ca_uplink_shutdown_async(CaUplink *self, GAsyncReadyCallback callback, gpointer user_data);
gboolean ca_uplink_shutdown_finish(CaUplink *self, GAsyncResult *result, GError **error);

/* The retained <base>/link payload now (new object, caller frees). */
cJSON *ca_uplink_get_link_json(CaUplink *self);
/* One line for systemd's STATUS (owned by self). */
const char *ca_uplink_get_status(CaUplink *self);
/* Name of the uplink in use, NULL if none. */
const char *ca_uplink_get_active(CaUplink *self);
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
/* The forced uplink's name, NULL for the automatic choice. */
const char *ca_uplink_get_forced(CaUplink *self);

/* Signals:
 *   "link-changed"   (): the link state changed; publish ca_uplink_get_link_json().
 *   "event"          (const char *type, gpointer fields): publish one event on <base>/events;
 *                    fields is a cJSON object (borrowed) with the event's members.
 *   "switched"       (const char *from, const char *to, const char *kind): the uplink in use
 *                    changed (kind "initial", "failover" or "failback"; from may be NULL);
 *                    MQTT should reconnect over the new path at once.
 *   "status-changed" (const char *status): new STATUS line.
 *   "modem-reset"    (const char *reason) -> gboolean: the watchdog wants the modem reset;
 *                    a handler returns TRUE when it does it (the modem module). Unhandled,
 *                    the uplink asks ModemManager itself (Modem.Reset on the modem behind
 *                    NetworkManager's device). */

G_END_DECLS
