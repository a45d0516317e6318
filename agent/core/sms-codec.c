/* sms-codec: sms/out validation, segment counting, result and sms/in JSON.
 * Pure functions only: no I/O, no logging above debug, no main loop. */
#define CA_LOG_MODULE "sms"
#include "sms-codec.h"

#include "autocleanups.h"
#include "error.h"
#include "json-strict.h"
#include "timestamp.h"

#include <string.h>

/*****************************************************************************/
/* GSM 03.38 as ModemManager 1.20 maps it (src/mm-charsets.c) */

/* Default alphabet (one septet each), as Unicode. The escape code 0x1B has no character. */
static const gunichar gsm_default[] = {
    '@',    0x00a3, '$',    0x00a5, 0x00e8, 0x00e9, 0x00f9, 0x00ec, 0x00f2, 0x00c7, '\n',   0x00d8,
    0x00f8, '\r',   0x00c5, 0x00e5, 0x0394, '_',    0x03a6, 0x0393, 0x039b, 0x03a9, 0x03a0, 0x03a8,
    0x03a3, 0x0398, 0x039e, 0x00c6, 0x00e6, 0x00df, 0x00c9, ' ',    '!',    '"',    '#',    0x00a4,
    '%',    '&',    '\'',   '(',    ')',    '*',    '+',    ',',    '-',    '.',    '/',    '0',
    '1',    '2',    '3',    '4',    '5',    '6',    '7',    '8',    '9',    ':',    ';',    '<',
    '=',    '>',    '?',    0x00a1, 'A',    'B',    'C',    'D',    'E',    'F',    'G',    'H',
    'I',    'J',    'K',    'L',    'M',    'N',    'O',    'P',    'Q',    'R',    'S',    'T',
    'U',    'V',    'W',    'X',    'Y',    'Z',    0x00c4, 0x00d6, 0x00d1, 0x00dc, 0x00a7, 0x00bf,
    'a',    'b',    'c',    'd',    'e',    'f',    'g',    'h',    'i',    'j',    'k',    'l',
    'm',    'n',    'o',    'p',    'q',    'r',    's',    't',    'u',    'v',    'w',    'x',
    'y',    'z',    0x00e4, 0x00f6, 0x00f1, 0x00fc, 0x00e0,
};

/* Extension table (escape + one septet: two septets each). */
static const gunichar gsm_extension[] = {
    '\f', '^', '{', '}', '\\', '[', '~', ']', '|', 0x20ac,
};

/* Septets c takes in GSM 7-bit: 1, 2 (extension table) or 0 (not representable). */
static guint
gsm_septets(gunichar c)
{
    for (gsize i = 0; i < G_N_ELEMENTS(gsm_default); i++) {
        if (gsm_default[i] == c)
            return 1;
    }
    for (gsize i = 0; i < G_N_ELEMENTS(gsm_extension); i++) {
        if (gsm_extension[i] == c)
            return 2;
    }
    return 0;
}

const char *
ca_sms_encoding_to_string(CaSmsEncoding encoding)
{
    switch (encoding) {
    case CA_SMS_ENCODING_GSM7:
        return "gsm7";
    case CA_SMS_ENCODING_UCS2:
        return "ucs2";
    }
    g_assert_not_reached();
}

/* Greedy split like ModemManager: a character that does not fit in the current part
 * starts the next one; a text within single_limit needs no split at all. */
static guint
count_parts(const guint *weights, guint n, guint single_limit, guint part_limit, guint *out_units)
{
    guint total = 0, chunk = 0, parts = 1;

    for (guint i = 0; i < n; i++) {
        if (chunk + weights[i] > part_limit) {
            parts++;
            chunk = weights[i];
        } else {
            chunk += weights[i];
        }
        total += weights[i];
    }
    *out_units = total;
    if (n == 0)
        return 0;
    return total <= single_limit ? 1 : parts;
}

void
ca_sms_count_segments(const char *text, CaSmsSegments *out_segments)
{
    glong n = g_utf8_strlen(text, -1);
    g_autofree guint *weights = g_new0(guint, n > 0 ? n : 1);
    gboolean gsm = TRUE;
    const char *p;
    glong i;

    for (p = text, i = 0; *p; p = g_utf8_next_char(p), i++) {
        weights[i] = gsm_septets(g_utf8_get_char(p));
        if (weights[i] == 0) {
            gsm = FALSE;
            break;
        }
    }
    if (gsm) {
        out_segments->encoding = CA_SMS_ENCODING_GSM7;
        out_segments->parts = count_parts(weights, n, 160, 153, &out_segments->units);
        return;
    }
    for (p = text, i = 0; *p; p = g_utf8_next_char(p), i++)
        weights[i] = g_utf8_get_char(p) > 0xffff ? 2 : 1;
    out_segments->encoding = CA_SMS_ENCODING_UCS2;
    out_segments->parts = count_parts(weights, n, 70, 67, &out_segments->units);
}

/*****************************************************************************/
/* Statuses */

const char *
ca_sms_status_to_string(CaSmsStatus status)
{
    switch (status) {
    case CA_SMS_STATUS_QUEUED:
        return "queued";
    case CA_SMS_STATUS_SENT:
        return "sent";
    case CA_SMS_STATUS_DELIVERED:
        return "delivered";
    case CA_SMS_STATUS_FAILED:
        return "failed";
    case CA_SMS_STATUS_REJECTED:
        return "rejected";
    }
    g_assert_not_reached();
}

gboolean
ca_sms_status_from_string(const char *s, CaSmsStatus *out_status)
{
    static const CaSmsStatus all[] = {CA_SMS_STATUS_QUEUED, CA_SMS_STATUS_SENT,
                                      CA_SMS_STATUS_DELIVERED, CA_SMS_STATUS_FAILED,
                                      CA_SMS_STATUS_REJECTED};

    for (gsize i = 0; s && i < G_N_ELEMENTS(all); i++) {
        if (strcmp(s, ca_sms_status_to_string(all[i])) == 0) {
            *out_status = all[i];
            return TRUE;
        }
    }
    return FALSE;
}

gboolean
ca_sms_status_is_final(CaSmsStatus status)
{
    switch (status) {
    case CA_SMS_STATUS_QUEUED:
    case CA_SMS_STATUS_SENT: /* a delivery report may still follow */
        return FALSE;
    case CA_SMS_STATUS_DELIVERED:
    case CA_SMS_STATUS_FAILED:
    case CA_SMS_STATUS_REJECTED:
        return TRUE;
    }
    g_assert_not_reached();
}

/*****************************************************************************/
/* Field rules */

gboolean
ca_sms_number_is_valid(const char *number)
{
    const char *p = number;
    gsize digits = 0;

    if (!number)
        return FALSE;
    if (*p == '+')
        p++;
    for (; *p; p++, digits++) {
        if (!g_ascii_isdigit(*p))
            return FALSE;
    }
    return digits >= 3 && digits <= 15;
}

#define SHORT_NUMBER_DIGITS 7

const char *
ca_sms_destination_refused(const char *to, const char *const *allowed)
{
    gsize digits = strlen(to) - (to[0] == '+');
    gboolean any = !allowed || !allowed[0];

    for (guint i = 0; allowed && allowed[i]; i++) {
        if (strcmp(to, allowed[i]) == 0)
            return NULL;
    }
    if (digits < SHORT_NUMBER_DIGITS)
        return "to: numbers of fewer than 7 digits (short codes, premium services) are refused "
               "unless listed in [sms] allowed-destinations";
    if (any)
        return NULL;
    for (guint i = 0; allowed[i]; i++) {
        if (allowed[i][0] == '+' && g_str_has_prefix(to, allowed[i]))
            return NULL;
    }
    return "to: not in [sms] allowed-destinations";
}

gboolean
ca_sms_destination_entry_check(const char *value, char **why)
{
    const char *p = value + (value[0] == '+');
    gsize digits = 0;

    for (; *p; p++, digits++) {
        if (!g_ascii_isdigit(*p))
            break;
    }
    if (*p || digits > 15 || digits < (value[0] == '+' ? 1u : 3u)) {
        *why = g_strdup("must be an international prefix (+ and 1-15 digits, e.g. +2547) or an "
                        "exact number of 3-15 digits (a short code)");
        return FALSE;
    }
    return TRUE;
}

/* Text rule: non-empty UTF-8 (validated by the caller), no control characters except
 * tab, line feed and carriage return (C0, DEL and C1 are refused). */
static gboolean
check_text(const char *text, GError **error)
{
    glong pos = 0;

    if (!*text) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "text: must not be empty");
        return FALSE;
    }
    for (const char *p = text; *p; p = g_utf8_next_char(p), pos++) {
        gunichar c = g_utf8_get_char(p);

        if (c == '\t' || c == '\n' || c == '\r')
            continue;
        if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) {
            g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                        "text: control character U+%04X at position %ld is not allowed", c, pos);
            return FALSE;
        }
    }
    return TRUE;
}

static const char *const request_fields[] = {"id",       "to", "text", "delivery_report",
                                             "validity", NULL};

static gboolean
check_members(const cJSON *root, GError **error)
{
    for (const cJSON *a = root->child; a; a = a->next) {
        if (!a->string || !g_strv_contains(request_fields, a->string)) {
            g_autofree char *valid = g_utf8_make_valid(a->string ? a->string : "", -1);
            g_autofree char *name = g_utf8_substring(valid, 0, MIN(g_utf8_strlen(valid, -1), 64));
            g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                        "%s: unknown field (allowed: id, to, text, delivery_report, validity)",
                        name);
            return FALSE;
        }
        for (const cJSON *b = a->next; b; b = b->next) {
            if (b->string && strcmp(a->string, b->string) == 0) {
                g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "%s: given more than once",
                            a->string);
                return FALSE;
            }
        }
    }
    return TRUE;
}

static const char *
json_type_name(const cJSON *item)
{
    if (cJSON_IsString(item))
        return "a string";
    if (cJSON_IsNumber(item))
        return "a number";
    if (cJSON_IsBool(item))
        return "a boolean";
    if (cJSON_IsNull(item))
        return "null";
    if (cJSON_IsArray(item))
        return "an array";
    if (cJSON_IsObject(item))
        return "an object";
    return "invalid";
}

/* A required string member, valid UTF-8. */
static const char *
get_string(const cJSON *root, const char *field, GError **error)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, field);

    if (!item) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "%s: missing", field);
        return NULL;
    }
    if (!cJSON_IsString(item) || !item->valuestring) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "%s: must be a string, not %s", field,
                    json_type_name(item));
        return NULL;
    }
    if (!g_utf8_validate(item->valuestring, -1, NULL)) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "%s: not valid UTF-8", field);
        return NULL;
    }
    return item->valuestring;
}

void
ca_sms_request_free(CaSmsRequest *req)
{
    if (!req)
        return;
    g_free(req->id);
    g_free(req->to);
    g_free(req->text);
    g_free(req);
}

CaSmsRequest *
ca_sms_request_parse(const char *payload, gsize len, guint max_parts, char **out_id, GError **error)
{
    g_autoptr(cJSON) root = NULL;
    g_autoptr(CaSmsRequest) req = NULL;
    const cJSON *item;
    const char *s;

    *out_id = NULL;
    if (len > CA_SMS_MAX_REQUEST) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                    "payload: %" G_GSIZE_FORMAT " bytes, more than the limit of %d", len,
                    CA_SMS_MAX_REQUEST);
        return NULL;
    }
    root = ca_json_parse_strict(payload, len, error);
    if (!root)
        return NULL;
    if (!cJSON_IsObject(root)) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                    "payload: must be a JSON object, not %s", json_type_name(root));
        return NULL;
    }

    /* The id first, so every later rejection can name the request. */
    if (!(s = get_string(root, "id", error)))
        return NULL;
    if (!ca_request_id_is_valid(s)) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                            "id: must be 1-64 characters of A-Z a-z 0-9 . _ : -");
        return NULL;
    }
    req = g_new0(CaSmsRequest, 1);
    req->id = g_strdup(s);
    *out_id = g_strdup(s);

    if (!check_members(root, error))
        return NULL;
    if (!ca_json_check_strict(root, payload, len, error))
        return NULL;
    if (!(s = get_string(root, "to", error)))
        return NULL;
    if (!ca_sms_number_is_valid(s)) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                            "to: must be + and 3-15 digits, or 3-15 digits");
        return NULL;
    }
    req->to = g_strdup(s);

    if (!(s = get_string(root, "text", error)))
        return NULL;
    if (!check_text(s, error))
        return NULL;
    ca_sms_count_segments(s, &req->segments);
    if (req->segments.parts > max_parts) {
        g_set_error(
            error, CA_ERROR, CA_ERROR_INVALID_INPUT,
            "text: needs %u SMS segments (%s, %u %s), more than max-parts %u", req->segments.parts,
            ca_sms_encoding_to_string(req->segments.encoding), req->segments.units,
            req->segments.encoding == CA_SMS_ENCODING_GSM7 ? "septets" : "UTF-16 units", max_parts);
        return NULL;
    }
    req->text = g_strdup(s);

    item = cJSON_GetObjectItemCaseSensitive(root, "delivery_report");
    if (item) {
        if (!cJSON_IsBool(item)) {
            g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                        "delivery_report: must be a boolean, not %s", json_type_name(item));
            return NULL;
        }
        req->delivery_report = cJSON_IsTrue(item);
    }
    item = cJSON_GetObjectItemCaseSensitive(root, "validity");
    if (item) {
        double v = item->valuedouble;

        if (!cJSON_IsNumber(item)) {
            g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                        "validity: must be a number of minutes, not %s", json_type_name(item));
            return NULL;
        }
        if (!(v >= CA_SMS_VALIDITY_MIN && v <= CA_SMS_VALIDITY_MAX) || v != (double) (gint64) v) {
            g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                        "validity: must be a whole number of minutes from %d to %d",
                        CA_SMS_VALIDITY_MIN, CA_SMS_VALIDITY_MAX);
            return NULL;
        }
        req->validity = (guint) v;
    }
    return g_steal_pointer(&req);
}

cJSON *
ca_sms_request_to_json(const CaSmsRequest *req)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "id", req->id);
    cJSON_AddStringToObject(o, "to", req->to);
    cJSON_AddStringToObject(o, "text", req->text);
    if (req->delivery_report)
        cJSON_AddBoolToObject(o, "delivery_report", TRUE);
    if (req->validity)
        cJSON_AddNumberToObject(o, "validity", req->validity);
    return o;
}

/*****************************************************************************/
/* Timestamps */

char *
ca_sms_timestamp_normalize(const char *mm_timestamp)
{
    g_autoptr(GTimeZone) utc = NULL;
    g_autoptr(GDateTime) dt = NULL;
    g_autoptr(GDateTime) u = NULL;

    if (!mm_timestamp || !*mm_timestamp)
        return NULL;
    /* ModemManager always gives an offset; a bare local time is read as UTC. */
    utc = g_time_zone_new_utc();
    dt = g_date_time_new_from_iso8601(mm_timestamp, utc);
    if (!dt)
        return NULL;
    u = g_date_time_to_utc(dt);
    return g_date_time_format(u, "%Y-%m-%dT%H:%M:%SZ");
}

/*****************************************************************************/
/* Results and received messages */

cJSON *
ca_sms_result_new(const char *id, CaSmsStatus status, gint64 ts_us, gint reference, guint parts,
                  const char *error)
{
    cJSON *o = cJSON_CreateObject();
    g_autofree char *ts = ca_timestamp_format(ts_us);

    if (id)
        cJSON_AddStringToObject(o, "id", id);
    else
        cJSON_AddNullToObject(o, "id");
    cJSON_AddStringToObject(o, "status", ca_sms_status_to_string(status));
    cJSON_AddStringToObject(o, "ts", ts);
    if (reference >= 0)
        cJSON_AddNumberToObject(o, "reference", reference);
    if (parts > 0)
        cJSON_AddNumberToObject(o, "parts", parts);
    if (error)
        cJSON_AddStringToObject(o, "error", error);
    return o;
}

char *
ca_sms_incoming_id(const char *from, const char *timestamp, const char *text)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_autofree char *hex = NULL;

    /* Field separator 0x1f cannot occur in a number or a timestamp. */
    g_checksum_update(sum, (const guchar *) (from ? from : ""), -1);
    g_checksum_update(sum, (const guchar *) "\x1f", 1);
    g_checksum_update(sum, (const guchar *) (timestamp ? timestamp : ""), -1);
    g_checksum_update(sum, (const guchar *) "\x1f", 1);
    g_checksum_update(sum, (const guchar *) (text ? text : ""), -1);
    hex = g_strdup(g_checksum_get_string(sum));
    hex[32] = '\0';
    return g_strconcat("in-", hex, NULL);
}

cJSON *
ca_sms_incoming_to_json(const char *id, const CaSmsIncoming *msg)
{
    cJSON *o = cJSON_CreateObject();
    g_autofree char *received = ca_timestamp_format(msg->received_at_us);

    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "from", msg->from ? msg->from : "");
    cJSON_AddStringToObject(o, "text", msg->text ? msg->text : "");
    if (msg->timestamp)
        cJSON_AddStringToObject(o, "timestamp", msg->timestamp);
    else
        cJSON_AddNullToObject(o, "timestamp");
    cJSON_AddStringToObject(o, "received_at", received);
    if (msg->smsc && *msg->smsc)
        cJSON_AddStringToObject(o, "smsc", msg->smsc);
    return o;
}
