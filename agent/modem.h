/* modem: cellagent's view of the cellular modem, through ModemManager (libmm-glib).
 * CaModem follows ModemManager on the system bus (MMManager, never auto-starting it),
 * selects one modem ([modem] match, else the first), brings it to a usable state
 * (PIN unlock from pin-file, never retrying a wrong PIN; enable; Signal and 3GPP location
 * setup) and keeps a snapshot of its facts (CaModemFacts) up to date from D-Bus signals.
 * Owns: the MMManager and the selected MMObject. Does not own: what is done with the facts
 * (telemetry.c builds JSON, agent.c publishes) nor SMS (sms.c is handed the MMObject).
 * Nothing here makes a synchronous D-Bus call. */
#pragma once
#include "config.h"

#include <gio/gio.h>
#include <libmm-glib.h>

G_BEGIN_DECLS

/*****************************************************************************/
/* Facts: a plain value snapshot of the selected modem (pure, copyable) */

/* What the agent did with the SIM PIN for the current modem. */
typedef enum {
    CA_MODEM_PIN_NONE,      /* no PIN needed (or not known yet) */
    CA_MODEM_PIN_NO_FILE,   /* SIM locked and no pin-file configured (or unreadable/empty) */
    CA_MODEM_PIN_SENDING,   /* SendPin in flight */
    CA_MODEM_PIN_UNLOCKED,  /* the pin-file's PIN unlocked the SIM */
    CA_MODEM_PIN_WRONG,     /* the SIM refused the PIN: never sent again until pin-file changes */
    CA_MODEM_PIN_NEEDS_PUK, /* SIM wants a PUK (or another code we cannot give) */
    CA_MODEM_PIN_FAILED,    /* SendPin failed for another reason (will retry with backoff) */
} CaModemPinStatus;

/* Strings ("none", "no-pin-file", "sending", "unlocked", "wrong", "needs-puk", "failed"). */
const char *ca_modem_pin_status_to_string(CaModemPinStatus status);

/* Doubles are NAN when unknown; strings NULL when unknown; enums *_UNKNOWN when unknown. */
typedef struct {
    gboolean present;   /* a modem is selected; everything below is unknown otherwise */
    char *path;         /* D-Bus object path (/org/freedesktop/ModemManager1/Modem/N) */
    char *device;       /* physical device path (sysfs), as [modem] match may name it */
    char *plugin;       /* ModemManager plugin */
    MMModemState state; /* MM_MODEM_STATE_* (FAILED, LOCKED, DISABLED, ..., CONNECTED) */
    MMModemStateFailedReason failed_reason; /* meaningful when state == FAILED */
    MMModemLock unlock_required;            /* MM_MODEM_LOCK_NONE when unlocked */
    char *manufacturer;
    char *model;
    char *revision;
    char *imei;                          /* equipment identifier */
    MMModemAccessTechnology access_tech; /* bit mask */
    guint signal_quality;                /* 0-100 % */
    gboolean signal_quality_valid;       /* FALSE: signal_quality is unknown */
    double rssi, rsrp, rsrq, snr;        /* dBm, dBm, dB, dB (Signal interface) */
    MMModem3gppRegistrationState registration;
    char *operator_code; /* MCCMNC of the serving network */
    char *operator_name;
    char *lac;            /* hex, upper case, as mmcli prints it; NULL when unknown or 0 */
    char *tac;            /* hex */
    char *cell_id;        /* hex */
    gboolean sim_present; /* a SIM object exists */
    char *iccid;
    char *imsi;
    char *sim_operator_code;
    char *sim_operator_name;
    gboolean bearer_connected;  /* any bearer connected */
    char *bearer_interface;     /* its data interface (e.g. wwan0, usb0, ppp0) */
    guint64 rx_bytes, tx_bytes; /* bearer statistics of the current/last session */
    guint duration;             /* seconds */
    gboolean bearer_stats_valid;
    CaModemPinStatus pin_status;
    int pin_retries; /* attempts left for the lock in unlock_required; -1 unknown */
} CaModemFacts;

/* Zeroed, "absent" facts (doubles NAN). */
void ca_modem_facts_init(CaModemFacts *facts);
/* Free the strings and return to the "absent" state. */
void ca_modem_facts_clear(CaModemFacts *facts);
/* Deep copy (dest is cleared first). */
void ca_modem_facts_copy(CaModemFacts *dest, const CaModemFacts *src);
/* TRUE when every field is equal (NAN equals NAN). */
gboolean ca_modem_facts_equal(const CaModemFacts *a, const CaModemFacts *b);
/* Heap copies for keeping a snapshot. */
CaModemFacts *ca_modem_facts_dup(const CaModemFacts *src);
void ca_modem_facts_free(CaModemFacts *facts);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaModemFacts, ca_modem_facts_free)

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

/* Reset the selected modem (Modem.Reset): for the watchdog and cmd/modem-reset.
 * Errors: CA_ERROR_NOT_READY (no modem), CA_ERROR_MODEM (ModemManager refused). */
void ca_modem_reset_async(CaModem *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data);
gboolean ca_modem_reset_finish(CaModem *self, GAsyncResult *result, GError **error);

/* Signals:
 *   "object-changed" (): the selected modem appeared, disappeared or was replaced (new
 *                    object path, e.g. replug or ModemManager restart); peek the new one.
 *                    The facts are already updated ("facts-changed" came first).
 *   "facts-changed"  (): any field of the facts changed (coalesced in an idle: at most once
 *                    per main loop iteration); emitted only once settled. */

/*****************************************************************************/
/* Pure helpers (unit-tested) */

/* Does a modem with this equipment id and physical device path match [modem] match?
 * Empty match matches everything; otherwise equal to the equipment id, or to the device
 * path (trailing '/' ignored). */
gboolean ca_modem_match(const char *match, const char *equipment_id, const char *device);
/* Read the PIN from the first line of a pin-file: 4-8 digits. CA_ERROR_IO or
 * CA_ERROR_INVALID_CONFIG. */
char *ca_modem_read_pin_file(const char *path, GError **error);
/* Hex as mmcli prints LAC/TAC/cell id: upper case, zero-padded to width (mmcli: LAC 4, TAC 6,
 * cell id 8); NULL for 0 (unknown). */
char *ca_modem_format_hex(gulong value, guint width);

G_END_DECLS
