/* sms: the SMS bridge on ModemManager's Messaging API, built so that no message is lost.
 * Outgoing requests are validated, spooled durably and sent one at a time in order
 * (rate-limited, retried with backoff, deduplicated by id); received messages are spooled,
 * handed up for publication and deleted from the modem only after the broker has them.
 * Owns: state-dir/sms (spools, dedupe journals), the modem's SMS storage.
 * Does not own: MQTT (agent.c publishes the signals' payloads), choosing and enabling the
 * modem (CaModem hands the MMObject over through agent.c). docs/sms.md has the details. */
#pragma once
#include "config.h"
#include "modem-ops.h"

#include <cjson/cJSON.h>
#include <gio/gio.h>
#include <libmm-glib.h>

G_BEGIN_DECLS

#define CA_TYPE_SMS (ca_sms_get_type())
G_DECLARE_FINAL_TYPE(CaSms, ca_sms, CA, SMS, GObject)

/* Open the spools and journals under <state-dir>/sms; nothing happens until
 * ca_sms_start(). Error: CA_ERROR_IO (state directory unusable). */
CaSms *ca_sms_new(CaConfig *config, GError **error);
/* Begin: re-announce ("received") messages spooled but not yet acknowledged, and send
 * spooled requests once a registered modem is set. Connect the signals first. */
void ca_sms_start(CaSms *self);
/* Stop every modem operation (shutdown); spooled work stays for the next start. */
void ca_sms_stop(CaSms *self);
/* Apply a reloaded config ([sms] keys take effect at once; limits on the next use). */
void ca_sms_set_config(CaSms *self, CaConfig *config);

/* The modem to use (NULL: none). Replacing it cancels what ran on the old one; sending
 * waits until the modem is registered. */
void ca_sms_set_modem(CaSms *self, MMObject *object);

/* The owner of the modem's disruptive operations (CaModem's), through which the resync
 * disables and enables the modem; NULL: none (no resync possible). */
void ca_sms_set_modem_ops(CaSms *self, CaModemOps *ops);
/* Whether cellular carries the device's traffic now. While it does, automatic resyncs
 * (each one drops the data link for a moment) run at most once per [sms] resync-interval;
 * when it stops, one that waited runs at once. */
void ca_sms_set_cellular_in_use(CaSms *self, gboolean in_use);

/* An sms/out payload arrived (already acknowledged to the broker): validate it, spool it
 * durably before returning, and answer on "result" (queued, rejected, or a repeated id's
 * latest result). */
void ca_sms_handle_request(CaSms *self, const char *payload, gsize len);

/* The broker acknowledged (error NULL) or did not take (error set: retried later) the
 * sms/in message id handed up by "received". */
void ca_sms_received_done(CaSms *self, const char *id, const GError *error);

/* Re-read the modem's message storage (ModemManager can miss a new-message notice; only
 * re-enabling the modem makes it list the storage again): waits for the sender to be idle,
 * disables and re-enables the modem through CaModemOps, lists the messages. Error: CA_ERROR_NOT_READY (no
 * enabled modem), CA_ERROR_MODEM. */
void ca_sms_resync_async(CaSms *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                         gpointer user_data);
/* On success a summary object {"messages":N,"pending":M} (caller owns it). */
cJSON *ca_sms_resync_finish(CaSms *self, GAsyncResult *result, GError **error);

/* Requests waiting in the outgoing spool. */
guint ca_sms_get_queue_length(CaSms *self);
/* Received messages in the spool, waiting for the broker to take them. */
guint ca_sms_get_received_waiting(CaSms *self);

/* Signals:
 *   "result"   (const char *json): publish on sms/out/result (QoS 1).
 *   "received" (const char *id, const char *json): publish on sms/in (QoS 1) and call
 *              ca_sms_received_done() with the outcome. Emitted again for the same id after
 *              a failure or a restart.
 *   "event"    (const char *type, gpointer fields): publish an event; fields is a cJSON
 *              object owned by the emitter (copy what you keep). Types: "sms-storage-full",
 *              "sms-resync". */

G_END_DECLS
