/* modem-facts: a plain value snapshot of the selected modem (CaModemFacts) and the pure
 * helpers around it: copy and compare, [modem] match, the PIN file, hex formatting and the
 * names ModemManager gives its enum values. Uses ModemManager's enum headers (no library):
 * the mm adapter fills the snapshot, telemetry (core) reads it. */
#pragma once
#include <ModemManager.h>
#include <glib.h>

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

/* ModemManager's names for its enum values, as mmcli and libmm-glib print them ("registered",
 * "sim-missing", "sim-pin"); NULL for a value this build does not know (a newer
 * ModemManager may add some). Tables, not switches: new values must not break the build. */
const char *ca_mm_modem_state_to_string(MMModemState state);
const char *ca_mm_failed_reason_to_string(MMModemStateFailedReason reason);
const char *ca_mm_lock_to_string(MMModemLock lock);
const char *ca_mm_registration_to_string(MMModem3gppRegistrationState state);
/* The name of one access technology flag ("lte"); NULL for none or an unknown flag. */
const char *ca_mm_access_tech_flag_to_string(MMModemAccessTechnology flag);

G_END_DECLS
