/* fuzz-sms-out: sms/out requests (docs/sms.md) through ca_sms_request_parse. The first
 * input byte is max-parts (1-255, as [sms] max-parts allows); the rest is the payload.
 * Every payload gives a request or an error naming the problem, never both. A request
 * honours the contract (valid id and number, UTF-8 text within max-parts segments counted
 * as ca_sms_count_segments counts them, validity in range), and its JSON form, as the spool
 * stores it, parses back to the same request. A rejection names the id only when valid. */
#include "autocleanups.h"
#include "error.h"
#include "fuzz.h"
#include "sms-codec.h"

#include <string.h>

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ca_fuzz_init();
    return 0;
}

static void
check_request(const CaSmsRequest *req, guint max_parts)
{
    CaSmsSegments seg;
    g_autoptr(cJSON) json = NULL;
    g_autofree char *text = NULL;
    g_autofree char *id = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(CaSmsRequest) again = NULL;

    ca_fuzz_assert(ca_request_id_is_valid(req->id));
    ca_fuzz_assert(ca_sms_number_is_valid(req->to));
    ca_fuzz_assert(req->text && g_utf8_validate(req->text, -1, NULL));
    ca_fuzz_assert(req->validity == 0 ||
                   (req->validity >= CA_SMS_VALIDITY_MIN && req->validity <= CA_SMS_VALIDITY_MAX));
    ca_sms_count_segments(req->text, &seg);
    ca_fuzz_assert(seg.encoding == req->segments.encoding && seg.units == req->segments.units &&
                   seg.parts == req->segments.parts);
    ca_fuzz_assert(seg.parts <= max_parts);

    /* What the spool keeps must come back as the same request. */
    json = ca_sms_request_to_json(req);
    ca_fuzz_assert(json != NULL);
    text = cJSON_PrintUnformatted(json);
    ca_fuzz_assert(text != NULL);
    again = ca_sms_request_parse(text, strlen(text), max_parts, &id, &error);
    ca_fuzz_assert(again != NULL && error == NULL);
    ca_fuzz_assert(strcmp(again->id, req->id) == 0 && strcmp(again->to, req->to) == 0 &&
                   strcmp(again->text, req->text) == 0);
    ca_fuzz_assert(again->delivery_report == req->delivery_report &&
                   again->validity == req->validity);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *id = NULL;
    CaSmsRequest *req;
    guint max_parts;

    if (size < 1)
        return 0;
    max_parts = 1 + data[0] % 255;
    req = ca_sms_request_parse((const char *) data + 1, size - 1, max_parts, &id, &error);
    ca_fuzz_assert((req == NULL) != (error == NULL));
    if (!req) {
        ca_fuzz_assert(g_error_matches(error, CA_ERROR, CA_ERROR_INVALID_INPUT));
        ca_fuzz_assert(error->message && *error->message);
        ca_fuzz_assert(id == NULL || ca_request_id_is_valid(id));
        return 0;
    }
    check_request(req, max_parts);
    ca_sms_request_free(req);
    return 0;
}
