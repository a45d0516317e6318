/* modem-ops: the one owner of the modem's disruptive operations. Every Disable, Enable and
 * Reset of the selected modem goes through CaModemOps, which holds a lease: one operation
 * at a time, the others wait in order behind it (a few at most; more are refused). An
 * operation that takes a working modem down announces a planned outage before it starts
 * and says when it is over, so the uplink policy neither fails over nor escalates its
 * watchdog for it (agent.c forwards the signals).
 * Owns: the lease and the operations in flight. Does not own: choosing the modem (CaModem
 * hands it over), what the outage means for the uplinks (agent.c, the uplink module). */
#pragma once
#include <gio/gio.h>
#include <libmm-glib.h>

G_BEGIN_DECLS

typedef enum {
    CA_MODEM_OP_RESET,  /* Modem.Reset; when ModemManager cannot, Disable + Enable */
    CA_MODEM_OP_CYCLE,  /* Disable + Enable: ModemManager re-reads the SMS storage */
    CA_MODEM_OP_ENABLE, /* Enable a disabled modem (no outage: it carried nothing) */
} CaModemOp;

/* "reset", "cycle", "enable". */
const char *ca_modem_op_to_string(CaModemOp op);

/* Longest outage each operation announces (seconds from "outage-begin"), reconnection of
 * the data link included. */
#define CA_MODEM_OPS_RESET_OUTAGE_S 180
#define CA_MODEM_OPS_CYCLE_OUTAGE_S 90

#define CA_TYPE_MODEM_OPS (ca_modem_ops_get_type())
G_DECLARE_FINAL_TYPE(CaModemOps, ca_modem_ops, CA, MODEM_OPS, GObject)

/* No modem until ca_modem_ops_set_modem(). */
CaModemOps *ca_modem_ops_new(void);
/* The modem operations act on (NULL: none). An operation in flight keeps its own
 * reference and finishes on the modem it started on; queued ones use the new one. */
void ca_modem_ops_set_modem(CaModemOps *self, MMModem *modem);
/* Cancel the operation in flight and everything queued (shutdown). */
void ca_modem_ops_stop(CaModemOps *self);

/* Run op on the modem once the lease is free; reason is logged. Errors: CA_ERROR_NOT_READY
 * (no modem), CA_ERROR_LIMIT (too many operations waiting), CA_ERROR_MODEM (ModemManager
 * refused, the fallback too), G_IO_ERROR_CANCELLED. */
void ca_modem_ops_run_async(CaModemOps *self, CaModemOp op, const char *reason,
                            GCancellable *cancellable, GAsyncReadyCallback callback,
                            gpointer user_data);
gboolean ca_modem_ops_run_finish(CaModemOps *self, GAsyncResult *result, GError **error);

/* TRUE while an operation holds the lease or waits for it. */
gboolean ca_modem_ops_is_busy(CaModemOps *self);

/* Signals:
 *   "outage-begin" (const char *op, guint max_seconds): a planned outage of the modem's data
 *                  link starts now and lasts at most max_seconds (reconnection included).
 *   "outage-end"   (const char *op, gboolean ok): the operation is over (ok: it succeeded,
 *                  the link is expected back; not ok: nothing more is planned).
 *   "idle"         (): the lease was released and nothing waits for it. */

G_END_DECLS
