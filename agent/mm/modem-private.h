/* modem-private: CaModem's state, shared by modem.c (the object, following ModemManager,
 * selecting the modem), modem-snapshot.c (facts from the D-Bus property cache, SIM and
 * bearer reads, settling) and modem-prepare.c (PIN, enable, Signal and Location setup).
 * Not for other modules. */
#pragma once
#include "backoff.h"
#include "modem-ops.h"
#include "modem-settings.h"
#include "modem.h"

struct _CaModem {
    GObject parent;

    CaModemSettings set;       /* read from the config once per load or reload */
    GCancellable *cancellable; /* life of start..stop */
    gboolean started;

    GDBusConnection *bus;
    MMManager *manager;
    GSource *retry; /* owned: get the bus / manager again */
    CaBackoff backoff;
    gboolean manager_present; /* ModemManager owns its name */

    gboolean settled;
    GSource *settle_limit; /* owned */

    /* The selected modem and what hangs off it */
    MMObject *object;
    GCancellable *object_cancellable; /* cancelled when the object is dropped */
    char *sim_path;                   /* SIM path the MMSim below belongs to (or in flight) */
    MMSim *sim;
    GStrv bearer_paths; /* bearer list the array below belongs to (or in flight) */
    GPtrArray *bearers; /* MMBearer */
    MMLocation3gpp *location;
    guint loads_pending; /* SIM / bearer reads in flight for settling */
    gboolean signal_unsupported;
    gboolean location_unsupported;
    gboolean warned_no_pin;
    gboolean warned_no_match;

    /* Preparation (PIN, enable, setup) */
    gboolean preparing;
    gboolean prepare_again;
    GSource *prepare_retry; /* owned */
    CaBackoff prepare_backoff;
    CaModemPinStatus pin_status;

    /* The refused PIN: sha256(equipment id, PIN), kept across replugs, ModemManager and agent
     * restarts (state-dir), so a wrong PIN is never sent twice. */
    char *pin_rejected;
    /* A SendPin whose outcome is unknown (D-Bus error or cancelled in flight): its key and
     * the SIM's PIN attempts left before it. Sent again only once the SIM shows it did not
     * count an attempt; a reload forgets it. */
    char *pin_uncertain;
    guint pin_uncertain_retries;
    int pin_wrong_retries; /* attempts left after the refusal we saw; -1 unknown */

    CaModemFacts facts;
    GSource *facts_idle; /* owned: coalesced rebuild */

    CaModemOps *ops; /* the one owner of Disable/Enable/Reset */
};

/* modem.c */
/* "Modem/3" from an object path (what a person recognises from mmcli). */
const char *ca_modem_short_path(const char *path);
void ca_modem_emit_facts_changed(CaModem *self);

/* modem-snapshot.c */
void ca_modem_schedule_facts(CaModem *self);
/* Rebuild now (not coalesced), so callers can peek a fresh snapshot before they emit. */
void ca_modem_flush_facts(CaModem *self);
void ca_modem_set_settled(CaModem *self);
gboolean ca_modem_settle_limit_cb(gpointer user_data);
void ca_modem_check_settled(CaModem *self);
void ca_modem_property_notify_cb(GObject *proxy, GParamSpec *pspec, gpointer user_data);
void ca_modem_location_notify_cb(GObject *proxy, GParamSpec *pspec, gpointer user_data);
void ca_modem_update_sim(CaModem *self, MMModem *modem);
void ca_modem_update_bearers(CaModem *self, MMModem *modem);
void ca_modem_clear_bearers(CaModem *self);

/* modem-prepare.c */
/* Bring the selected modem forward as far as it can go now; runs again on state changes. */
void ca_modem_prepare(CaModem *self);
void ca_modem_load_pin_rejected(CaModem *self);
