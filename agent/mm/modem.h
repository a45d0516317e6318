/* modem: cellagent's view of the cellular modem, through ModemManager (libmm-glib).
 * CaModem follows ModemManager on the system bus (MMManager, never auto-starting it),
 * selects one modem ([modem] match, else the first), brings it to a usable state
 * (PIN unlock from pin-file, never retrying a wrong PIN; enable; Signal and 3GPP location
 * setup) and keeps a snapshot of its facts (CaModemFacts) up to date from D-Bus signals.
 * Owns: the MMManager, the selected MMObject and its CaModemOps (the only code that
 * disables, enables or resets it). Does not own: what is done with the facts
 * (telemetry.c builds JSON, agent.c publishes) nor SMS (sms.c is handed the MMObject).
 * Nothing here makes a synchronous D-Bus call. */
#pragma once
#include "config.h"
#include "modem-facts.h"
#include "modem-ops.h"

#include <gio/gio.h>
#include <libmm-glib.h>

G_BEGIN_DECLS

/*****************************************************************************/
/* The adapter */

#define CA_TYPE_MODEM (ca_modem_get_type())
G_DECLARE_FINAL_TYPE(CaModem, ca_modem, CA, MODEM, GObject)

/* New modem adapter for config's [modem] and [telemetry] groups; idle until started. */
CaModem *ca_modem_new(CaConfig *config);
/* Follow ModemManager on the system bus (asynchronously; MM need not be running). */
void ca_modem_start(CaModem *self);
/* Stop following ModemManager: cancel pending calls, drop the modem ("object-changed" and
 * "facts-changed" are emitted if one was selected). Safe to call twice. */
void ca_modem_stop(CaModem *self);
/* Apply a reloaded config: re-select when [modem] changed; always run the (idempotent)
 * preparation again: re-reads pin-file, re-applies signal-rate, retries a failed Enable. */
void ca_modem_apply_config(CaModem *self, CaConfig *config);

/* The selected modem's MMObject, or NULL (borrowed; take a ref to keep it). */
MMObject *ca_modem_peek_object(CaModem *self);
/* The current facts (borrowed; valid until the next "facts-changed" or return to the loop). */
const CaModemFacts *ca_modem_peek_facts(CaModem *self);
/* TRUE while ModemManager owns its name on the bus. */
gboolean ca_modem_is_manager_present(CaModem *self);
/* TRUE once the first look at ModemManager is done: its modems were listed and the selected
 * one's SIM and bearers were read (or ModemManager is known to be absent, or that took longer
 * than a few seconds). Telemetry waits for it so it does not start with a false "absent".
 * "facts-changed" is emitted when it turns TRUE. */
gboolean ca_modem_is_settled(CaModem *self);

/* The owner of the selected modem's disruptive operations (reset, disable and enable):
 * every module that wants one asks it (borrowed; lives as long as self). */
CaModemOps *ca_modem_get_ops(CaModem *self);

/* Read the selected modem's network time (Modem.Time GetNetworkTime): on success the unix
 * time (us) it gave and the monotonic time (us) of the answer. Errors: CA_ERROR_NOT_READY
 * (no modem, or it has no Modem.Time, e.g. not enabled yet), CA_ERROR_MODEM (refused, or a
 * time that does not parse). */
void ca_modem_get_network_time_async(CaModem *self, GCancellable *cancellable,
                                     GAsyncReadyCallback callback, gpointer user_data);
gboolean ca_modem_get_network_time_finish(CaModem *self, GAsyncResult *result, gint64 *out_unix_us,
                                          gint64 *out_mono_us, GError **error);

/* Signals:
 *   "object-changed" (): the selected modem appeared, disappeared or was replaced (new
 *                    object path, e.g. replug or ModemManager restart); peek the new one.
 *                    The facts are already updated ("facts-changed" came first).
 *   "facts-changed"  (): any field of the facts changed (coalesced in an idle: at most once
 *                    per main loop iteration); emitted only once settled. */

G_END_DECLS
