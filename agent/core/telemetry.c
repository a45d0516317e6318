/* telemetry: facts -> telemetry JSON, publication policy, events, Home Assistant discovery.
 * Pure: no I/O, no clock of its own (times are passed in). See telemetry.h. */
#define CA_LOG_MODULE "telemetry"
#include "telemetry.h"

#include "autocleanups.h"
#include "log.h"
#include "timestamp.h"

#include <math.h>
#include <string.h>

/*****************************************************************************/
/* Policy */

const char *
ca_telemetry_change_to_string(CaTelemetryChange change)
{
    switch (change) {
    case CA_TELEMETRY_CHANGE_NONE:
        return "none";
    case CA_TELEMETRY_CHANGE_MINOR:
        return "minor";
    case CA_TELEMETRY_CHANGE_SIGNAL:
        return "signal";
    case CA_TELEMETRY_CHANGE_IMPORTANT:
        return "important";
    }
    g_assert_not_reached();
}

/* A dB value moved by at least the deadband, or became known/unknown. */
static gboolean
db_moved(double a, double b, double deadband)
{
    if (isnan(a) || isnan(b))
        return isnan(a) != isnan(b);
    return fabs(a - b) >= deadband;
}

CaTelemetryChange
ca_telemetry_classify(const CaTelemetryPolicy *policy, const CaModemFacts *published,
                      const CaModemFacts *now)
{
    const CaModemFacts *a = published, *b = now;
    guint dq;

    if (ca_modem_facts_equal(a, b))
        return CA_TELEMETRY_CHANGE_NONE;
    if (a->present != b->present || g_strcmp0(a->path, b->path) != 0 || a->state != b->state ||
        a->failed_reason != b->failed_reason || a->unlock_required != b->unlock_required ||
        a->pin_status != b->pin_status || a->pin_retries != b->pin_retries ||
        a->registration != b->registration || g_strcmp0(a->operator_code, b->operator_code) ||
        g_strcmp0(a->operator_name, b->operator_name) || a->access_tech != b->access_tech ||
        g_strcmp0(a->manufacturer, b->manufacturer) || g_strcmp0(a->model, b->model) ||
        g_strcmp0(a->revision, b->revision) || g_strcmp0(a->imei, b->imei) ||
        a->sim_present != b->sim_present || g_strcmp0(a->iccid, b->iccid) ||
        g_strcmp0(a->imsi, b->imsi) || g_strcmp0(a->sim_operator_code, b->sim_operator_code) ||
        g_strcmp0(a->sim_operator_name, b->sim_operator_name) ||
        a->bearer_connected != b->bearer_connected ||
        g_strcmp0(a->bearer_interface, b->bearer_interface))
        return CA_TELEMETRY_CHANGE_IMPORTANT;

    dq = a->signal_quality > b->signal_quality ? a->signal_quality - b->signal_quality
                                               : b->signal_quality - a->signal_quality;
    if (a->signal_quality_valid != b->signal_quality_valid ||
        (b->signal_quality_valid && dq >= MAX(policy->quality_deadband, 1)) ||
        db_moved(a->rssi, b->rssi, policy->signal_deadband) ||
        db_moved(a->rsrp, b->rsrp, policy->signal_deadband) ||
        db_moved(a->rsrq, b->rsrq, policy->signal_deadband) ||
        db_moved(a->snr, b->snr, policy->signal_deadband) || g_strcmp0(a->lac, b->lac) ||
        g_strcmp0(a->tac, b->tac) || g_strcmp0(a->cell_id, b->cell_id))
        return CA_TELEMETRY_CHANGE_SIGNAL;
    return CA_TELEMETRY_CHANGE_MINOR;
}

gint64
ca_telemetry_next_publish(const CaTelemetryPolicy *policy, const CaModemFacts *published,
                          gint64 last_publish_us, gboolean have_published, const CaModemFacts *now,
                          gint64 now_us)
{
    gint64 next = G_MAXINT64;

    if (!have_published)
        return now_us;
    switch (ca_telemetry_classify(policy, published, now)) {
    case CA_TELEMETRY_CHANGE_IMPORTANT:
        return now_us;
    case CA_TELEMETRY_CHANGE_SIGNAL:
        next = last_publish_us + (gint64) policy->min_spacing_s * G_USEC_PER_SEC;
        break;
    case CA_TELEMETRY_CHANGE_MINOR:
    case CA_TELEMETRY_CHANGE_NONE:
        break;
    }
    if (policy->interval_s > 0)
        next = MIN(next, last_publish_us + (gint64) policy->interval_s * G_USEC_PER_SEC);
    return MAX(next, now_us);
}

/*****************************************************************************/
/* The telemetry object */

static void
add_string(cJSON *obj, const char *name, const char *value)
{
    if (value)
        cJSON_AddStringToObject(obj, name, value);
    else
        cJSON_AddNullToObject(obj, name);
}

static void
add_db(cJSON *obj, const char *name, double value)
{
    if (isnan(value))
        cJSON_AddNullToObject(obj, name);
    else
        cJSON_AddNumberToObject(obj, name, round(value * 100.0) / 100.0);
}

static cJSON *
access_tech_array(MMModemAccessTechnology mask)
{
    cJSON *array = cJSON_CreateArray();

    for (guint bit = 0; bit < 32; bit++) {
        guint flag = 1u << bit;

        if (mask & flag) {
            /* A flags type: the one-flag "mask" string is the flag's own name ("lte"). */
            const char *name = ca_mm_access_tech_flag_to_string(flag);

            if (name)
                cJSON_AddItemToArray(array, cJSON_CreateString(name));
        }
    }
    return array;
}

static const char *
lock_string(MMModemLock lock)
{
    return lock == MM_MODEM_LOCK_UNKNOWN ? NULL : ca_mm_lock_to_string(lock);
}

cJSON *
ca_telemetry_build(const CaModemFacts *f, gint64 real_time_us)
{
    cJSON *root = cJSON_CreateObject();
    g_autofree char *ts = ca_timestamp_format(real_time_us);
    cJSON *modem, *signal, *network, *sim, *bearer;

    cJSON_AddStringToObject(root, "ts", ts);
    modem = cJSON_AddObjectToObject(root, "modem");
    if (!f->present) {
        cJSON_AddStringToObject(modem, "state", "absent");
        return root;
    }
    cJSON_AddStringToObject(modem, "state", ca_mm_modem_state_to_string(f->state));
    add_string(modem, "failed_reason",
               f->state == MM_MODEM_STATE_FAILED ? ca_mm_failed_reason_to_string(f->failed_reason)
                                                 : NULL);
    add_string(modem, "manufacturer", f->manufacturer);
    add_string(modem, "model", f->model);
    add_string(modem, "revision", f->revision);
    add_string(modem, "imei", f->imei);
    if (f->access_tech == MM_MODEM_ACCESS_TECHNOLOGY_UNKNOWN)
        cJSON_AddNullToObject(modem, "access_tech");
    else
        cJSON_AddItemToObject(modem, "access_tech", access_tech_array(f->access_tech));
    if (f->signal_quality_valid)
        cJSON_AddNumberToObject(modem, "signal_quality", f->signal_quality);
    else
        cJSON_AddNullToObject(modem, "signal_quality");

    signal = cJSON_AddObjectToObject(root, "signal");
    add_db(signal, "rssi", f->rssi);
    add_db(signal, "rsrp", f->rsrp);
    add_db(signal, "rsrq", f->rsrq);
    add_db(signal, "snr", f->snr);

    network = cJSON_AddObjectToObject(root, "network");
    cJSON_AddStringToObject(network, "registration", ca_mm_registration_to_string(f->registration));
    add_string(network, "operator_code", f->operator_code);
    add_string(network, "operator_name", f->operator_name);
    add_string(network, "lac", f->lac);
    add_string(network, "tac", f->tac);
    add_string(network, "cell_id", f->cell_id);

    sim = cJSON_AddObjectToObject(root, "sim");
    add_string(sim, "iccid", f->iccid);
    add_string(sim, "imsi", f->imsi);
    add_string(sim, "operator_code", f->sim_operator_code);
    add_string(sim, "operator_name", f->sim_operator_name);
    cJSON_AddBoolToObject(sim, "present", f->sim_present);
    add_string(sim, "lock", lock_string(f->unlock_required));
    cJSON_AddStringToObject(sim, "pin", ca_modem_pin_status_to_string(f->pin_status));
    if (f->pin_retries >= 0)
        cJSON_AddNumberToObject(sim, "pin_retries", f->pin_retries);
    else
        cJSON_AddNullToObject(sim, "pin_retries");

    bearer = cJSON_AddObjectToObject(root, "bearer");
    cJSON_AddBoolToObject(bearer, "connected", f->bearer_connected);
    add_string(bearer, "interface", f->bearer_interface);
    if (f->bearer_stats_valid) {
        cJSON_AddNumberToObject(bearer, "rx_bytes", (double) f->rx_bytes);
        cJSON_AddNumberToObject(bearer, "tx_bytes", (double) f->tx_bytes);
        cJSON_AddNumberToObject(bearer, "duration", f->duration);
    } else {
        cJSON_AddNullToObject(bearer, "rx_bytes");
        cJSON_AddNullToObject(bearer, "tx_bytes");
        cJSON_AddNullToObject(bearer, "duration");
    }
    return root;
}

/*****************************************************************************/
/* Events */

static cJSON *
event_new(GPtrArray *events, const char *type)
{
    cJSON *e = cJSON_CreateObject();

    cJSON_AddStringToObject(e, "type", type);
    g_ptr_array_add(events, e);
    return e;
}

static gboolean
is_sim_lock(MMModemLock lock)
{
    return lock != MM_MODEM_LOCK_NONE && lock != MM_MODEM_LOCK_UNKNOWN;
}

static void
add_retries(cJSON *e, int retries)
{
    if (retries >= 0)
        cJSON_AddNumberToObject(e, "retries_left", retries);
    else
        cJSON_AddNullToObject(e, "retries_left");
}

GPtrArray *
ca_telemetry_events(const CaModemFacts *old, const CaModemFacts *now)
{
    GPtrArray *events = g_ptr_array_new_with_free_func((GDestroyNotify) cJSON_Delete);
    gboolean same = old->present && now->present && g_strcmp0(old->path, now->path) == 0;
    /* What "before" means for the SIM and state checks: the same modem, or nothing. */
    CaModemFacts none;
    const CaModemFacts *before = old;
    cJSON *e;

    ca_modem_facts_init(&none);
    if (old->present && !same) {
        e = event_new(events, "modem-removed");
        add_string(e, "path", old->path);
        add_string(e, "manufacturer", old->manufacturer);
        add_string(e, "model", old->model);
        add_string(e, "imei", old->imei);
        cJSON_AddStringToObject(e, "message",
                                now->present ? "the modem was replaced (replugged "
                                               "or ModemManager restarted)"
                                             : "no modem present");
    }
    if (now->present && !same) {
        before = &none;
        e = event_new(events, "modem-added");
        add_string(e, "path", now->path);
        add_string(e, "manufacturer", now->manufacturer);
        add_string(e, "model", now->model);
        add_string(e, "revision", now->revision);
        add_string(e, "imei", now->imei);
        add_string(e, "plugin", now->plugin);
        cJSON_AddStringToObject(e, "state", ca_mm_modem_state_to_string(now->state));
        add_string(e, "failed_reason",
                   now->state == MM_MODEM_STATE_FAILED
                       ? ca_mm_failed_reason_to_string(now->failed_reason)
                       : NULL);
    }
    if (!now->present)
        return events;

    if (same && old->state != now->state) {
        e = event_new(events, "modem-state-changed");
        add_string(e, "path", now->path);
        cJSON_AddStringToObject(e, "from", ca_mm_modem_state_to_string(old->state));
        cJSON_AddStringToObject(e, "to", ca_mm_modem_state_to_string(now->state));
        add_string(e, "failed_reason",
                   now->state == MM_MODEM_STATE_FAILED
                       ? ca_mm_failed_reason_to_string(now->failed_reason)
                       : NULL);
    }
    if (same && old->registration != now->registration) {
        e = event_new(events, "registration-changed");
        cJSON_AddStringToObject(e, "from", ca_mm_registration_to_string(old->registration));
        cJSON_AddStringToObject(e, "to", ca_mm_registration_to_string(now->registration));
        add_string(e, "operator_code", now->operator_code);
        add_string(e, "operator_name", now->operator_name);
        if (now->access_tech == MM_MODEM_ACCESS_TECHNOLOGY_UNKNOWN)
            cJSON_AddNullToObject(e, "access_tech");
        else
            cJSON_AddItemToObject(e, "access_tech", access_tech_array(now->access_tech));
        add_string(e, "lac", now->lac);
        add_string(e, "tac", now->tac);
        add_string(e, "cell_id", now->cell_id);
    }
    if (now->state == MM_MODEM_STATE_FAILED &&
        now->failed_reason == MM_MODEM_STATE_FAILED_REASON_SIM_MISSING &&
        !(before->present && before->state == MM_MODEM_STATE_FAILED &&
          before->failed_reason == MM_MODEM_STATE_FAILED_REASON_SIM_MISSING)) {
        e = event_new(events, "sim-missing");
        add_string(e, "path", now->path);
        add_string(e, "imei", now->imei);
        cJSON_AddStringToObject(e, "failed_reason", "sim-missing");
        cJSON_AddStringToObject(e, "message",
                                "no SIM card detected: the modem cannot register until one is "
                                "inserted");
    }
    if (is_sim_lock(now->unlock_required) &&
        !(before->present && before->unlock_required == now->unlock_required)) {
        e = event_new(events, "sim-locked");
        add_string(e, "path", now->path);
        cJSON_AddStringToObject(e, "lock", ca_mm_lock_to_string(now->unlock_required));
        add_retries(e, now->pin_retries);
        add_string(e, "iccid", now->iccid);
        cJSON_AddStringToObject(e, "message",
                                now->unlock_required == MM_MODEM_LOCK_SIM_PIN
                                    ? "the SIM is locked by a PIN; it is unlocked with [modem] "
                                      "pin-file when configured"
                                    : "the SIM is locked by a code the agent cannot give");
    }
    if (now->pin_status == CA_MODEM_PIN_WRONG && before->pin_status != CA_MODEM_PIN_WRONG) {
        e = event_new(events, "sim-pin-wrong");
        add_string(e, "path", now->path);
        add_string(e, "lock", lock_string(now->unlock_required));
        add_retries(e, now->pin_retries);
        cJSON_AddStringToObject(e, "message",
                                "the SIM refused the PIN from pin-file; it is not sent again "
                                "until the file changes");
    }
    if (now->pin_status == CA_MODEM_PIN_NO_FILE && before->pin_status != CA_MODEM_PIN_NO_FILE) {
        e = event_new(events, "sim-pin-missing");
        add_string(e, "path", now->path);
        add_retries(e, now->pin_retries);
        cJSON_AddStringToObject(e, "message",
                                "the SIM needs a PIN and [modem] pin-file is not set or not "
                                "readable");
    }
    if (now->pin_status == CA_MODEM_PIN_UNLOCKED && before->pin_status != CA_MODEM_PIN_UNLOCKED) {
        e = event_new(events, "sim-unlocked");
        add_string(e, "path", now->path);
        cJSON_AddStringToObject(e, "message", "the SIM was unlocked with the PIN from pin-file");
    }
    if (same && old->iccid && now->iccid && !g_str_equal(old->iccid, now->iccid)) {
        g_autofree char *old_tail = ca_log_personal_tail(old->iccid);
        g_autofree char *tail = ca_log_personal_tail(now->iccid);

        /* Events are personal-data free by default: the ICCIDs' last digits tell the SIMs
         * apart; telemetry's retained sim object has the full identity. */
        e = event_new(events, "sim-changed");
        add_string(e, "path", now->path);
        cJSON_AddStringToObject(e, "old_iccid", old_tail);
        cJSON_AddStringToObject(e, "iccid", tail);
        if (ca_log_get_personal_info())
            add_string(e, "imsi", now->imsi);
    }
    return events;
}

/*****************************************************************************/
/* Home Assistant discovery */

typedef struct {
    const char *component; /* sensor | binary_sensor */
    const char *key;       /* object id suffix */
    const char *name;
    const char *template;
    const char *unit;
    const char *device_class;
    gboolean measurement;
    gboolean diagnostic;
    const char *icon;
    const char *subtopic;    /* the state topic under <base>; NULL: telemetry */
    const char *state_class; /* NULL: "measurement" when measurement is set */
} HaEntity;

/* Templates read <base>/telemetry and tolerate {"modem":{"state":"absent"}} (missing groups
 * render None, which Home Assistant shows as unknown). */
#define GET(group, field) "{{ (value_json." group " | default({}))." field " | default(None) }}"

static const HaEntity ha_entities[] = {
    {"sensor", "signal_quality", "Signal quality", GET("modem", "signal_quality"), "%", NULL, TRUE,
     FALSE, "mdi:signal-cellular-3"},
    {"sensor", "rsrp", "RSRP", GET("signal", "rsrp"), "dBm", "signal_strength", TRUE, FALSE, NULL},
    {"sensor", "sinr", "SINR", GET("signal", "snr"), "dB", NULL, TRUE, FALSE, "mdi:signal"},
    {"sensor", "rsrq", "RSRQ", GET("signal", "rsrq"), "dB", NULL, TRUE, TRUE, "mdi:signal"},
    {"sensor", "rssi", "RSSI", GET("signal", "rssi"), "dBm", "signal_strength", TRUE, TRUE, NULL},
    {"sensor", "operator", "Operator", GET("network", "operator_name"), NULL, NULL, FALSE, FALSE,
     "mdi:radio-tower"},
    {"sensor", "registration", "Registration", GET("network", "registration"), NULL, NULL, FALSE,
     TRUE, "mdi:sim-outline"},
    {"sensor", "access_tech", "Access technology",
     "{{ (value_json.modem | default({})).access_tech | default([], true) | join(', ') }}", NULL,
     NULL, FALSE, TRUE, "mdi:antenna"},
    {"sensor", "modem_state", "Modem state", GET("modem", "state"), NULL, NULL, FALSE, FALSE,
     "mdi:cellphone-wireless"},
    {"binary_sensor", "connected", "Cellular connected",
     "{{ 'ON' if (value_json.bearer | default({})).connected | default(false) else 'OFF' }}", NULL,
     "connectivity", FALSE, FALSE, NULL},
    /* <base>/usage (docs/usage.md): the billable estimate of the cycle and the share of the
     * plan's limit. A new cycle starts again from 0, which total_increasing reads as a
     * reset. */
    {"sensor", "data_used", "Data used this cycle",
     "{{ value_json.billable_estimate_bytes | default(None) }}", "B", "data_size", FALSE, FALSE,
     "mdi:counter", "usage", "total_increasing"},
    {"sensor", "data_plan_used", "Data plan used", "{{ value_json.percent | default(None) }}", "%",
     NULL, TRUE, FALSE, "mdi:gauge", "usage", NULL},
};

static void
ha_message_free(gpointer data)
{
    CaTelemetryMessage *m = data;

    g_free(m->topic);
    g_free(m->payload);
    g_free(m);
}

/* Home Assistant ids: [a-zA-Z0-9_-]. */
static char *
ha_id(const char *device_id)
{
    char *id = g_strdup(device_id);

    for (char *p = id; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '_' && *p != '-')
            *p = '_';
    return id;
}

GPtrArray *
ca_telemetry_ha_discovery(const char *prefix, const char *base, const char *device_id,
                          const char *version, gboolean remove)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(ha_message_free);
    g_autofree char *node = ha_id(device_id);
    g_autofree char *status_topic = g_strconcat(base, "/status", NULL);

    for (gsize i = 0; i < G_N_ELEMENTS(ha_entities); i++) {
        const HaEntity *ent = &ha_entities[i];
        CaTelemetryMessage *m = g_new0(CaTelemetryMessage, 1);
        g_autoptr(cJSON) cfg = NULL;
        g_autofree char *unique = NULL;
        g_autofree char *state_topic =
            g_strconcat(base, "/", ent->subtopic ? ent->subtopic : "telemetry", NULL);
        cJSON *device, *ids, *origin;

        m->topic =
            g_strdup_printf("%s/%s/cellagent_%s/%s/config", prefix, ent->component, node, ent->key);
        g_ptr_array_add(out, m);
        if (remove) {
            m->payload = g_strdup("");
            continue;
        }
        unique = g_strdup_printf("cellagent_%s_%s", node, ent->key);
        cfg = cJSON_CreateObject();
        cJSON_AddStringToObject(cfg, "name", ent->name);
        cJSON_AddStringToObject(cfg, "unique_id", unique);
        cJSON_AddStringToObject(cfg, "object_id", unique);
        cJSON_AddStringToObject(cfg, "state_topic", state_topic);
        cJSON_AddStringToObject(cfg, "value_template", ent->template);
        if (ent->unit)
            cJSON_AddStringToObject(cfg, "unit_of_measurement", ent->unit);
        if (ent->device_class)
            cJSON_AddStringToObject(cfg, "device_class", ent->device_class);
        if (ent->state_class)
            cJSON_AddStringToObject(cfg, "state_class", ent->state_class);
        else if (ent->measurement)
            cJSON_AddStringToObject(cfg, "state_class", "measurement");
        if (ent->diagnostic)
            cJSON_AddStringToObject(cfg, "entity_category", "diagnostic");
        if (ent->icon)
            cJSON_AddStringToObject(cfg, "icon", ent->icon);
        if (g_str_equal(ent->component, "binary_sensor")) {
            cJSON_AddStringToObject(cfg, "payload_on", "ON");
            cJSON_AddStringToObject(cfg, "payload_off", "OFF");
        }
        cJSON_AddStringToObject(cfg, "availability_topic", status_topic);
        cJSON_AddStringToObject(cfg, "availability_template", "{{ value_json.state }}");
        cJSON_AddStringToObject(cfg, "payload_available", "online");
        cJSON_AddStringToObject(cfg, "payload_not_available", "offline");
        cJSON_AddNumberToObject(cfg, "qos", 1);
        device = cJSON_AddObjectToObject(cfg, "device");
        ids = cJSON_AddArrayToObject(device, "identifiers");
        {
            g_autofree char *dev_ident = g_strdup_printf("cellagent_%s", node);

            cJSON_AddItemToArray(ids, cJSON_CreateString(dev_ident));
        }
        cJSON_AddStringToObject(device, "name", device_id);
        cJSON_AddStringToObject(device, "manufacturer", "cellagent");
        cJSON_AddStringToObject(device, "model", "cellular edge device");
        cJSON_AddStringToObject(device, "sw_version", version);
        origin = cJSON_AddObjectToObject(cfg, "origin");
        cJSON_AddStringToObject(origin, "name", "cellagent");
        cJSON_AddStringToObject(origin, "sw_version", version);
        m->payload = cJSON_PrintUnformatted(cfg);
    }
    return out;
}
