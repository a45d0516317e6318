/* sms-codec: the pure half of the SMS bridge. Strict validation of sms/out requests,
 * segment counting the way ModemManager splits text (and the network bills it), and the
 * JSON of sms/out/result and sms/in, including the stable id of a received message.
 * Owns: payload rules and formats. Does not own: I/O, ModemManager, MQTT (sms.c, agent.c). */
#pragma once
#include "request-id.h"

#include <cjson/cJSON.h>
#include <glib.h>

G_BEGIN_DECLS

/* sms/out payloads larger than this are rejected without being parsed (255 parts of
 * escaped UCS-2 text fit comfortably). */
#define CA_SMS_MAX_REQUEST (128 * 1024)
/* Relative validity accepted in "validity" (minutes): 5 min .. 63 weeks (3GPP TS 23.040). */
#define CA_SMS_VALIDITY_MIN 5
#define CA_SMS_VALIDITY_MAX 635040

typedef enum {
    CA_SMS_ENCODING_GSM7, /* GSM 03.38 default alphabet (+ extension table, two septets) */
    CA_SMS_ENCODING_UCS2, /* UTF-16 units; characters outside the BMP take two */
} CaSmsEncoding;

const char *ca_sms_encoding_to_string(CaSmsEncoding encoding);

/* How a text travels: the encoding ModemManager picks, its length in septets (GSM7) or
 * UTF-16 units (UCS2), and the number of SMS segments. */
typedef struct {
    CaSmsEncoding encoding;
    guint units;
    guint parts;
} CaSmsSegments;

/* Count segments of valid UTF-8 text exactly as ModemManager 1.20 splits it: GSM 7-bit
 * when every character is in the default or extension table (160 septets in one SMS,
 * else greedy parts of 153 that never split an escape pair), otherwise UTF-16 (70 units
 * in one SMS, else greedy parts of 67 that never split a surrogate pair). "" is 0 parts. */
void ca_sms_count_segments(const char *text, CaSmsSegments *out_segments);

/* Result statuses of sms/out/result (docs/sms.md). */
typedef enum {
    CA_SMS_STATUS_QUEUED,    /* durably accepted */
    CA_SMS_STATUS_SENT,      /* the network took it (reference) */
    CA_SMS_STATUS_DELIVERED, /* delivery report: received by the handset */
    CA_SMS_STATUS_FAILED,    /* gave up (error) */
    CA_SMS_STATUS_REJECTED,  /* invalid request (error names field and reason) */
} CaSmsStatus;

const char *ca_sms_status_to_string(CaSmsStatus status);
gboolean ca_sms_status_from_string(const char *s, CaSmsStatus *out_status);
/* FALSE for statuses after which nothing more happens to the request. */
gboolean ca_sms_status_is_final(CaSmsStatus status);

/* A validated sms/out request. */
typedef struct {
    char *id;
    char *to;
    char *text;
    gboolean delivery_report;
    guint validity; /* minutes, 0 = not given (the network's default) */
    CaSmsSegments segments;
} CaSmsRequest;

void ca_sms_request_free(CaSmsRequest *req);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaSmsRequest, ca_sms_request_free)

/* Parse and validate an sms/out payload (not NUL-terminated, len bytes). On failure NULL
 * with CA_ERROR_INVALID_INPUT whose message names the field and the reason
 * ("to: must be + and 3-15 digits, or 3-15 digits"); *out_id is then set when the
 * request carried a valid id, so the rejection can name it (else NULL). */
CaSmsRequest *ca_sms_request_parse(const char *payload, gsize len, guint max_parts, char **out_id,
                                   GError **error);
/* The request as a JSON object (the contract's field names), for the spool. */
cJSON *ca_sms_request_to_json(const CaSmsRequest *req);

/* Contract rules. */
gboolean ca_sms_number_is_valid(const char *number); /* + and 3-15 digits, or 3-15 digits */

/* Toll-fraud rule for a valid sms/out destination. allowed: [sms] allowed-destinations, each
 * an international prefix ("+2547") or an exact number (a short code "12345"); NULL or empty
 * = any destination of 7 digits or more. A number of fewer than 7 digits (short codes, where
 * premium services live) is refused unless listed exactly. NULL when allowed, else the
 * reason (static), naming the field. */
const char *ca_sms_destination_refused(const char *to, const char *const *allowed);
/* Config check of one allowed-destinations entry: + and 1-15 digits, or 3-15 digits. */
gboolean ca_sms_destination_entry_check(const char *value, char **why);

/* A ModemManager timestamp ("2024-05-01T10:00:00+03:00") as UTC with Z; NULL when it
 * cannot be parsed. */
char *ca_sms_timestamp_normalize(const char *mm_timestamp);

/* {"id":id|null,"status":S,"ts":TS} + "reference" (when >= 0), "parts" (when > 0), "error"
 * (when non-NULL). */
cJSON *ca_sms_result_new(const char *id, CaSmsStatus status, gint64 ts_us, gint reference,
                         guint parts, const char *error);

/* A received message. */
typedef struct {
    const char *from;      /* sender number or alphanumeric name */
    const char *text;      /* UTF-8 */
    const char *timestamp; /* SMSC timestamp, UTC with Z (or as ModemManager gave it) */
    const char *smsc;      /* may be NULL */
    gint64 received_at_us; /* when the agent saw it complete */
} CaSmsIncoming;

/* The stable id of a received message: "in-" + 32 hex digits of SHA-256 over sender,
 * SMSC timestamp and text, so a message published again carries the same id. */
char *ca_sms_incoming_id(const char *from, const char *timestamp, const char *text);
/* {"id","from","text","timestamp","received_at"} + "smsc" when known. */
cJSON *ca_sms_incoming_to_json(const char *id, const CaSmsIncoming *msg);

G_END_DECLS
