/* status-file: the running agent's status document (<runtime-dir>/status.json) as data and
 * as text: its top level, reading it back with bounds, how fresh it is, redacting personal
 * data, and the mmcli-like summary `cellagent --status` prints.
 * Owns: the document's format. Does not own: gathering the facts (agent/app/agent-status.c),
 * writing or reading the file (agent-status.c, status-cli.c). */
#pragma once
#include <cjson/cJSON.h>
#include <glib.h>

/* The document's format number ("format"); a reader refuses a newer one. */
#define CA_STATUS_FORMAT 1
/* The file's name inside the runtime directory. */
#define CA_STATUS_FILE_NAME "status.json"
/* Largest status file a reader accepts. */
#define CA_STATUS_MAX_BYTES (1024 * 1024)

/* How a status file looks to a reader. */
typedef enum {
    CA_STATUS_FRESH,   /* updated within the refresh period the agent promises (+ grace) */
    CA_STATUS_STALE,   /* older: the agent is hung, or stopped without removing it */
    CA_STATUS_INVALID, /* no usable "updated_at"/"refresh" */
} CaStatusFreshness;

const char *ca_status_freshness_to_string(CaStatusFreshness freshness);

/* The top level: {"format":1,"version":V,"pid":P,"device_id":D,"started_at":TS,
 * "updated_at":TS,"refresh":S}; the caller adds "mqtt", "link", "modem", "sms", "watchdog". */
cJSON *ca_status_new(const char *version, gint64 pid, const char *device_id, gint64 started_at_us,
                     gint64 now_us, guint refresh_s);

/* {"state":"connected"|"disconnected","since":TS|null,"queue":N,"dropped":N,"broker":"H:P"} */
cJSON *ca_status_mqtt_json(gboolean connected, gint64 since_us, guint queue, guint64 dropped,
                           const char *host, gint64 port);

/* Parse a status file's bytes: at most CA_STATUS_MAX_BYTES, one JSON object with a known
 * "format". Errors: CA_ERROR_INVALID_INPUT saying why. */
cJSON *ca_status_parse(const char *data, gsize len, GError **error);

/* Fresh while now - updated_at <= 2 * refresh + grace (a missed refresh is no alarm, two
 * are); *out_age_s (may be NULL) is set to the age in seconds when known. */
CaStatusFreshness ca_status_check_freshness(const cJSON *status, gint64 now_us, gint64 *out_age_s);

/* Replace the personal data (IMEI, ICCID, IMSI, phone numbers) with "###", as the logs do. */
void ca_status_redact(cJSON *status);

/* The human summary, in the manner of `mmcli -m 0`: sections Agent, Broker, Uplinks, Modem,
 * SMS, Watchdog, each "label: value" right-aligned. freshness and age say how the reader
 * judged the file; now_us renders ages and uptimes. */
char *ca_status_format_text(const cJSON *status, CaStatusFreshness freshness, gint64 age_s,
                            gint64 now_us);
