/* status-file: the status document, its freshness and its text (status-file.h). Pure. */
#include "status-file.h"

#include "error.h"
#include "json-strict.h"
#include "timestamp.h"

#include <math.h>
#include <string.h>

/* A refresh may come late by this much (a busy main loop, a slow disk) before it counts. */
#define FRESH_GRACE_S 5

/* Labels are right-aligned to this width, values follow ": ". */
#define LABEL_WIDTH 18

const char *
ca_status_freshness_to_string(CaStatusFreshness freshness)
{
    switch (freshness) {
    case CA_STATUS_FRESH:
        return "fresh";
    case CA_STATUS_STALE:
        return "stale";
    case CA_STATUS_INVALID:
        return "invalid";
    }
    g_assert_not_reached();
}

static void
add_ts_or_null(cJSON *obj, const char *key, gint64 real_us)
{
    if (real_us > 0) {
        g_autofree char *ts = ca_timestamp_format(real_us);
        cJSON_AddStringToObject(obj, key, ts);
    } else {
        cJSON_AddNullToObject(obj, key);
    }
}

cJSON *
ca_status_new(const char *version, gint64 pid, const char *device_id, gint64 started_at_us,
              gint64 now_us, guint refresh_s)
{
    cJSON *root = cJSON_CreateObject();

    cJSON_AddNumberToObject(root, "format", CA_STATUS_FORMAT);
    cJSON_AddStringToObject(root, "version", version);
    cJSON_AddNumberToObject(root, "pid", (double) pid);
    cJSON_AddStringToObject(root, "device_id", device_id);
    add_ts_or_null(root, "started_at", started_at_us);
    add_ts_or_null(root, "updated_at", now_us);
    cJSON_AddNumberToObject(root, "refresh", refresh_s);
    return root;
}

cJSON *
ca_status_mqtt_json(gboolean connected, gint64 since_us, guint queue, guint64 dropped,
                    const char *host, gint64 port)
{
    cJSON *m = cJSON_CreateObject();
    g_autofree char *broker = g_strdup_printf("%s:%" G_GINT64_FORMAT, host ? host : "", port);

    cJSON_AddStringToObject(m, "state", connected ? "connected" : "disconnected");
    add_ts_or_null(m, "since", since_us);
    cJSON_AddNumberToObject(m, "queue", queue);
    cJSON_AddNumberToObject(m, "dropped", (double) dropped);
    cJSON_AddStringToObject(m, "broker", broker);
    return m;
}

/*****************************************************************************/
/* Reading */

cJSON *
ca_status_parse(const char *data, gsize len, GError **error)
{
    g_autoptr(GError) inner = NULL;
    cJSON *root, *format;

    if (len > CA_STATUS_MAX_BYTES) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                    "status file too large (%" G_GSIZE_FORMAT " bytes, at most %d)", len,
                    CA_STATUS_MAX_BYTES);
        return NULL;
    }
    root = ca_json_parse_strict(data, len, &inner);
    if (!root) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "status file: %s", inner->message);
        return NULL;
    }
    format = cJSON_GetObjectItemCaseSensitive(root, "format");
    if (!cJSON_IsObject(root) || !cJSON_IsNumber(format)) {
        cJSON_Delete(root);
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                            "status file: not a status document (no \"format\")");
        return NULL;
    }
    if (format->valuedouble > CA_STATUS_FORMAT || format->valuedouble < 1) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                    "status file: format %g is not known to this version (%d)", format->valuedouble,
                    CA_STATUS_FORMAT);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* A timestamp member as unix us; FALSE when absent or not one of ours. */
static gboolean
get_ts(const cJSON *obj, const char *key, gint64 *out_us)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, key));
    g_autoptr(GDateTime) dt = NULL;

    if (!s)
        return FALSE;
    dt = g_date_time_new_from_iso8601(s, NULL);
    if (!dt)
        return FALSE;
    *out_us = g_date_time_to_unix(dt) * G_USEC_PER_SEC;
    return TRUE;
}

CaStatusFreshness
ca_status_check_freshness(const cJSON *status, gint64 now_us, gint64 *out_age_s)
{
    const cJSON *refresh = cJSON_GetObjectItemCaseSensitive(status, "refresh");
    gint64 updated, age;

    if (!get_ts(status, "updated_at", &updated) || !cJSON_IsNumber(refresh) ||
        refresh->valuedouble < 1 || refresh->valuedouble > 86400)
        return CA_STATUS_INVALID;
    age = (now_us - updated) / G_USEC_PER_SEC;
    if (out_age_s)
        *out_age_s = age;
    /* A file from the future (the clock was set back) is no proof of life either. */
    if (age < -FRESH_GRACE_S || age > 2 * (gint64) refresh->valuedouble + FRESH_GRACE_S)
        return CA_STATUS_STALE;
    return CA_STATUS_FRESH;
}

/* Always personal, whatever the value. */
static const char *const personal_keys[] = {"imei",   "iccid",       "old_iccid", "imsi",
                                            "msisdn", "own_numbers", "text",      NULL};
/* Personal when the value is a phone number (an uplink switch's "from" is an uplink name). */
static const char *const number_keys[] = {"from", "to", "number", "numbers", "smsc", NULL};

static gboolean
looks_like_number(const char *s)
{
    int digits = 0;

    if (!s)
        return FALSE;
    if (*s == '+')
        s++;
    for (; *s; s++) {
        if (!g_ascii_isdigit(*s))
            return FALSE;
        digits++;
    }
    return digits >= 3;
}

static gboolean
is_personal(const cJSON *item)
{
    const cJSON *e;

    if (!item->string || cJSON_IsNull(item))
        return FALSE;
    if (g_strv_contains(personal_keys, item->string))
        return TRUE;
    if (!g_strv_contains(number_keys, item->string))
        return FALSE;
    if (cJSON_IsString(item))
        return looks_like_number(item->valuestring);
    cJSON_ArrayForEach(e, item)
    {
        if (looks_like_number(cJSON_GetStringValue(e)))
            return TRUE;
    }
    return FALSE;
}

/* Depth-bounded by the parser (CA_JSON_MAX_DEPTH) for what was read back. */
static void
redact(cJSON *node)
{
    cJSON *next;

    for (cJSON *child = node ? node->child : NULL; child; child = next) {
        next = child->next; /* child may be replaced (and freed) below */
        if (is_personal(child)) {
            cJSON *r = cJSON_CreateString("###");

            /* The key moves to the replacement (ReplaceItemViaPointer keeps none). */
            r->string = child->string;
            r->type |= child->type & cJSON_StringIsConst;
            child->string = NULL;
            cJSON_ReplaceItemViaPointer(node, child, r);
        } else if (cJSON_IsObject(child) || cJSON_IsArray(child))
            redact(child);
    }
}

void
ca_status_redact(cJSON *status)
{
    redact(status);
}

/*****************************************************************************/
/* Text */

static void
section(GString *out, const char *name)
{
    g_string_append(out, "  ------------------------------\n");
    g_string_append_printf(out, "  %-9s|", name);
}

/* One "label: value" row; the first row of a section continues the section's line. */
static void
row(GString *out, const char *label, const char *value)
{
    if (out->len == 0 || out->str[out->len - 1] == '\n')
        g_string_append_printf(out, "  %-9s|", "");
    g_string_append_printf(out, " %*s: %s\n", LABEL_WIDTH, label, value ? value : "--");
}

static void G_GNUC_PRINTF(3, 4) rowf(GString *out, const char *label, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *value = NULL;

    va_start(ap, fmt);
    value = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    row(out, label, value);
}

static const cJSON *
member(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static const char *
str(const cJSON *obj, const char *key)
{
    return cJSON_GetStringValue(member(obj, key));
}

/* A number member as text ("--" when absent or null), with a unit. */
static char *
num(const cJSON *obj, const char *key, const char *unit)
{
    const cJSON *n = member(obj, key);

    if (!cJSON_IsNumber(n) || !isfinite(n->valuedouble))
        return g_strdup("--");
    if (n->valuedouble == floor(n->valuedouble) && fabs(n->valuedouble) < 1e15)
        return g_strdup_printf("%.0f%s", n->valuedouble, unit);
    return g_strdup_printf("%.1f%s", n->valuedouble, unit);
}

static char *
duration_text(gint64 s)
{
    if (s < 0)
        return g_strdup("--");
    if (s < 60)
        return g_strdup_printf("%" G_GINT64_FORMAT "s", s);
    if (s < 3600)
        return g_strdup_printf("%" G_GINT64_FORMAT "m %02" G_GINT64_FORMAT "s", s / 60, s % 60);
    if (s < 86400)
        return g_strdup_printf("%" G_GINT64_FORMAT "h %02" G_GINT64_FORMAT "m", s / 3600,
                               s / 60 % 60);
    return g_strdup_printf("%" G_GINT64_FORMAT "d %02" G_GINT64_FORMAT "h", s / 86400,
                           s / 3600 % 24);
}

/* "TS (AGE ago)", or "--". */
static char *
ts_with_age(const cJSON *obj, const char *key, gint64 now_us, const char *word)
{
    gint64 t;
    g_autofree char *d = NULL;

    if (!get_ts(obj, key, &t))
        return g_strdup("--");
    d = duration_text((now_us - t) / G_USEC_PER_SEC);
    return g_strdup_printf("%s (%s %s)", str(obj, key), word, d);
}

static void
format_agent(GString *out, const cJSON *st, CaStatusFreshness freshness, gint64 age_s,
             gint64 now_us)
{
    g_autofree char *pid = num(st, "pid", "");
    g_autofree char *started = ts_with_age(st, "started_at", now_us, "up");
    g_autofree char *refresh = num(st, "refresh", " s");

    section(out, "Agent");
    row(out, "version", str(st, "version"));
    row(out, "pid", pid);
    row(out, "device id", str(st, "device_id"));
    row(out, "started", started);
    switch (freshness) {
    case CA_STATUS_FRESH:
        rowf(out, "updated", "%s (%" G_GINT64_FORMAT " s ago, every %s at least)",
             str(st, "updated_at"), age_s, refresh);
        break;
    case CA_STATUS_STALE:
        rowf(out, "updated",
             "%s: STALE, %" G_GINT64_FORMAT " s old though refreshed every %s; the agent "
             "is hung or was stopped without cleaning up",
             str(st, "updated_at"), age_s, refresh);
        break;
    case CA_STATUS_INVALID:
        row(out, "updated", "unknown (the file has no valid updated_at/refresh)");
        break;
    }
}

static void
format_mqtt(GString *out, const cJSON *m, gint64 now_us)
{
    g_autofree char *since = ts_with_age(m, "since", now_us, "for");
    g_autofree char *queue = num(m, "queue", "");
    g_autofree char *dropped = num(m, "dropped", "");

    section(out, "Broker");
    if (!cJSON_IsObject(m)) {
        row(out, "state", "unknown");
        return;
    }
    row(out, "broker", str(m, "broker"));
    row(out, "state", str(m, "state"));
    row(out, "since", since);
    rowf(out, "queue depth", "%s (dropped %s)", queue, dropped);
}

static char *
probes_text(const cJSON *probes)
{
    const cJSON *p;
    int ok = 0, n = 0;

    cJSON_ArrayForEach(p, probes)
    {
        n++;
        if (cJSON_IsTrue(member(p, "ok")))
            ok++;
    }
    if (n == 0)
        return g_strdup("none yet");
    return g_strdup_printf("%d/%d ok", ok, n);
}

static void
format_uplinks(GString *out, const cJSON *link, gint64 now_us)
{
    const cJSON *u;
    const char *active = str(link, "active");

    section(out, "Uplinks");
    if (!cJSON_IsObject(link)) {
        row(out, "state", "unknown");
        return;
    }
    row(out, "default route", active ? active : "none");
    if (str(link, "forced"))
        row(out, "forced", str(link, "forced"));
    cJSON_ArrayForEach(u, member(link, "uplinks"))
    {
        g_autofree char *probes = probes_text(member(u, "probes"));
        g_autofree char *rtt = num(u, "rtt_ms", " ms");
        g_autofree char *prio = num(u, "priority", "");
        g_autofree char *since = ts_with_age(u, "since", now_us, "for");
        const cJSON *wd = member(u, "watchdog");

        if (!u->string)
            continue;
        rowf(out, u->string, "%s%s", str(u, "state") ? str(u, "state") : "--",
             g_strcmp0(active, u->string) == 0 ? " (carries the default route)" : "");
        rowf(out, "type", "%s, priority %s, interface %s", str(u, "type") ? str(u, "type") : "--",
             prio, str(u, "interface") ? str(u, "interface") : "--");
        row(out, "reason", str(u, "reason"));
        rowf(out, "probes", "%s, rtt %s", probes, rtt);
        row(out, "since", since);
        if (cJSON_IsObject(wd)) {
            g_autofree char *steps = num(wd, "steps", "");
            rowf(out, "watchdog", "last step %s, %s steps", str(wd, "last_step"), steps);
        }
    }
}

static void
format_modem(GString *out, const cJSON *t)
{
    const cJSON *m = member(t, "modem"), *sig = member(t, "signal"), *net = member(t, "network");
    const cJSON *sim = member(t, "sim"), *tech;
    g_autoptr(GString) techs = g_string_new(NULL);
    g_autofree char *quality = num(m, "signal_quality", " %");
    g_autofree char *rssi = num(sig, "rssi", " dBm");
    g_autofree char *rsrp = num(sig, "rsrp", " dBm");
    g_autofree char *rsrq = num(sig, "rsrq", " dB");
    g_autofree char *snr = num(sig, "snr", " dB");

    section(out, "Modem");
    if (!cJSON_IsObject(m)) {
        row(out, "state", "unknown");
        return;
    }
    if (g_strcmp0(str(m, "state"), "absent") == 0) {
        row(out, "state", "absent (no modem)");
        return;
    }
    rowf(out, "model", "%s %s", str(m, "manufacturer") ? str(m, "manufacturer") : "--",
         str(m, "model") ? str(m, "model") : "");
    row(out, "imei", str(m, "imei"));
    if (str(m, "failed_reason"))
        rowf(out, "state", "%s (%s)", str(m, "state"), str(m, "failed_reason"));
    else
        row(out, "state", str(m, "state"));
    row(out, "registration", str(net, "registration"));
    rowf(out, "operator", "%s (%s)", str(net, "operator_name") ? str(net, "operator_name") : "--",
         str(net, "operator_code") ? str(net, "operator_code") : "--");
    cJSON_ArrayForEach(tech, member(m, "access_tech"))
    {
        if (cJSON_IsString(tech))
            g_string_append_printf(techs, "%s%s", techs->len ? ", " : "", tech->valuestring);
    }
    row(out, "access tech", techs->len ? techs->str : "--");
    rowf(out, "signal", "%s (rssi %s, rsrp %s, rsrq %s, snr %s)", quality, rssi, rsrp, rsrq, snr);
    if (cJSON_IsObject(sim)) {
        row(out, "sim iccid", str(sim, "iccid"));
        row(out, "sim imsi", str(sim, "imsi"));
    }
    if (cJSON_IsObject(member(t, "bearer")))
        row(out, "bearer",
            cJSON_IsTrue(member(member(t, "bearer"), "connected")) ? "connected" : "not connected");
}

static void
format_sms(GString *out, const cJSON *s)
{
    g_autofree char *queued = num(s, "queued", "");
    g_autofree char *received = num(s, "received_waiting", "");

    section(out, "SMS");
    if (!cJSON_IsObject(s) || !cJSON_IsTrue(member(s, "enabled"))) {
        row(out, "bridge", "off");
        return;
    }
    row(out, "waiting to send", queued);
    row(out, "received waiting", received);
    row(out, "last error", str(s, "last_error") ? str(s, "last_error") : "none");
}

static void
format_watchdog(GString *out, const cJSON *w)
{
    const cJSON *step;

    section(out, "Watchdog");
    if (!cJSON_IsObject(w)) {
        row(out, "state", "unknown");
        return;
    }
    if (!cJSON_IsTrue(member(w, "enabled"))) {
        row(out, "state", "disabled");
        return;
    }
    row(out, "state", "enabled");
    cJSON_ArrayForEach(step, member(w, "steps"))
    {
        g_autofree char *used = num(step, "used", "");
        g_autofree char *budget = num(step, "budget", "");

        if (!step->string)
            continue;
        if (!cJSON_IsTrue(member(step, "enabled")))
            row(out, step->string, "off");
        else if (cJSON_IsNumber(member(step, "budget")))
            rowf(out, step->string, "%s used of %s in 24 h", used, budget);
        else
            rowf(out, step->string, "%s in 24 h (no budget)", used);
    }
}

static char *
mib_text(const cJSON *obj, const char *key)
{
    const cJSON *v = member(obj, key);

    return cJSON_IsNumber(v) ? g_strdup_printf("%.1f MiB", v->valuedouble / 1048576.0)
                             : g_strdup("?");
}

static void
format_usage(GString *out, const cJSON *u)
{
    g_autofree char *billable = mib_text(u, "billable_estimate_bytes");
    g_autofree char *limit = mib_text(u, "limit_bytes");
    g_autofree char *measured = mib_text(u, "total_bytes");

    section(out, "Usage");
    if (!cJSON_IsObject(u)) {
        row(out, "state", "not counted (no SIM known, or [usage] enabled=false)");
        return;
    }
    row(out, "plan", str(u, "plan") ? str(u, "plan") : "none");
    rowf(out, "cycle", "%s to %s", str(u, "cycle_start") ? str(u, "cycle_start") : "?",
         str(u, "cycle_end") ? str(u, "cycle_end") : "?");
    if (cJSON_IsNumber(member(u, "percent")))
        rowf(out, "used", "%s of %s (%.1f %%), measured %s", billable, limit,
             member(u, "percent")->valuedouble, measured);
    else
        rowf(out, "used", "%s (no limit), measured %s", billable, measured);
    rowf(out, "state", "%s, action %s", str(u, "state") ? str(u, "state") : "?",
         str(u, "action") ? str(u, "action") : "?");
}

char *
ca_status_format_text(const cJSON *status, CaStatusFreshness freshness, gint64 age_s, gint64 now_us)
{
    GString *out = g_string_new(NULL);

    format_agent(out, status, freshness, age_s, now_us);
    format_mqtt(out, member(status, "mqtt"), now_us);
    format_uplinks(out, member(status, "link"), now_us);
    format_modem(out, member(status, "modem"));
    format_sms(out, member(status, "sms"));
    format_watchdog(out, member(status, "watchdog"));
    format_usage(out, member(status, "usage"));
    g_string_append(out, "  ------------------------------\n");
    return g_string_free(out, FALSE);
}
