/* Unit tests for sms-codec: segment counting at every boundary (GSM 7-bit, extension
 * characters, UCS-2, surrogate pairs), every sms/out rejection with its field and reason,
 * result and sms/in JSON, the stable incoming id, timestamp normalisation. */
#include "autocleanups.h"
#include "error.h"
#include "sms-codec.h"

#include <string.h>

/*****************************************************************************/
/* Segments */

static char *
repeat(const char *unit, guint n)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < n; i++)
        g_string_append(s, unit);
    return g_string_free(s, FALSE);
}

typedef struct {
    const char *unit; /* repeated n times, then mid, then unit2 repeated n2 times */
    guint n;
    const char *mid;
    const char *unit2;
    guint n2;
    CaSmsEncoding encoding;
    guint units;
    guint parts;
} SegCase;

#define GSM CA_SMS_ENCODING_GSM7
#define UCS CA_SMS_ENCODING_UCS2
static const SegCase seg_cases[] = {
    /* GSM 7-bit: 160 in one, then 153 per part. */
    {"a", 1, "", "", 0, GSM, 1, 1},
    {"a", 160, "", "", 0, GSM, 160, 1},
    {"a", 161, "", "", 0, GSM, 161, 2},
    {"a", 306, "", "", 0, GSM, 306, 2},
    {"a", 307, "", "", 0, GSM, 307, 3},
    {"a", 1530, "", "", 0, GSM, 1530, 10},
    {"a", 1531, "", "", 0, GSM, 1531, 11},
    /* The default alphabet's specials stay GSM 7-bit. */
    {"@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà", 1, "", "", 0, GSM, 65,
     1},
    /* Extension characters count two septets. */
    {"€", 80, "", "", 0, GSM, 160, 1},
    {"€", 80, "a", "", 0, GSM, 161, 2},
    {"^{}\\[~]|", 1, "", "", 0, GSM, 16, 1},
    /* Within 160 septets nothing is split. */
    {"a", 152, "{a", "", 0, GSM, 155, 1},
    {"€", 76, "aa€", "", 0, GSM, 156, 1},
    /* An escape pair is never split: 152 + '{' does not fit in 153, so '{' opens part 2,
     * which then holds 2 + 151; one more 'a' needs part 3 (a septet count alone says 2). */
    {"a", 152, "{", "a", 151, GSM, 305, 2},
    {"a", 152, "{", "a", 152, GSM, 306, 3},
    {"€", 76, "a€", "a", 151, GSM, 306, 2},
    {"€", 76, "a€", "a", 152, GSM, 307, 3},
    /* Tab is not GSM: UCS-2. */
    {"a", 10, "\t", "", 0, UCS, 11, 1},
    /* UCS-2: 70 in one, 67 per part. */
    {"ж", 70, "", "", 0, UCS, 70, 1},
    {"ж", 71, "", "", 0, UCS, 71, 2},
    {"ж", 134, "", "", 0, UCS, 134, 2},
    {"ж", 135, "", "", 0, UCS, 135, 3},
    {"a", 69, "ж", "", 0, UCS, 70, 1},
    {"中文", 35, "", "", 0, UCS, 70, 1},
    /* Emoji (outside the BMP) take two units; a pair is never split. */
    {"😀", 35, "", "", 0, UCS, 70, 1},
    {"😀", 35, "a", "", 0, UCS, 71, 2},
    {"a", 66, "😀bb", "", 0, UCS, 70, 1},
    {"a", 66, "😀", "b", 3, UCS, 71, 2},
    /* 66 + pair does not fit in 67: part 2 starts with the emoji and holds 2 + 65. */
    {"a", 66, "😀", "c", 65, UCS, 133, 2},
    {"a", 66, "😀", "c", 66, UCS, 134, 3},
    {"😀", 33, "a", "😀", 34, UCS, 135, 3},
    /* One non-GSM character switches the whole text to UCS-2. */
    {"a", 100, "ж", "", 0, UCS, 101, 2},
    {"", 0, "", "", 0, GSM, 0, 0},
};
#undef GSM
#undef UCS

static void
test_segments(gconstpointer data)
{
    const SegCase *c = data;
    g_autofree char *head = repeat(c->unit, c->n);
    g_autofree char *tail = repeat(c->unit2, c->n2);
    g_autofree char *text = g_strconcat(head, c->mid, tail, NULL);
    CaSmsSegments seg;

    ca_sms_count_segments(text, &seg);
    g_assert_cmpstr(ca_sms_encoding_to_string(seg.encoding), ==,
                    ca_sms_encoding_to_string(c->encoding));
    g_assert_cmpuint(seg.units, ==, c->units);
    g_assert_cmpuint(seg.parts, ==, c->parts);
}

/*****************************************************************************/
/* Request validation */

typedef struct {
    const char *name;
    const char *payload;
    const char *id;    /* expected *out_id (NULL: none) */
    const char *error; /* expected message prefix; NULL: valid */
} ReqCase;

static const ReqCase req_cases[] = {
    {"minimal", "{\"id\":\"a1\",\"to\":\"+254700000001\",\"text\":\"Hello\"}", "a1", NULL},
    {"all-fields",
     "{\"id\":\"A.b_c:d-9\",\"to\":\"0700000001\",\"text\":\"x\",\"delivery_report\":true,"
     "\"validity\":1440}",
     "A.b_c:d-9", NULL},
    {"short-code", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\"}", "x", NULL},
    {"plus-15", "{\"id\":\"x\",\"to\":\"+123456789012345\",\"text\":\"x\"}", "x", NULL},
    {"newline-tab", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"a\\nb\\r\\tc\"}", "x", NULL},
    {"emoji", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"Habari \\ud83d\\ude00\"}", "x", NULL},
    {"validity-min", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\",\"validity\":5}", "x", NULL},
    {"validity-max", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\",\"validity\":635040}", "x", NULL},
    /* Payload level */
    {"not-json", "hello", NULL, "payload: not valid JSON"},
    {"empty", "", NULL, "payload: not valid JSON"},
    {"array", "[1,2]", NULL, "payload: must be a JSON object, not an array"},
    {"string", "\"x\"", NULL, "payload: must be a JSON object, not a string"},
    {"truncated", "{\"id\":\"x\",\"to\":\"123\"", NULL, "payload: not valid JSON"},
    {"trailing-junk", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\"} again", NULL,
     "payload: data after the JSON value"},
    {"trailing-second-object", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\"}{}", NULL,
     "payload: data after the JSON value"},
    {"trailing-space", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\"}\r\n ", "x", NULL},
    {"bad-utf8", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"\xff\xfe\"}", NULL,
     "payload: not valid UTF-8"},
    /* id */
    {"no-id", "{\"to\":\"123\",\"text\":\"x\"}", NULL, "id: missing"},
    {"id-number", "{\"id\":5,\"to\":\"123\",\"text\":\"x\"}", NULL,
     "id: must be a string, not a number"},
    {"id-null", "{\"id\":null,\"to\":\"123\",\"text\":\"x\"}", NULL,
     "id: must be a string, not null"},
    {"id-slash", "{\"id\":\"a/b\",\"to\":\"123\",\"text\":\"x\"}", NULL, "id: must be 1-64"},
    {"id-plus", "{\"id\":\"a+b\",\"to\":\"123\",\"text\":\"x\"}", NULL, "id: must be 1-64"},
    {"id-hash", "{\"id\":\"#\",\"to\":\"123\",\"text\":\"x\"}", NULL, "id: must be 1-64"},
    {"id-space", "{\"id\":\"a b\",\"to\":\"123\",\"text\":\"x\"}", NULL, "id: must be 1-64"},
    {"id-empty", "{\"id\":\"\",\"to\":\"123\",\"text\":\"x\"}", NULL, "id: must be 1-64"},
    {"id-65",
     "{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
     "\"to\":\"123\",\"text\":\"x\"}",
     NULL, "id: must be 1-64"},
    {"id-non-ascii", "{\"id\":\"é\",\"to\":\"123\",\"text\":\"x\"}", NULL, "id: must be 1-64"},
    /* to */
    {"no-to", "{\"id\":\"x\",\"text\":\"x\"}", "x", "to: missing"},
    {"to-number", "{\"id\":\"x\",\"to\":254700000001,\"text\":\"x\"}", "x",
     "to: must be a string, not a number"},
    {"to-letters", "{\"id\":\"x\",\"to\":\"+2547abc\",\"text\":\"x\"}", "x",
     "to: must be + and 3-15 digits"},
    {"to-short", "{\"id\":\"x\",\"to\":\"12\",\"text\":\"x\"}", "x", "to: must be + and 3-15"},
    {"to-16", "{\"id\":\"x\",\"to\":\"1234567890123456\",\"text\":\"x\"}", "x",
     "to: must be + and 3-15"},
    {"to-plus-only", "{\"id\":\"x\",\"to\":\"+\",\"text\":\"x\"}", "x", "to: must be + and 3-15"},
    {"to-spaces", "{\"id\":\"x\",\"to\":\"+254 700\",\"text\":\"x\"}", "x",
     "to: must be + and 3-15"},
    {"to-double-plus", "{\"id\":\"x\",\"to\":\"++254700\",\"text\":\"x\"}", "x",
     "to: must be + and 3-15"},
    /* text */
    {"no-text", "{\"id\":\"x\",\"to\":\"123\"}", "x", "text: missing"},
    {"text-array", "{\"id\":\"x\",\"to\":\"123\",\"text\":[\"a\"]}", "x",
     "text: must be a string, not an array"},
    {"text-bool", "{\"id\":\"x\",\"to\":\"123\",\"text\":true}", "x",
     "text: must be a string, not a boolean"},
    {"text-empty", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"\"}", "x", "text: must not be empty"},
    {"text-bell", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"a\\u0007b\"}", "x",
     "text: control character U+0007 at position 1"},
    {"text-escape", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"\\u001b[31m\"}", "x",
     "text: control character U+001B at position 0"},
    {"text-del", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"a\\u007f\"}", "x",
     "text: control character U+007F"},
    {"text-c1", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"\\u0085\"}", "x",
     "text: control character U+0085"},
    {"text-nul", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"a\\u0000b\"}", "x",
     "payload: a string contains a NUL character"},
    {"text-lone-surrogate", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"\\ud83d\"}", NULL,
     "payload: not valid JSON"},
    {"text-escaped-backslash-u0000", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"a\\\\u0000\"}", "x",
     NULL},
    /* optional fields */
    {"dr-string", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\",\"delivery_report\":\"yes\"}", "x",
     "delivery_report: must be a boolean, not a string"},
    {"dr-number", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\",\"delivery_report\":1}", "x",
     "delivery_report: must be a boolean, not a number"},
    {"validity-string", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\",\"validity\":\"60\"}", "x",
     "validity: must be a number of minutes, not a string"},
    {"validity-low", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\",\"validity\":4}", "x",
     "validity: must be a whole number of minutes from 5 to 635040"},
    {"validity-high", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\",\"validity\":635041}", "x",
     "validity: must be a whole number"},
    {"validity-fraction", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\",\"validity\":60.5}", "x",
     "validity: must be a whole number"},
    {"validity-huge", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\",\"validity\":1e300}", "x",
     "validity: must be a whole number"},
    {"validity-negative", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\",\"validity\":-60}", "x",
     "validity: must be a whole number"},
    /* members */
    {"unknown-field", "{\"id\":\"x\",\"to\":\"123\",\"text\":\"x\",\"priority\":1}", "x",
     "priority: unknown field"},
    {"duplicate-to", "{\"id\":\"x\",\"to\":\"123\",\"to\":\"456\",\"text\":\"x\"}", "x",
     "to: given more than once"},
    {"case-matters", "{\"id\":\"x\",\"To\":\"123\",\"text\":\"x\"}", "x", "To: unknown field"},
};

static void
test_request(gconstpointer data)
{
    const ReqCase *c = data;
    g_autoptr(GError) error = NULL;
    g_autofree char *id = NULL;
    g_autoptr(CaSmsRequest) req =
        ca_sms_request_parse(c->payload, strlen(c->payload), 10, &id, &error);

    g_assert_cmpstr(id, ==, c->id);
    if (!c->error) {
        g_assert_no_error(error);
        g_assert_nonnull(req);
        g_assert_cmpstr(req->id, ==, c->id);
        return;
    }
    g_assert_null(req);
    g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT);
    if (!g_str_has_prefix(error->message, c->error))
        g_error("%s: got \"%s\", expected a message starting \"%s\"", c->name, error->message,
                c->error);
}

static void
test_request_fields(void)
{
    const char *p = "{\"id\":\"r1\",\"to\":\"+254700000001\",\"text\":\"Habari \\ud83d\\ude00\","
                    "\"delivery_report\":true,\"validity\":60}";
    g_autoptr(GError) error = NULL;
    g_autofree char *id = NULL;
    g_autoptr(CaSmsRequest) req = ca_sms_request_parse(p, strlen(p), 10, &id, &error);
    g_autoptr(cJSON) json = NULL;
    g_autofree char *text = NULL;
    g_autofree char *id2 = NULL;
    g_autoptr(CaSmsRequest) again = NULL;

    g_assert_no_error(error);
    g_assert_cmpstr(req->to, ==, "+254700000001");
    g_assert_cmpstr(req->text, ==, "Habari 😀");
    g_assert_true(req->delivery_report);
    g_assert_cmpuint(req->validity, ==, 60);
    g_assert_cmpuint(req->segments.parts, ==, 1);
    g_assert_true(req->segments.encoding == CA_SMS_ENCODING_UCS2);
    /* The spool form parses back to the same request. */
    json = ca_sms_request_to_json(req);
    text = cJSON_PrintUnformatted(json);
    again = ca_sms_request_parse(text, strlen(text), 10, &id2, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(again->text, ==, req->text);
    g_assert_cmpstr(again->to, ==, req->to);
    g_assert_true(again->delivery_report);
    g_assert_cmpuint(again->validity, ==, 60);
}

/* max-parts: exactly at the limit passes, one more is rejected with the count. */
static void
test_request_max_parts(void)
{
    g_autofree char *ok_text = repeat("a", 3 * 153);
    g_autofree char *long_text = repeat("a", 3 * 153 + 1);
    g_autofree char *ok = g_strdup_printf("{\"id\":\"m\",\"to\":\"123\",\"text\":\"%s\"}", ok_text);
    g_autofree char *bad =
        g_strdup_printf("{\"id\":\"m\",\"to\":\"123\",\"text\":\"%s\"}", long_text);
    g_autoptr(GError) error = NULL;
    g_autofree char *id = NULL;
    g_autofree char *id2 = NULL;
    g_autoptr(CaSmsRequest) req = ca_sms_request_parse(ok, strlen(ok), 3, &id, &error);
    g_autoptr(CaSmsRequest) req2 = NULL;

    g_assert_no_error(error);
    g_assert_cmpuint(req->segments.parts, ==, 3);
    req2 = ca_sms_request_parse(bad, strlen(bad), 3, &id2, &error);
    g_assert_null(req2);
    g_assert_cmpstr(id2, ==, "m");
    g_assert_cmpstr(error->message, ==,
                    "text: needs 4 SMS segments (gsm7, 460 septets), more than max-parts 3");
}

/* A payload over the limit is refused before parsing; a NUL byte too. */
static void
test_request_limits(void)
{
    gsize big = 1024 * 1024;
    g_autofree char *huge = g_malloc(big);
    g_autoptr(GError) error = NULL;
    g_autofree char *id = NULL;
    g_autoptr(CaSmsRequest) req = NULL;
    const char nul[] = "{\"id\":\"x\",\"to\":\"123\",\"text\":\"a\0b\"}";

    memset(huge, 'a', big);
    memcpy(huge, "{\"id\":\"x\",\"to\":\"123\",\"text\":\"", 29);
    memcpy(huge + big - 2, "\"}", 2);
    req = ca_sms_request_parse(huge, big, 255, &id, &error);
    g_assert_null(req);
    g_assert_null(id);
    g_assert_cmpstr(error->message, ==, "payload: 1048576 bytes, more than the limit of 131072");
    g_clear_error(&error);
    req = ca_sms_request_parse(nul, sizeof(nul) - 1, 10, &id, &error);
    g_assert_null(req);
    g_assert_cmpstr(error->message, ==, "payload: contains a NUL byte");
}

/*****************************************************************************/
/* Output formats */

static void
test_result_json(void)
{
    /* 2024-05-01T10:00:00Z */
    gint64 t = G_GINT64_CONSTANT(1714557600) * G_USEC_PER_SEC;
    g_autoptr(cJSON) queued = ca_sms_result_new("a1", CA_SMS_STATUS_QUEUED, t, -1, 2, NULL);
    g_autoptr(cJSON) sent = ca_sms_result_new("a1", CA_SMS_STATUS_SENT, t, 0, 1, NULL);
    g_autoptr(cJSON) rejected =
        ca_sms_result_new(NULL, CA_SMS_STATUS_REJECTED, t, -1, 0, "payload: not valid JSON");
    g_autofree char *q = cJSON_PrintUnformatted(queued);
    g_autofree char *s = cJSON_PrintUnformatted(sent);
    g_autofree char *r = cJSON_PrintUnformatted(rejected);
    CaSmsStatus st;

    g_assert_cmpstr(q, ==,
                    "{\"id\":\"a1\",\"status\":\"queued\",\"ts\":\"2024-05-01T10:00:00Z\","
                    "\"parts\":2}");
    g_assert_cmpstr(s, ==,
                    "{\"id\":\"a1\",\"status\":\"sent\",\"ts\":\"2024-05-01T10:00:00Z\","
                    "\"reference\":0,\"parts\":1}");
    g_assert_cmpstr(r, ==,
                    "{\"id\":null,\"status\":\"rejected\",\"ts\":\"2024-05-01T10:00:00Z\","
                    "\"error\":\"payload: not valid JSON\"}");
    g_assert_true(ca_sms_status_from_string("delivered", &st));
    g_assert_true(st == CA_SMS_STATUS_DELIVERED);
    g_assert_false(ca_sms_status_from_string("lost", &st));
    g_assert_false(ca_sms_status_is_final(CA_SMS_STATUS_SENT));
    g_assert_true(ca_sms_status_is_final(CA_SMS_STATUS_FAILED));
}

static void
test_incoming(void)
{
    g_autofree char *id1 = ca_sms_incoming_id("+254700000001", "2024-05-01T07:00:00Z", "Hi");
    g_autofree char *id2 = ca_sms_incoming_id("+254700000001", "2024-05-01T07:00:00Z", "Hi");
    g_autofree char *id3 = ca_sms_incoming_id("+254700000001", "2024-05-01T07:00:01Z", "Hi");
    g_autofree char *id4 = ca_sms_incoming_id("+254700000001", "2024-05-01T07:00:00Z", "Hi!");
    /* Field boundaries matter: ("ab","c") differs from ("a","bc"). */
    g_autofree char *id5 = ca_sms_incoming_id("ab", "c", "");
    g_autofree char *id6 = ca_sms_incoming_id("a", "bc", "");
    CaSmsIncoming msg = {
        .from = "+254700000001",
        .text = "Habari 😀",
        .timestamp = "2024-05-01T07:00:00Z",
        .smsc = "+254722000000",
        .received_at_us = G_GINT64_CONSTANT(1714557600) * G_USEC_PER_SEC,
    };
    g_autoptr(cJSON) json = ca_sms_incoming_to_json(id1, &msg);
    g_autofree char *text = cJSON_PrintUnformatted(json);
    g_autofree char *expect = NULL;

    g_assert_true(g_str_has_prefix(id1, "in-"));
    g_assert_cmpuint(strlen(id1), ==, 35);
    g_assert_true(ca_request_id_is_valid(id1));
    g_assert_cmpstr(id1, ==, id2);
    g_assert_cmpstr(id1, !=, id3);
    g_assert_cmpstr(id1, !=, id4);
    g_assert_cmpstr(id5, !=, id6);
    expect = g_strdup_printf("{\"id\":\"%s\",\"from\":\"+254700000001\",\"text\":\"Habari 😀\","
                             "\"timestamp\":\"2024-05-01T07:00:00Z\","
                             "\"received_at\":\"2024-05-01T10:00:00Z\","
                             "\"smsc\":\"+254722000000\"}",
                             id1);
    g_assert_cmpstr(text, ==, expect);
}

static void
test_timestamps(void)
{
    struct {
        const char *in, *out;
    } cases[] = {
        {"2024-05-01T10:00:00+03:00", "2024-05-01T07:00:00Z"},
        {"2024-05-01T01:30:00-02:30", "2024-05-01T04:00:00Z"},
        {"2024-12-31T23:59:59Z", "2024-12-31T23:59:59Z"},
        {"2024-01-01T02:00:00+03", "2023-12-31T23:00:00Z"},
        {"garbage", NULL},
        {"", NULL},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *got = ca_sms_timestamp_normalize(cases[i].in);
        g_assert_cmpstr(got, ==, cases[i].out);
    }
}

/* Toll fraud: short numbers only when listed, prefixes bound the rest. */
static void
test_destination_policy(void)
{
    const char *const any[] = {NULL};
    const char *const kenya[] = {"+2547", "12345", NULL};
    char *why = NULL;

    g_assert_null(ca_sms_destination_refused("+254700000001", NULL));
    g_assert_null(ca_sms_destination_refused("+254700000001", any));
    g_assert_null(ca_sms_destination_refused("0700000001", any));
    g_assert_null(ca_sms_destination_refused("1234567", any)); /* 7 digits: not short */
    g_assert_nonnull(strstr(ca_sms_destination_refused("123456", any), "fewer than 7 digits"));
    g_assert_nonnull(strstr(ca_sms_destination_refused("+12345", NULL), "fewer than 7 digits"));
    g_assert_nonnull(ca_sms_destination_refused("12345", any));
    /* With a list: the prefix, or an exact entry (a listed short code). */
    g_assert_null(ca_sms_destination_refused("+254711000001", kenya));
    g_assert_null(ca_sms_destination_refused("12345", kenya));
    g_assert_cmpstr(ca_sms_destination_refused("+255700000001", kenya), ==,
                    "to: not in [sms] allowed-destinations");
    /* A national form cannot match an international prefix. */
    g_assert_cmpstr(ca_sms_destination_refused("0711000001", kenya), ==,
                    "to: not in [sms] allowed-destinations");
    g_assert_nonnull(strstr(ca_sms_destination_refused("1234", kenya), "fewer than 7 digits"));
    /* Config entries. */
    g_assert_true(ca_sms_destination_entry_check("+2547", &why));
    g_assert_true(ca_sms_destination_entry_check("+1", &why));
    g_assert_true(ca_sms_destination_entry_check("12345", &why));
    g_assert_false(ca_sms_destination_entry_check("+", &why));
    g_clear_pointer(&why, g_free);
    g_assert_false(ca_sms_destination_entry_check("12", &why));
    g_clear_pointer(&why, g_free);
    g_assert_false(ca_sms_destination_entry_check("+254 7", &why));
    g_assert_nonnull(strstr(why, "international prefix"));
    g_clear_pointer(&why, g_free);
    g_assert_false(ca_sms_destination_entry_check("+1234567890123456", &why));
    g_clear_pointer(&why, g_free);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (gsize i = 0; i < G_N_ELEMENTS(seg_cases); i++) {
        g_autofree char *path = g_strdup_printf("/sms-codec/segments/%" G_GSIZE_FORMAT, i);
        g_test_add_data_func(path, &seg_cases[i], test_segments);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(req_cases); i++) {
        g_autofree char *path = g_strdup_printf("/sms-codec/request/%s", req_cases[i].name);
        g_test_add_data_func(path, &req_cases[i], test_request);
    }
    g_test_add_func("/sms-codec/request/fields", test_request_fields);
    g_test_add_func("/sms-codec/request/max-parts", test_request_max_parts);
    g_test_add_func("/sms-codec/request/limits", test_request_limits);
    g_test_add_func("/sms-codec/request/destination-policy", test_destination_policy);
    g_test_add_func("/sms-codec/result", test_result_json);
    g_test_add_func("/sms-codec/incoming", test_incoming);
    g_test_add_func("/sms-codec/timestamps", test_timestamps);
    return g_test_run();
}
