/* Unit tests for telemetry.c: the telemetry object (every field, nulls, absent), the
 * publication policy (classification table, deadband edges, spacing, periodic), the events
 * of transitions (table) and Home Assistant discovery messages. */
#include "telemetry.h"

#include "autocleanups.h"

#include <math.h>
#include <string.h>

#define SEC G_USEC_PER_SEC

/* A registered LTE modem like the lab's emulator. */
static void
registered(CaModemFacts *f)
{
    ca_modem_facts_init(f);
    f->present = TRUE;
    f->path = g_strdup("/org/freedesktop/ModemManager1/Modem/0");
    f->device = g_strdup("/sys/devices/usb1/1-1");
    f->plugin = g_strdup("simtech");
    f->state = MM_MODEM_STATE_REGISTERED;
    f->failed_reason = MM_MODEM_STATE_FAILED_REASON_NONE;
    f->unlock_required = MM_MODEM_LOCK_NONE;
    f->manufacturer = g_strdup("SIMCOM INCORPORATED");
    f->model = g_strdup("A7670E-LASE");
    f->revision = g_strdup("A011B07A7670M7_F");
    f->imei = g_strdup("861234567890124");
    f->access_tech = MM_MODEM_ACCESS_TECHNOLOGY_LTE;
    f->signal_quality = 70;
    f->signal_quality_valid = TRUE;
    f->rssi = -67;
    f->rsrp = -95;
    f->rsrq = -10;
    f->snr = 12.5;
    f->registration = MM_MODEM_3GPP_REGISTRATION_STATE_HOME;
    f->operator_code = g_strdup("63902");
    f->operator_name = g_strdup("Safaricom");
    f->lac = g_strdup("1A2B");
    f->tac = g_strdup("001A2B");
    f->cell_id = g_strdup("01A2B3C4");
    f->sim_present = TRUE;
    f->iccid = g_strdup("8925402123456789012");
    f->imsi = g_strdup("639021234567890");
    f->sim_operator_code = g_strdup("63902");
    f->sim_operator_name = g_strdup("Safaricom");
    f->bearer_connected = FALSE;
    f->pin_retries = -1;
}

static const cJSON *
path(const cJSON *root, const char *group, const char *field)
{
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(root, group);

    g_assert_nonnull(g);
    g_assert_true(cJSON_HasObjectItem(g, field));
    return cJSON_GetObjectItemCaseSensitive(g, field);
}

static void
assert_string(const cJSON *root, const char *group, const char *field, const char *want)
{
    const cJSON *v = path(root, group, field);

    if (!want) {
        g_assert_true(cJSON_IsNull(v));
        return;
    }
    g_assert_true(cJSON_IsString(v));
    g_assert_cmpstr(v->valuestring, ==, want);
}

static void
assert_number(const cJSON *root, const char *group, const char *field, double want)
{
    const cJSON *v = path(root, group, field);

    if (isnan(want)) {
        g_assert_true(cJSON_IsNull(v));
        return;
    }
    g_assert_true(cJSON_IsNumber(v));
    g_assert_cmpfloat_with_epsilon(v->valuedouble, want, 1e-9);
}

/*****************************************************************************/
/* The telemetry object */

static void
test_build_registered(void)
{
    CaModemFacts f;
    g_autoptr(cJSON) root = NULL;
    const cJSON *at;
    /* 2024-03-01T12:34:56Z */
    gint64 t = G_GINT64_CONSTANT(1709296496) * SEC + 123456;

    registered(&f);
    root = ca_telemetry_build(&f, t);
    g_assert_cmpstr(cJSON_GetObjectItem(root, "ts")->valuestring, ==, "2024-03-01T12:34:56Z");
    assert_string(root, "modem", "state", "registered");
    assert_string(root, "modem", "failed_reason", NULL);
    assert_string(root, "modem", "manufacturer", "SIMCOM INCORPORATED");
    assert_string(root, "modem", "model", "A7670E-LASE");
    assert_string(root, "modem", "revision", "A011B07A7670M7_F");
    assert_string(root, "modem", "imei", "861234567890124");
    at = path(root, "modem", "access_tech");
    g_assert_true(cJSON_IsArray(at));
    g_assert_cmpint(cJSON_GetArraySize(at), ==, 1);
    g_assert_cmpstr(cJSON_GetArrayItem(at, 0)->valuestring, ==, "lte");
    assert_number(root, "modem", "signal_quality", 70);
    assert_number(root, "signal", "rssi", -67);
    assert_number(root, "signal", "rsrp", -95);
    assert_number(root, "signal", "rsrq", -10);
    assert_number(root, "signal", "snr", 12.5);
    assert_string(root, "network", "registration", "home");
    assert_string(root, "network", "operator_code", "63902");
    assert_string(root, "network", "operator_name", "Safaricom");
    assert_string(root, "network", "lac", "1A2B");
    assert_string(root, "network", "tac", "001A2B");
    assert_string(root, "network", "cell_id", "01A2B3C4");
    assert_string(root, "sim", "iccid", "8925402123456789012");
    assert_string(root, "sim", "imsi", "639021234567890");
    assert_string(root, "sim", "operator_code", "63902");
    assert_string(root, "sim", "operator_name", "Safaricom");
    assert_string(root, "sim", "lock", "none");
    assert_string(root, "sim", "pin", "none");
    g_assert_true(cJSON_IsTrue(path(root, "sim", "present")));
    g_assert_true(cJSON_IsFalse(path(root, "bearer", "connected")));
    assert_string(root, "bearer", "interface", NULL);
    assert_number(root, "bearer", "rx_bytes", NAN);
    assert_number(root, "bearer", "tx_bytes", NAN);
    assert_number(root, "bearer", "duration", NAN);
    ca_modem_facts_clear(&f);
}

static void
test_build_connected_multi_tech(void)
{
    CaModemFacts f;
    g_autoptr(cJSON) root = NULL;
    const cJSON *at;

    registered(&f);
    f.state = MM_MODEM_STATE_CONNECTED;
    f.access_tech = MM_MODEM_ACCESS_TECHNOLOGY_UMTS | MM_MODEM_ACCESS_TECHNOLOGY_HSPA;
    f.bearer_connected = TRUE;
    f.bearer_interface = g_strdup("wwan0");
    f.bearer_stats_valid = TRUE;
    f.rx_bytes = G_GUINT64_CONSTANT(5000000000);
    f.tx_bytes = 1234;
    f.duration = 600;
    root = ca_telemetry_build(&f, 0);
    assert_string(root, "modem", "state", "connected");
    at = path(root, "modem", "access_tech");
    g_assert_cmpint(cJSON_GetArraySize(at), ==, 2);
    g_assert_cmpstr(cJSON_GetArrayItem(at, 0)->valuestring, ==, "umts");
    g_assert_cmpstr(cJSON_GetArrayItem(at, 1)->valuestring, ==, "hspa");
    g_assert_true(cJSON_IsTrue(path(root, "bearer", "connected")));
    assert_string(root, "bearer", "interface", "wwan0");
    assert_number(root, "bearer", "rx_bytes", 5000000000.0);
    assert_number(root, "bearer", "tx_bytes", 1234);
    assert_number(root, "bearer", "duration", 600);
    ca_modem_facts_clear(&f);
}

static void
test_build_unknowns_are_null(void)
{
    static const char *const modem_keys[] = {"manufacturer", "model",          "revision", "imei",
                                             "access_tech",  "signal_quality", NULL};
    static const char *const signal_keys[] = {"rssi", "rsrp", "rsrq", "snr", NULL};
    static const char *const network_keys[] = {"operator_code", "operator_name", "lac",
                                               "tac",           "cell_id",       NULL};
    static const char *const sim_keys[] = {"iccid",         "imsi", "operator_code",
                                           "operator_name", "lock", NULL};
    CaModemFacts f;
    g_autoptr(cJSON) root = NULL;

    ca_modem_facts_init(&f);
    f.present = TRUE;
    f.path = g_strdup("/org/freedesktop/ModemManager1/Modem/3");
    f.state = MM_MODEM_STATE_FAILED;
    f.failed_reason = MM_MODEM_STATE_FAILED_REASON_SIM_MISSING;
    root = ca_telemetry_build(&f, 0);
    assert_string(root, "modem", "state", "failed");
    assert_string(root, "modem", "failed_reason", "sim-missing");
    for (const char *const *k = modem_keys; *k; k++)
        g_assert_true(cJSON_IsNull(path(root, "modem", *k)));
    for (const char *const *k = signal_keys; *k; k++)
        g_assert_true(cJSON_IsNull(path(root, "signal", *k)));
    assert_string(root, "network", "registration", "unknown");
    for (const char *const *k = network_keys; *k; k++)
        g_assert_true(cJSON_IsNull(path(root, "network", *k)));
    for (const char *const *k = sim_keys; *k; k++)
        g_assert_true(cJSON_IsNull(path(root, "sim", *k)));
    g_assert_true(cJSON_IsFalse(path(root, "sim", "present")));
    ca_modem_facts_clear(&f);
}

static void
test_build_absent(void)
{
    CaModemFacts f;
    g_autoptr(cJSON) root = NULL;
    g_autofree char *text = NULL;

    ca_modem_facts_init(&f);
    root = ca_telemetry_build(&f, G_GINT64_CONSTANT(1700000000) * SEC);
    text = cJSON_PrintUnformatted(root);
    g_assert_cmpstr(text, ==, "{\"ts\":\"2023-11-14T22:13:20Z\",\"modem\":{\"state\":\"absent\"}}");
}

static void
test_build_locked(void)
{
    CaModemFacts f;
    g_autoptr(cJSON) root = NULL;

    registered(&f);
    f.state = MM_MODEM_STATE_LOCKED;
    f.unlock_required = MM_MODEM_LOCK_SIM_PIN;
    f.pin_status = CA_MODEM_PIN_WRONG;
    f.pin_retries = 2;
    root = ca_telemetry_build(&f, 0);
    assert_string(root, "modem", "state", "locked");
    assert_string(root, "sim", "lock", "sim-pin");
    assert_string(root, "sim", "pin", "wrong");
    assert_number(root, "sim", "pin_retries", 2);
    /* ModemManager cannot know the signal of a locked modem. */
    f.signal_quality_valid = FALSE;
    cJSON_Delete(root);
    root = ca_telemetry_build(&f, 0);
    assert_number(root, "modem", "signal_quality", NAN);
    ca_modem_facts_clear(&f);
}

/*****************************************************************************/
/* Classification (table) */

typedef struct {
    const char *name;
    void (*mutate)(CaModemFacts *f);
    CaTelemetryChange want;
} ClassifyCase;

#define MUT(n, body)                                                                               \
    static void mut_##n(CaModemFacts *f)                                                           \
    {                                                                                              \
        body;                                                                                      \
    }
MUT(nothing, (void) f)
MUT(absent, ca_modem_facts_clear(f))
MUT(new_path, g_free(f->path); f->path = g_strdup("/org/freedesktop/ModemManager1/Modem/1"))
MUT(state, f->state = MM_MODEM_STATE_CONNECTED)
MUT(failed_reason, f->state = MM_MODEM_STATE_FAILED;
    f->failed_reason = MM_MODEM_STATE_FAILED_REASON_SIM_MISSING)
MUT(registration, f->registration = MM_MODEM_3GPP_REGISTRATION_STATE_ROAMING)
MUT(operator_code, g_free(f->operator_code); f->operator_code = g_strdup("63903"))
MUT(operator_name, g_free(f->operator_name); f->operator_name = g_strdup("Airtel"))
MUT(access_tech, f->access_tech = MM_MODEM_ACCESS_TECHNOLOGY_UMTS)
MUT(iccid, g_free(f->iccid); f->iccid = g_strdup("8925402000000000000"))
MUT(imsi, g_clear_pointer(&f->imsi, g_free))
MUT(sim_gone, f->sim_present = FALSE)
MUT(lock, f->unlock_required = MM_MODEM_LOCK_SIM_PIN)
MUT(pin, f->pin_status = CA_MODEM_PIN_WRONG)
MUT(revision, g_free(f->revision); f->revision = g_strdup("B"))
MUT(bearer_up, f->bearer_connected = TRUE; f->bearer_interface = g_strdup("wwan0"))
MUT(quality_4, f->signal_quality = 74)
MUT(quality_5, f->signal_quality = 75)
MUT(quality_minus_5, f->signal_quality = 65)
MUT(quality_unknown, f->signal_quality_valid = FALSE; f->signal_quality = 0)
MUT(rsrp_2_9, f->rsrp = -97.9)
MUT(rsrp_3, f->rsrp = -98)
MUT(rsrq_3, f->rsrq = -7)
MUT(snr_minus_3, f->snr = 9.5)
MUT(rssi_2, f->rssi = -65)
MUT(rssi_unknown, f->rssi = NAN)
MUT(noise, f->signal_quality = 72; f->rsrp = -96.5; f->rsrq = -11; f->snr = 13; f->rssi = -68)
MUT(cell, g_free(f->cell_id); f->cell_id = g_strdup("01A2B3C5"))
MUT(tac, g_clear_pointer(&f->tac, g_free))
MUT(counters, f->bearer_stats_valid = TRUE; f->rx_bytes = 100; f->tx_bytes = 50; f->duration = 3)

static const ClassifyCase classify_cases[] = {
    {"equal", mut_nothing, CA_TELEMETRY_CHANGE_NONE},
    {"absent", mut_absent, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"new-path", mut_new_path, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"state", mut_state, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"failed-reason", mut_failed_reason, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"registration", mut_registration, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"operator-code", mut_operator_code, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"operator-name", mut_operator_name, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"access-tech", mut_access_tech, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"iccid", mut_iccid, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"imsi", mut_imsi, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"sim-gone", mut_sim_gone, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"lock", mut_lock, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"pin", mut_pin, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"revision", mut_revision, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"bearer-up", mut_bearer_up, CA_TELEMETRY_CHANGE_IMPORTANT},
    {"quality-4", mut_quality_4, CA_TELEMETRY_CHANGE_MINOR},
    {"quality-5", mut_quality_5, CA_TELEMETRY_CHANGE_SIGNAL},
    {"quality-minus-5", mut_quality_minus_5, CA_TELEMETRY_CHANGE_SIGNAL},
    {"quality-unknown", mut_quality_unknown, CA_TELEMETRY_CHANGE_SIGNAL},
    {"rsrp-2.9", mut_rsrp_2_9, CA_TELEMETRY_CHANGE_MINOR},
    {"rsrp-3", mut_rsrp_3, CA_TELEMETRY_CHANGE_SIGNAL},
    {"rsrq-3", mut_rsrq_3, CA_TELEMETRY_CHANGE_SIGNAL},
    {"snr-minus-3", mut_snr_minus_3, CA_TELEMETRY_CHANGE_SIGNAL},
    {"rssi-2", mut_rssi_2, CA_TELEMETRY_CHANGE_MINOR},
    {"rssi-unknown", mut_rssi_unknown, CA_TELEMETRY_CHANGE_SIGNAL},
    {"noise-inside-deadband", mut_noise, CA_TELEMETRY_CHANGE_MINOR},
    {"cell", mut_cell, CA_TELEMETRY_CHANGE_SIGNAL},
    {"tac", mut_tac, CA_TELEMETRY_CHANGE_SIGNAL},
    {"counters", mut_counters, CA_TELEMETRY_CHANGE_MINOR},
};

static const CaTelemetryPolicy policy = {
    .interval_s = 60, .min_spacing_s = 10, .quality_deadband = 5, .signal_deadband = 3};

static void
test_classify(gconstpointer data)
{
    const ClassifyCase *c = data;
    CaModemFacts a, b;

    registered(&a);
    registered(&b);
    c->mutate(&b);
    g_assert_cmpstr(ca_telemetry_change_to_string(ca_telemetry_classify(&policy, &a, &b)), ==,
                    ca_telemetry_change_to_string(c->want));
    /* Symmetric: going back is the same kind of change. */
    g_assert_cmpstr(ca_telemetry_change_to_string(ca_telemetry_classify(&policy, &b, &a)), ==,
                    ca_telemetry_change_to_string(c->want));
    ca_modem_facts_clear(&a);
    ca_modem_facts_clear(&b);
}

/*****************************************************************************/
/* When to publish */

static void
test_next_publish(void)
{
    CaModemFacts pub, now;
    gint64 last = 1000 * SEC;

    registered(&pub);
    registered(&now);
    /* Nothing published yet: now. */
    g_assert_cmpint(ca_telemetry_next_publish(&policy, &pub, 0, FALSE, &now, 5), ==, 5);
    /* Equal: the periodic one. */
    g_assert_cmpint(ca_telemetry_next_publish(&policy, &pub, last, TRUE, &now, last + SEC), ==,
                    last + 60 * SEC);
    /* Inside the deadband: still the periodic one. */
    now.signal_quality = 73;
    g_assert_cmpint(ca_telemetry_next_publish(&policy, &pub, last, TRUE, &now, last + SEC), ==,
                    last + 60 * SEC);
    /* A signal change 1 s after the last publication waits for the spacing... */
    now.signal_quality = 50;
    g_assert_cmpint(ca_telemetry_next_publish(&policy, &pub, last, TRUE, &now, last + SEC), ==,
                    last + 10 * SEC);
    /* ... and goes at once when the spacing has passed. */
    g_assert_cmpint(ca_telemetry_next_publish(&policy, &pub, last, TRUE, &now, last + 30 * SEC), ==,
                    last + 30 * SEC);
    /* An important change goes at once, whatever the spacing. */
    now.registration = MM_MODEM_3GPP_REGISTRATION_STATE_SEARCHING;
    g_assert_cmpint(ca_telemetry_next_publish(&policy, &pub, last, TRUE, &now, last + 1), ==,
                    last + 1);
    ca_modem_facts_clear(&pub);
    ca_modem_facts_clear(&now);
}

static void
test_next_publish_no_interval(void)
{
    CaTelemetryPolicy p = policy;
    CaModemFacts pub, now;

    p.interval_s = 0;
    p.min_spacing_s = 0;
    registered(&pub);
    registered(&now);
    g_assert_cmpint(ca_telemetry_next_publish(&p, &pub, 0, TRUE, &now, 100 * SEC), ==, G_MAXINT64);
    now.rsrp = -120;
    g_assert_cmpint(ca_telemetry_next_publish(&p, &pub, 0, TRUE, &now, 100 * SEC), ==, 100 * SEC);
    /* Overdue periodic publication is never in the past. */
    p.interval_s = 5;
    ca_modem_facts_clear(&now);
    registered(&now);
    g_assert_cmpint(ca_telemetry_next_publish(&p, &pub, 0, TRUE, &now, 100 * SEC), ==, 100 * SEC);
    ca_modem_facts_clear(&pub);
    ca_modem_facts_clear(&now);
}

/* A noisy signal cannot publish more than once per spacing: simulate 10 minutes of
 * changes every 100 ms, each beyond the deadband, and count publications. */
static void
test_noisy_signal_rate(void)
{
    CaModemFacts pub, now;
    gint64 last = 0, t;
    guint published = 0;

    registered(&pub);
    registered(&now);
    for (t = SEC; t < 600 * SEC; t += SEC / 10) {
        now.signal_quality = (now.signal_quality == 70) ? 40 : 70;
        if (ca_telemetry_next_publish(&policy, &pub, last, TRUE, &now, t) <= t) {
            ca_modem_facts_copy(&pub, &now);
            last = t;
            published++;
        }
    }
    g_assert_cmpuint(published, <=, 60);
    g_assert_cmpuint(published, >=, 55);
    ca_modem_facts_clear(&pub);
    ca_modem_facts_clear(&now);
}

/*****************************************************************************/
/* Events (table) */

typedef struct {
    const char *name;
    void (*old)(CaModemFacts *f);
    void (*now)(CaModemFacts *f);
    const char *types; /* space-separated, in order */
} EventCase;

MUT(reg, (void) f)
MUT(unregistered, f->registration = MM_MODEM_3GPP_REGISTRATION_STATE_SEARCHING;
    f->state = MM_MODEM_STATE_SEARCHING)
MUT(sim_missing, g_free(f->path); f->path = g_strdup("/org/freedesktop/ModemManager1/Modem/4");
    f->state = MM_MODEM_STATE_FAILED; f->failed_reason = MM_MODEM_STATE_FAILED_REASON_SIM_MISSING;
    f->sim_present = FALSE)
MUT(locked_pin, f->state = MM_MODEM_STATE_LOCKED; f->unlock_required = MM_MODEM_LOCK_SIM_PIN;
    f->pin_retries = 3)
MUT(locked_wrong, f->state = MM_MODEM_STATE_LOCKED; f->unlock_required = MM_MODEM_LOCK_SIM_PIN;
    f->pin_status = CA_MODEM_PIN_WRONG; f->pin_retries = 2)
MUT(locked_nofile, f->state = MM_MODEM_STATE_LOCKED; f->unlock_required = MM_MODEM_LOCK_SIM_PIN;
    f->pin_status = CA_MODEM_PIN_NO_FILE)
MUT(unlocked, f->state = MM_MODEM_STATE_DISABLED; f->pin_status = CA_MODEM_PIN_UNLOCKED)
MUT(puk, f->state = MM_MODEM_STATE_LOCKED; f->unlock_required = MM_MODEM_LOCK_SIM_PUK;
    f->pin_status = CA_MODEM_PIN_NEEDS_PUK)

static const EventCase event_cases[] = {
    {"nothing", mut_reg, mut_reg, ""},
    {"signal-only", mut_reg, mut_quality_5, ""},
    {"added", mut_absent, mut_reg, "modem-added"},
    {"removed", mut_reg, mut_absent, "modem-removed"},
    {"replaced", mut_reg, mut_new_path, "modem-removed modem-added"},
    {"lost-registration", mut_reg, mut_unregistered, "modem-state-changed registration-changed"},
    {"regained", mut_unregistered, mut_reg, "modem-state-changed registration-changed"},
    {"roaming", mut_reg, mut_registration, "registration-changed"},
    {"sim-missing-at-start", mut_absent, mut_sim_missing, "modem-added sim-missing"},
    {"sim-missing-replaced", mut_reg, mut_sim_missing, "modem-removed modem-added sim-missing"},
    {"sim-missing-stays", mut_sim_missing, mut_sim_missing, ""},
    {"locked", mut_reg, mut_locked_pin, "modem-state-changed sim-locked"},
    {"locked-added", mut_absent, mut_locked_pin, "modem-added sim-locked"},
    {"pin-wrong", mut_locked_pin, mut_locked_wrong, "sim-pin-wrong"},
    {"pin-wrong-again-after-replug", mut_absent, mut_locked_wrong,
     "modem-added sim-locked sim-pin-wrong"},
    {"pin-file-missing", mut_locked_pin, mut_locked_nofile, "sim-pin-missing"},
    {"unlocked", mut_locked_pin, mut_unlocked, "modem-state-changed sim-unlocked"},
    {"puk", mut_locked_wrong, mut_puk, "sim-locked"},
    {"sim-swapped", mut_reg, mut_iccid, "sim-changed"},
    {"gone-nothing-else", mut_absent, mut_absent, ""},
};

static void
test_events(gconstpointer data)
{
    const EventCase *c = data;
    CaModemFacts a, b;
    g_autoptr(GPtrArray) events = NULL;
    g_autoptr(GString) types = g_string_new(NULL);

    registered(&a);
    registered(&b);
    c->old(&a);
    c->now(&b);
    events = ca_telemetry_events(&a, &b);
    for (guint i = 0; i < events->len; i++) {
        const cJSON *e = g_ptr_array_index(events, i);
        const cJSON *type = cJSON_GetObjectItem(e, "type");

        g_assert_true(cJSON_IsString(type));
        g_string_append_printf(types, "%s%s", i ? " " : "", type->valuestring);
        g_assert_false(cJSON_HasObjectItem(e, "ts")); /* the transport adds it */
    }
    g_assert_cmpstr(types->str, ==, c->types);
    ca_modem_facts_clear(&a);
    ca_modem_facts_clear(&b);
}

static void
test_event_fields(void)
{
    CaModemFacts a, b;
    g_autoptr(GPtrArray) events = NULL;
    const cJSON *e;

    registered(&a);
    registered(&b);
    mut_unregistered(&b);
    events = ca_telemetry_events(&a, &b);
    g_assert_cmpuint(events->len, ==, 2);
    e = g_ptr_array_index(events, 0);
    g_assert_cmpstr(cJSON_GetObjectItem(e, "from")->valuestring, ==, "registered");
    g_assert_cmpstr(cJSON_GetObjectItem(e, "to")->valuestring, ==, "searching");
    e = g_ptr_array_index(events, 1);
    g_assert_cmpstr(cJSON_GetObjectItem(e, "from")->valuestring, ==, "home");
    g_assert_cmpstr(cJSON_GetObjectItem(e, "to")->valuestring, ==, "searching");
    g_assert_cmpstr(cJSON_GetObjectItem(e, "operator_code")->valuestring, ==, "63902");
    g_clear_pointer(&events, g_ptr_array_unref);

    /* A SIM swap names the SIMs by their ICCIDs' last digits, and no IMSI (personal data
     * stays out of events unless --log-personal-info). */
    ca_modem_facts_clear(&b);
    registered(&b);
    mut_iccid(&b);
    events = ca_telemetry_events(&a, &b);
    g_assert_cmpuint(events->len, ==, 1);
    e = g_ptr_array_index(events, 0);
    g_assert_cmpstr(cJSON_GetObjectItem(e, "type")->valuestring, ==, "sim-changed");
    g_assert_cmpstr(cJSON_GetObjectItem(e, "old_iccid")->valuestring, ==, "...9012");
    g_assert_cmpstr(cJSON_GetObjectItem(e, "iccid")->valuestring, ==, "...0000");
    g_assert_false(cJSON_HasObjectItem(e, "imsi"));
    g_clear_pointer(&events, g_ptr_array_unref);
    ca_modem_facts_clear(&b);
    registered(&b);
    mut_unregistered(&b);

    mut_locked_wrong(&b);
    a.state = MM_MODEM_STATE_LOCKED;
    a.unlock_required = MM_MODEM_LOCK_SIM_PIN;
    events = ca_telemetry_events(&a, &b);
    e = g_ptr_array_index(events, events->len - 1);
    g_assert_cmpstr(cJSON_GetObjectItem(e, "type")->valuestring, ==, "sim-pin-wrong");
    g_assert_cmpint(cJSON_GetObjectItem(e, "retries_left")->valueint, ==, 2);
    g_assert_nonnull(strstr(cJSON_GetObjectItem(e, "message")->valuestring, "not sent again"));
    ca_modem_facts_clear(&a);
    ca_modem_facts_clear(&b);
}

/*****************************************************************************/
/* Home Assistant discovery */

static void
test_ha_discovery(void)
{
    g_autoptr(GPtrArray) msgs =
        ca_telemetry_ha_discovery("homeassistant", "cellagent/dev.1", "dev.1", "1.2.3", FALSE);
    g_autoptr(GHashTable) ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    gboolean have_rsrp = FALSE, have_connected = FALSE, have_usage = FALSE;

    g_assert_cmpuint(msgs->len, >=, 8);
    for (guint i = 0; i < msgs->len; i++) {
        const CaTelemetryMessage *m = g_ptr_array_index(msgs, i);
        g_autoptr(cJSON) cfg = cJSON_Parse(m->payload);
        g_auto(GStrv) levels = g_strsplit(m->topic, "/", -1);
        const cJSON *dev, *uid;

        /* <prefix>/<component>/<node_id>/<object_id>/config, ids of [a-zA-Z0-9_-] */
        g_assert_cmpuint(g_strv_length(levels), ==, 5);
        g_assert_cmpstr(levels[0], ==, "homeassistant");
        g_assert_true(g_str_equal(levels[1], "sensor") || g_str_equal(levels[1], "binary_sensor"));
        g_assert_cmpstr(levels[2], ==, "cellagent_dev_1");
        g_assert_true(g_regex_match_simple("^[a-zA-Z0-9_-]+$", levels[3], 0, 0));
        g_assert_cmpstr(levels[4], ==, "config");
        g_assert_nonnull(cfg);
        if (g_str_has_prefix(levels[3], "data_")) {
            /* The usage sensors read <base>/usage. */
            have_usage = TRUE;
            g_assert_cmpstr(cJSON_GetObjectItem(cfg, "state_topic")->valuestring, ==,
                            "cellagent/dev.1/usage");
        } else {
            g_assert_cmpstr(cJSON_GetObjectItem(cfg, "state_topic")->valuestring, ==,
                            "cellagent/dev.1/telemetry");
        }
        if (g_str_equal(levels[3], "data_used")) {
            g_assert_cmpstr(cJSON_GetObjectItem(cfg, "device_class")->valuestring, ==, "data_size");
            g_assert_cmpstr(cJSON_GetObjectItem(cfg, "unit_of_measurement")->valuestring, ==, "B");
            g_assert_cmpstr(cJSON_GetObjectItem(cfg, "state_class")->valuestring, ==,
                            "total_increasing");
        }
        g_assert_cmpstr(cJSON_GetObjectItem(cfg, "availability_topic")->valuestring, ==,
                        "cellagent/dev.1/status");
        g_assert_nonnull(strstr(cJSON_GetObjectItem(cfg, "value_template")->valuestring, "{{"));
        uid = cJSON_GetObjectItem(cfg, "unique_id");
        g_assert_true(cJSON_IsString(uid));
        g_assert_false(g_hash_table_contains(ids, uid->valuestring));
        g_hash_table_add(ids, g_strdup(uid->valuestring));
        dev = cJSON_GetObjectItem(cfg, "device");
        g_assert_cmpstr(cJSON_GetArrayItem(cJSON_GetObjectItem(dev, "identifiers"), 0)->valuestring,
                        ==, "cellagent_dev_1");
        g_assert_cmpstr(cJSON_GetObjectItem(dev, "sw_version")->valuestring, ==, "1.2.3");
        if (g_str_equal(levels[3], "rsrp")) {
            have_rsrp = TRUE;
            g_assert_cmpstr(cJSON_GetObjectItem(cfg, "unit_of_measurement")->valuestring, ==,
                            "dBm");
            g_assert_cmpstr(cJSON_GetObjectItem(cfg, "device_class")->valuestring, ==,
                            "signal_strength");
        }
        if (g_str_equal(levels[1], "binary_sensor"))
            have_connected = TRUE;
    }
    g_assert_true(have_rsrp);
    g_assert_true(have_connected);
    g_assert_true(have_usage);
}

static void
test_ha_removal(void)
{
    g_autoptr(GPtrArray) add = ca_telemetry_ha_discovery("ha", "x/d", "d", "1", FALSE);
    g_autoptr(GPtrArray) del = ca_telemetry_ha_discovery("ha", "x/d", "d", "1", TRUE);

    g_assert_cmpuint(add->len, ==, del->len);
    for (guint i = 0; i < del->len; i++) {
        const CaTelemetryMessage *a = g_ptr_array_index(add, i);
        const CaTelemetryMessage *d = g_ptr_array_index(del, i);

        g_assert_cmpstr(a->topic, ==, d->topic);
        g_assert_cmpstr(d->payload, ==, "");
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/telemetry/build/registered", test_build_registered);
    g_test_add_func("/telemetry/build/connected-multi-tech", test_build_connected_multi_tech);
    g_test_add_func("/telemetry/build/unknowns-are-null", test_build_unknowns_are_null);
    g_test_add_func("/telemetry/build/absent", test_build_absent);
    g_test_add_func("/telemetry/build/locked", test_build_locked);
    for (gsize i = 0; i < G_N_ELEMENTS(classify_cases); i++) {
        g_autofree char *name = g_strdup_printf("/telemetry/classify/%s", classify_cases[i].name);
        g_test_add_data_func(name, &classify_cases[i], test_classify);
    }
    g_test_add_func("/telemetry/next-publish/policy", test_next_publish);
    g_test_add_func("/telemetry/next-publish/no-interval", test_next_publish_no_interval);
    g_test_add_func("/telemetry/next-publish/noisy-signal-rate", test_noisy_signal_rate);
    for (gsize i = 0; i < G_N_ELEMENTS(event_cases); i++) {
        g_autofree char *name = g_strdup_printf("/telemetry/events/%s", event_cases[i].name);
        g_test_add_data_func(name, &event_cases[i], test_events);
    }
    g_test_add_func("/telemetry/events/fields", test_event_fields);
    g_test_add_func("/telemetry/homeassistant/discovery", test_ha_discovery);
    g_test_add_func("/telemetry/homeassistant/removal", test_ha_removal);
    return g_test_run();
}
