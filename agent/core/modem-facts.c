/* modem-facts: the CaModemFacts snapshot and its pure helpers (modem-facts.h). */
#include "modem-facts.h"

#include "error.h"
#include "secret-file.h"

#include <math.h>
#include <string.h>

/*****************************************************************************/
/* Facts (pure) */

const char *
ca_modem_pin_status_to_string(CaModemPinStatus status)
{
    switch (status) {
    case CA_MODEM_PIN_NONE:
        return "none";
    case CA_MODEM_PIN_NO_FILE:
        return "no-pin-file";
    case CA_MODEM_PIN_SENDING:
        return "sending";
    case CA_MODEM_PIN_UNLOCKED:
        return "unlocked";
    case CA_MODEM_PIN_WRONG:
        return "wrong";
    case CA_MODEM_PIN_NEEDS_PUK:
        return "needs-puk";
    case CA_MODEM_PIN_FAILED:
        return "failed";
    }
    g_assert_not_reached();
}

void
ca_modem_facts_init(CaModemFacts *facts)
{
    memset(facts, 0, sizeof(*facts));
    facts->state = MM_MODEM_STATE_UNKNOWN;
    facts->failed_reason = MM_MODEM_STATE_FAILED_REASON_NONE;
    facts->unlock_required = MM_MODEM_LOCK_UNKNOWN;
    facts->access_tech = MM_MODEM_ACCESS_TECHNOLOGY_UNKNOWN;
    facts->registration = MM_MODEM_3GPP_REGISTRATION_STATE_UNKNOWN;
    facts->rssi = facts->rsrp = facts->rsrq = facts->snr = NAN;
    facts->pin_status = CA_MODEM_PIN_NONE;
    facts->pin_retries = -1;
}

/* Every owned string of the struct, for clear/copy/equal. */
#define FACTS_STRINGS(f)                                                                           \
    &(f)->path, &(f)->device, &(f)->plugin, &(f)->manufacturer, &(f)->model, &(f)->revision,       \
        &(f)->imei, &(f)->operator_code, &(f)->operator_name, &(f)->lac, &(f)->tac, &(f)->cell_id, \
        &(f)->iccid, &(f)->imsi, &(f)->sim_operator_code, &(f)->sim_operator_name,                 \
        &(f)->bearer_interface

void
ca_modem_facts_clear(CaModemFacts *facts)
{
    char **strings[] = {FACTS_STRINGS(facts)};

    for (gsize i = 0; i < G_N_ELEMENTS(strings); i++)
        g_free(*strings[i]);
    ca_modem_facts_init(facts);
}

void
ca_modem_facts_copy(CaModemFacts *dest, const CaModemFacts *src)
{
    if (dest == src)
        return;
    ca_modem_facts_clear(dest);
    *dest = *src;
    {
        char **strings[] = {FACTS_STRINGS(dest)};

        /* Each still points at src's string: give dest its own. */
        for (gsize i = 0; i < G_N_ELEMENTS(strings); i++)
            *strings[i] = g_strdup(*strings[i]);
    }
}

static gboolean
double_equal(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b);
    return a == b;
}

gboolean
ca_modem_facts_equal(const CaModemFacts *a, const CaModemFacts *b)
{
    char *const *sa[] = {FACTS_STRINGS(a)};
    char *const *sb[] = {FACTS_STRINGS(b)};

    for (gsize i = 0; i < G_N_ELEMENTS(sa); i++)
        if (g_strcmp0(*sa[i], *sb[i]) != 0)
            return FALSE;
    return a->present == b->present && a->state == b->state &&
           a->failed_reason == b->failed_reason && a->unlock_required == b->unlock_required &&
           a->access_tech == b->access_tech && a->signal_quality == b->signal_quality &&
           a->signal_quality_valid == b->signal_quality_valid && double_equal(a->rssi, b->rssi) &&
           double_equal(a->rsrp, b->rsrp) && double_equal(a->rsrq, b->rsrq) &&
           double_equal(a->snr, b->snr) && a->registration == b->registration &&
           a->sim_present == b->sim_present && a->bearer_connected == b->bearer_connected &&
           a->rx_bytes == b->rx_bytes && a->tx_bytes == b->tx_bytes && a->duration == b->duration &&
           a->bearer_stats_valid == b->bearer_stats_valid && a->pin_status == b->pin_status &&
           a->pin_retries == b->pin_retries;
}

CaModemFacts *
ca_modem_facts_dup(const CaModemFacts *src)
{
    CaModemFacts *f = g_new(CaModemFacts, 1);

    ca_modem_facts_init(f);
    ca_modem_facts_copy(f, src);
    return f;
}

void
ca_modem_facts_free(CaModemFacts *facts)
{
    if (!facts)
        return;
    ca_modem_facts_clear(facts);
    g_free(facts);
}

/*****************************************************************************/
/* Pure helpers */

gboolean
ca_modem_match(const char *match, const char *equipment_id, const char *device)
{
    gsize len;

    if (!match || !*match)
        return TRUE;
    if (equipment_id && g_str_equal(match, equipment_id))
        return TRUE;
    if (!device)
        return FALSE;
    len = strlen(match);
    while (len > 1 && match[len - 1] == '/')
        len--;
    return strlen(device) == len && strncmp(match, device, len) == 0;
}

char *
ca_modem_read_pin_file(const char *path, GError **error)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;
    gsize len;

    text = ca_secret_file_read_line(path, &local);
    if (!text) {
        g_set_error(error, CA_ERROR, local->code, "pin-file: %s", local->message);
        return NULL;
    }
    g_strstrip(text);
    len = strlen(text);
    if (len < 4 || len > 8) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG,
                    "pin-file %s: the first line must be a PIN of 4-8 digits", path);
        return NULL;
    }
    for (gsize i = 0; i < len; i++) {
        if (!g_ascii_isdigit(text[i])) {
            g_set_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG,
                        "pin-file %s: the first line must be a PIN of 4-8 digits", path);
            return NULL;
        }
    }
    return g_steal_pointer(&text);
}

char *
ca_modem_format_hex(gulong value, guint width)
{
    if (value == 0)
        return NULL;
    return g_strdup_printf("%0*lX", (int) width, value);
}

/*****************************************************************************/
/* ModemManager's enum names (generated once from libmm-glib 1.20's GEnum nicks; a unit test
 * of the mm adapter compares them with the installed libmm-glib) */

typedef struct {
    int value;
    const char *name;
} CaMmName;

static const CaMmName modem_state_names[] = {
    {MM_MODEM_STATE_FAILED, "failed"},
    {MM_MODEM_STATE_UNKNOWN, "unknown"},
    {MM_MODEM_STATE_INITIALIZING, "initializing"},
    {MM_MODEM_STATE_LOCKED, "locked"},
    {MM_MODEM_STATE_DISABLED, "disabled"},
    {MM_MODEM_STATE_DISABLING, "disabling"},
    {MM_MODEM_STATE_ENABLING, "enabling"},
    {MM_MODEM_STATE_ENABLED, "enabled"},
    {MM_MODEM_STATE_SEARCHING, "searching"},
    {MM_MODEM_STATE_REGISTERED, "registered"},
    {MM_MODEM_STATE_DISCONNECTING, "disconnecting"},
    {MM_MODEM_STATE_CONNECTING, "connecting"},
    {MM_MODEM_STATE_CONNECTED, "connected"},
    {0, NULL},
};

static const CaMmName failed_reason_names[] = {
    {MM_MODEM_STATE_FAILED_REASON_NONE, "none"},
    {MM_MODEM_STATE_FAILED_REASON_UNKNOWN, "unknown"},
    {MM_MODEM_STATE_FAILED_REASON_SIM_MISSING, "sim-missing"},
    {MM_MODEM_STATE_FAILED_REASON_SIM_ERROR, "sim-error"},
    {MM_MODEM_STATE_FAILED_REASON_UNKNOWN_CAPABILITIES, "unknown-capabilities"},
    {MM_MODEM_STATE_FAILED_REASON_ESIM_WITHOUT_PROFILES, "esim-without-profiles"},
    {0, NULL},
};

static const CaMmName lock_names[] = {
    {MM_MODEM_LOCK_UNKNOWN, "unknown"},
    {MM_MODEM_LOCK_NONE, "none"},
    {MM_MODEM_LOCK_SIM_PIN, "sim-pin"},
    {MM_MODEM_LOCK_SIM_PIN2, "sim-pin2"},
    {MM_MODEM_LOCK_SIM_PUK, "sim-puk"},
    {MM_MODEM_LOCK_SIM_PUK2, "sim-puk2"},
    {MM_MODEM_LOCK_PH_SP_PIN, "ph-sp-pin"},
    {MM_MODEM_LOCK_PH_SP_PUK, "ph-sp-puk"},
    {MM_MODEM_LOCK_PH_NET_PIN, "ph-net-pin"},
    {MM_MODEM_LOCK_PH_NET_PUK, "ph-net-puk"},
    {MM_MODEM_LOCK_PH_SIM_PIN, "ph-sim-pin"},
    {MM_MODEM_LOCK_PH_CORP_PIN, "ph-corp-pin"},
    {MM_MODEM_LOCK_PH_CORP_PUK, "ph-corp-puk"},
    {MM_MODEM_LOCK_PH_FSIM_PIN, "ph-fsim-pin"},
    {MM_MODEM_LOCK_PH_FSIM_PUK, "ph-fsim-puk"},
    {MM_MODEM_LOCK_PH_NETSUB_PIN, "ph-netsub-pin"},
    {MM_MODEM_LOCK_PH_NETSUB_PUK, "ph-netsub-puk"},
    {0, NULL},
};

static const CaMmName access_tech_names[] = {
    {MM_MODEM_ACCESS_TECHNOLOGY_POTS, "pots"},
    {MM_MODEM_ACCESS_TECHNOLOGY_GSM, "gsm"},
    {MM_MODEM_ACCESS_TECHNOLOGY_GSM_COMPACT, "gsm-compact"},
    {MM_MODEM_ACCESS_TECHNOLOGY_GPRS, "gprs"},
    {MM_MODEM_ACCESS_TECHNOLOGY_EDGE, "edge"},
    {MM_MODEM_ACCESS_TECHNOLOGY_UMTS, "umts"},
    {MM_MODEM_ACCESS_TECHNOLOGY_HSDPA, "hsdpa"},
    {MM_MODEM_ACCESS_TECHNOLOGY_HSUPA, "hsupa"},
    {MM_MODEM_ACCESS_TECHNOLOGY_HSPA, "hspa"},
    {MM_MODEM_ACCESS_TECHNOLOGY_HSPA_PLUS, "hspa-plus"},
    {MM_MODEM_ACCESS_TECHNOLOGY_1XRTT, "1xrtt"},
    {MM_MODEM_ACCESS_TECHNOLOGY_EVDO0, "evdo0"},
    {MM_MODEM_ACCESS_TECHNOLOGY_EVDOA, "evdoa"},
    {MM_MODEM_ACCESS_TECHNOLOGY_EVDOB, "evdob"},
    {MM_MODEM_ACCESS_TECHNOLOGY_LTE, "lte"},
    {MM_MODEM_ACCESS_TECHNOLOGY_5GNR, "5gnr"},
    {MM_MODEM_ACCESS_TECHNOLOGY_LTE_CAT_M, "lte-cat-m"},
    {MM_MODEM_ACCESS_TECHNOLOGY_LTE_NB_IOT, "lte-nb-iot"},
    {0, NULL},
};

static const CaMmName registration_names[] = {
    {MM_MODEM_3GPP_REGISTRATION_STATE_IDLE, "idle"},
    {MM_MODEM_3GPP_REGISTRATION_STATE_HOME, "home"},
    {MM_MODEM_3GPP_REGISTRATION_STATE_SEARCHING, "searching"},
    {MM_MODEM_3GPP_REGISTRATION_STATE_DENIED, "denied"},
    {MM_MODEM_3GPP_REGISTRATION_STATE_UNKNOWN, "unknown"},
    {MM_MODEM_3GPP_REGISTRATION_STATE_ROAMING, "roaming"},
    {MM_MODEM_3GPP_REGISTRATION_STATE_HOME_SMS_ONLY, "home-sms-only"},
    {MM_MODEM_3GPP_REGISTRATION_STATE_ROAMING_SMS_ONLY, "roaming-sms-only"},
    {MM_MODEM_3GPP_REGISTRATION_STATE_EMERGENCY_ONLY, "emergency-only"},
    {MM_MODEM_3GPP_REGISTRATION_STATE_HOME_CSFB_NOT_PREFERRED, "home-csfb-not-preferred"},
    {MM_MODEM_3GPP_REGISTRATION_STATE_ROAMING_CSFB_NOT_PREFERRED, "roaming-csfb-not-preferred"},
    {MM_MODEM_3GPP_REGISTRATION_STATE_ATTACHED_RLOS, "attached-rlos"},
    {0, NULL},
};

static const char *
lookup(const CaMmName *table, int value)
{
    for (; table->name; table++) {
        if (table->value == value)
            return table->name;
    }
    return NULL;
}

const char *
ca_mm_modem_state_to_string(MMModemState state)
{
    return lookup(modem_state_names, (int) state);
}

const char *
ca_mm_failed_reason_to_string(MMModemStateFailedReason reason)
{
    return lookup(failed_reason_names, (int) reason);
}

const char *
ca_mm_lock_to_string(MMModemLock lock)
{
    return lookup(lock_names, (int) lock);
}

const char *
ca_mm_access_tech_flag_to_string(MMModemAccessTechnology flag)
{
    return lookup(access_tech_names, (int) flag);
}

const char *
ca_mm_registration_to_string(MMModem3gppRegistrationState state)
{
    return lookup(registration_names, (int) state);
}
