/* command-set: the command table, args schemas, event records and SMS reply texts.
 * Owns: formats only; pure. Does not own: handlers or transports. */
#define CA_LOG_MODULE "command-set"
#include "command-set.h"

#include "alerts.h"
#include "autocleanups.h"
#include "error.h"

#include <math.h>
#include <string.h>

/* Results larger than this (as JSON text) are left out of events. */
#define EVENT_RESULT_MAX 1024

static const CaCommandInfo table[] = {
    {"ping", FALSE, "", "Health check; result {\"pong\":true,\"version\":V,\"uptime\":s}"},
    {"telemetry", FALSE, "", "Publish telemetry now; result: the telemetry object"},
    {"status", FALSE, "",
     "Summary: uplink in use, signal, operator, registration, data usage, uptime, and the "
     "same as one SMS text"},
    {"reconnect", TRUE, "", "Re-activate the uplink in use; result {\"uplink\":NAME}"},
    {"modem-reset", TRUE, "", "Reset the modem (ModemManager Modem.Reset)"},
    {"sms-resync", TRUE, "",
     "Re-read the modem's SMS storage; result {\"messages\":N,\"pending\":M}"},
    {"reload", TRUE, "", "Reload the configuration files, like SIGHUP"},
    {"uplink", TRUE, "{\"uplink\": NAME | \"auto\"}",
     "Force the uplink NAME (of [uplink-NAME]) or return to automatic choice"},
    {"log-level", TRUE, "{\"level\": \"error\" | \"warning\" | \"info\" | \"debug\"}",
     "Change the log level until the next reload or restart; result {\"level\",\"previous\"}"},
    {"mqtt-reconnect", TRUE, "", "Drop the broker connection and connect again"},
    {"reboot", TRUE, "",
     "Reboot the device with [commands] reboot-command; refused unless allow-reboot=true"},
    {"usage", FALSE, "", "Publish <base>/usage now; result: the usage object (docs/usage.md)"},
    {"usage-adjust", TRUE, "{\"bytes\": N}",
     "Set the current cycle's billable estimate to N bytes (the operator's figure); "
     "result: the usage object"},
    {"usage-override", TRUE, "{\"until\": TS | null}",
     "Lift the data cap of the current cycle until TS (RFC 3339, within a year); null ends "
     "it; result: the usage object"},
    {"diagnose", TRUE, "{\"force\": true} (optional)",
     "Send a support bundle (tar.gz, no journal) in base64 chunks on "
     "<base>/diagnose/<bundle>/<n>; result {\"bundle\",\"size\",\"chunks\",\"sha256\",...}; "
     "at most one an hour unless forced"},
    {"config-get", FALSE, "",
     "The effective configuration, each key with its value and source (file:line, remote "
     "version N, default), secrets masked, and the remote configuration's state "
     "(docs/remote-config.md)"},
    {NULL},
};

const CaCommandInfo *
ca_cmdset_table(void)
{
    return table;
}

const CaCommandInfo *
ca_cmdset_lookup(const char *name)
{
    for (const CaCommandInfo *c = table; c->name; c++) {
        if (strcmp(c->name, name) == 0)
            return c;
    }
    return NULL;
}

/*****************************************************************************/
/* Args */

static gboolean
uplink_name_valid(const char *s)
{
    gsize n = strlen(s);

    if (n < 1 || n > 64)
        return FALSE;
    for (; *s; s++) {
        if (!g_ascii_isalnum(*s) && *s != '.' && *s != '_' && *s != '-')
            return FALSE;
    }
    return TRUE;
}

/* args must have exactly the members in allowed (NULL-terminated). */
static gboolean
only_members(const cJSON *args, const char *const *allowed, GError **error)
{
    const cJSON *m;

    cJSON_ArrayForEach(m, args)
    {
        if (!m->string || !g_strv_contains(allowed, m->string)) {
            g_autofree char *name = m->string ? g_strndup(m->string, 32) : g_strdup("?");
            g_autofree char *safe = ca_cmdset_sms_safe(name, 32);
            g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "args.%s: unknown argument", safe);
            return FALSE;
        }
    }
    return TRUE;
}

static const char *
required_string(const cJSON *args, const char *member, GError **error)
{
    const cJSON *v = args ? cJSON_GetObjectItemCaseSensitive(args, member) : NULL;

    if (!v) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "args.%s: missing", member);
        return NULL;
    }
    if (!cJSON_IsString(v)) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "args.%s: must be a string", member);
        return NULL;
    }
    return v->valuestring;
}

/* {"bytes": N}: a whole number 0..2^53 (what a JSON number carries exactly). */
static gboolean
check_usage_adjust(const cJSON *args, GError **error)
{
    static const char *const members[] = {"bytes", NULL};
    const cJSON *v = args ? cJSON_GetObjectItemCaseSensitive(args, "bytes") : NULL;

    if (args && !only_members(args, members, error))
        return FALSE;
    if (!v) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "args.bytes: missing");
        return FALSE;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9007199254740992.0 ||
        v->valuedouble != (double) (gint64) v->valuedouble) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                            "args.bytes: must be a whole number of bytes, 0 or more");
        return FALSE;
    }
    return TRUE;
}

/* {"until": RFC 3339 time with a zone, or null}. Whether it is in the future is the
 * handler's to say (it has the clock). */
static gboolean
check_usage_override(const cJSON *args, GError **error)
{
    static const char *const members[] = {"until", NULL};
    const cJSON *v = args ? cJSON_GetObjectItemCaseSensitive(args, "until") : NULL;
    g_autoptr(GDateTime) dt = NULL;

    if (args && !only_members(args, members, error))
        return FALSE;
    if (!v) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "args.until: missing");
        return FALSE;
    }
    if (cJSON_IsNull(v))
        return TRUE;
    if (cJSON_IsString(v) && strlen(v->valuestring) <= 64)
        dt = g_date_time_new_from_iso8601(v->valuestring, NULL);
    if (!dt) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                            "args.until: must be an RFC 3339 time with a zone "
                            "(2027-01-01T00:00:00Z) or null");
        return FALSE;
    }
    return TRUE;
}

gboolean
ca_cmdset_check_args(const char *name, const cJSON *args, GError **error)
{
    static const char *const none[] = {NULL};
    static const char *const level_members[] = {"level", NULL};
    static const char *const uplink_members[] = {"uplink", NULL};
    static const char *const diagnose_members[] = {"force", NULL};
    static const char *const levels[] = {"error", "warning", "info", "debug", NULL};
    const char *v;

    if (!ca_cmdset_lookup(name))
        return TRUE;
    if (strcmp(name, "log-level") == 0) {
        if (args && !only_members(args, level_members, error))
            return FALSE;
        if (!(v = required_string(args, "level", error)))
            return FALSE;
        if (!g_strv_contains(levels, v)) {
            g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                                "args.level: must be error, warning, info or debug");
            return FALSE;
        }
        return TRUE;
    }
    if (strcmp(name, "uplink") == 0) {
        if (args && !only_members(args, uplink_members, error))
            return FALSE;
        if (!(v = required_string(args, "uplink", error)))
            return FALSE;
        if (!uplink_name_valid(v)) {
            g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                                "args.uplink: must be \"auto\" or an uplink name (1-64 of "
                                "A-Z a-z 0-9 . _ -)");
            return FALSE;
        }
        return TRUE;
    }
    if (strcmp(name, "usage-adjust") == 0)
        return check_usage_adjust(args, error);
    if (strcmp(name, "usage-override") == 0)
        return check_usage_override(args, error);
    if (strcmp(name, "diagnose") == 0) {
        const cJSON *force = args ? cJSON_GetObjectItemCaseSensitive(args, "force") : NULL;

        if (args && !only_members(args, diagnose_members, error))
            return FALSE;
        if (force && !cJSON_IsBool(force)) {
            g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                                "args.force: must be true or false");
            return FALSE;
        }
        return TRUE;
    }
    return !args || only_members(args, none, error);
}

/*****************************************************************************/
/* Events */

cJSON *
ca_cmdset_event_json(const char *name, const char *source, const char *id, gboolean ok,
                     const cJSON *result, const char *error)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "command", name);
    cJSON_AddStringToObject(o, "source", source ? source : "unknown");
    if (id)
        cJSON_AddStringToObject(o, "id", id);
    else
        cJSON_AddNullToObject(o, "id");
    cJSON_AddBoolToObject(o, "ok", ok);
    if (ok && result) {
        g_autofree char *text = cJSON_PrintUnformatted(result);
        if (text && strlen(text) <= EVENT_RESULT_MAX)
            cJSON_AddItemToObject(o, "result", cJSON_Duplicate(result, TRUE));
    } else if (!ok) {
        cJSON_AddStringToObject(o, "error", error ? error : "failed");
    }
    return o;
}

/*****************************************************************************/
/* Status */

void
ca_status_facts_init(CaStatusFacts *f)
{
    memset(f, 0, sizeof(*f));
    f->signal_quality = -1;
    f->rx_bytes = f->tx_bytes = -1;
    f->uptime_s = -1;
}

char *
ca_cmdset_sms_safe(const char *text, gsize max)
{
    GString *s = g_string_new(NULL);

    for (const char *p = text ? text : ""; *p && s->len < max; p++) {
        if (*p >= 0x20 && *p <= 0x7e && !strchr("[]{}|^~\\`", *p))
            g_string_append_c(s, *p);
    }
    return g_string_free(s, FALSE);
}

char *
ca_cmdset_format_bytes(gint64 bytes)
{
    static const char *const units[] = {"kB", "MB", "GB", "TB", "PB"};
    double v = (double) bytes;
    int u = -1;

    if (bytes < 1000)
        return g_strdup_printf("%" G_GINT64_FORMAT " B", MAX(bytes, 0));
    while (v >= 1000 && u < (int) G_N_ELEMENTS(units) - 1) {
        v /= 1000;
        u++;
    }
    /* Three significant digits, rounded down so "999.96 kB" never shows as "1000 kB". */
    if (v < 10)
        return g_strdup_printf("%.2f %s", floor(v * 100) / 100, units[u]);
    if (v < 100)
        return g_strdup_printf("%.1f %s", floor(v * 10) / 10, units[u]);
    return g_strdup_printf("%.0f %s", floor(v), units[u]);
}

static void
add_string_or_null(cJSON *o, const char *name, const char *value)
{
    if (value)
        cJSON_AddStringToObject(o, name, value);
    else
        cJSON_AddNullToObject(o, name);
}

static void
add_number_or_null(cJSON *o, const char *name, gint64 value)
{
    if (value >= 0)
        cJSON_AddNumberToObject(o, name, (double) value);
    else
        cJSON_AddNullToObject(o, name);
}

cJSON *
ca_cmdset_status_json(const CaStatusFacts *f)
{
    cJSON *o = cJSON_CreateObject();
    g_autofree char *text = ca_cmdset_status_text(f);

    add_string_or_null(o, "uplink", f->uplink);
    add_number_or_null(o, "signal_quality", f->signal_quality);
    add_string_or_null(o, "access_tech", f->access_tech);
    add_string_or_null(o, "operator_name", f->operator_name);
    add_string_or_null(o, "registration", f->registration);
    add_number_or_null(o, "rx_bytes", f->rx_bytes);
    add_number_or_null(o, "tx_bytes", f->tx_bytes);
    add_number_or_null(o, "uptime", f->uptime_s);
    cJSON_AddStringToObject(o, "text", text);
    return o;
}

static char *
status_text(const CaStatusFacts *f, gsize device_max, gsize operator_max)
{
    GString *s = g_string_new(NULL);
    g_autofree char *dev = ca_cmdset_sms_safe(f->device_id, device_max);
    g_autofree char *up = f->uplink ? ca_cmdset_sms_safe(f->uplink, 32) : NULL;
    g_autofree char *tech = f->access_tech ? ca_cmdset_sms_safe(f->access_tech, 12) : NULL;
    g_autofree char *op =
        f->operator_name ? ca_cmdset_sms_safe(f->operator_name, operator_max) : NULL;
    g_autofree char *reg = f->registration ? ca_cmdset_sms_safe(f->registration, 12) : NULL;

    if (*dev)
        g_string_append_printf(s, "%s: ", dev);
    if (f->uptime_s >= 0) {
        g_autofree char *d = ca_alerts_format_duration(f->uptime_s * 1000);
        g_string_append_printf(s, "up %s; ", d);
    }
    if (up && *up)
        g_string_append_printf(s, "uplink %s; ", up);
    else
        g_string_append(s, "no uplink; ");
    g_string_append(s, tech && *tech ? tech : "modem");
    if (f->signal_quality >= 0)
        g_string_append_printf(s, " %d%%", MIN(f->signal_quality, 100));
    else
        g_string_append(s, " signal ?");
    if (op && *op)
        g_string_append_printf(s, " %s", op);
    if (reg && *reg)
        g_string_append_printf(s, " %s", reg);
    if (f->rx_bytes >= 0 && f->tx_bytes >= 0) {
        g_autofree char *rx = ca_cmdset_format_bytes(f->rx_bytes);
        g_autofree char *tx = ca_cmdset_format_bytes(f->tx_bytes);
        g_string_append_printf(s, "; data rx %s tx %s", rx, tx);
    }
    return g_string_free(s, FALSE);
}

char *
ca_cmdset_status_text(const CaStatusFacts *f)
{
    /* Shorten the free-text pieces until it fits; the last resort cuts the end. */
    static const gsize limits[][2] = {{64, 24}, {32, 16}, {16, 10}, {0, 10}, {0, 0}};
    char *text = NULL;

    for (gsize i = 0; i < G_N_ELEMENTS(limits); i++) {
        g_free(text);
        text = status_text(f, limits[i][0], limits[i][1]);
        if (strlen(text) <= CA_SMS_TEXT_MAX)
            return text;
    }
    text[CA_SMS_TEXT_MAX] = '\0';
    return text;
}

/*****************************************************************************/
/* SMS replies */

char *
ca_cmdset_sms_reply(const char *device_id, const char *command, const char *result_json)
{
    g_autoptr(cJSON) root = result_json ? cJSON_Parse(result_json) : NULL;
    const cJSON *ok = root ? cJSON_GetObjectItemCaseSensitive(root, "ok") : NULL;
    const cJSON *result = root ? cJSON_GetObjectItemCaseSensitive(root, "result") : NULL;
    const cJSON *err = root ? cJSON_GetObjectItemCaseSensitive(root, "error") : NULL;
    const cJSON *text = result ? cJSON_GetObjectItemCaseSensitive(result, "text") : NULL;
    g_autofree char *dev = ca_cmdset_sms_safe(device_id, 64);
    g_autofree char *cmd = ca_cmdset_sms_safe(command, 32);
    g_autofree char *why = NULL;
    g_autofree char *reply = NULL;

    if (cJSON_IsTrue(ok) && strcmp(command, "status") == 0 && cJSON_IsString(text))
        return ca_cmdset_sms_safe(text->valuestring, CA_SMS_TEXT_MAX);
    if (cJSON_IsTrue(ok))
        reply = g_strdup_printf("%s: %s ok", dev, cmd);
    else {
        why = ca_cmdset_sms_safe(cJSON_IsString(err) ? err->valuestring : "no result",
                                 CA_SMS_TEXT_MAX);
        reply = g_strdup_printf("%s: %s failed: %s", dev, cmd, why);
    }
    return ca_cmdset_sms_safe(reply, CA_SMS_TEXT_MAX);
}
