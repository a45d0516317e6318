/* command-set: the remote command set as data, pure. The table of commands with their
 * args schemas (checked before any handler runs, whoever registered the handler), which
 * ones change something (and so emit an event saying who asked and what happened), the
 * event record, and the texts of SMS replies, including the one-SMS status summary.
 * Owns: schemas, event and reply formats. Does not own: what commands do (handlers in
 * remote.c and agent.c's wiring) nor transports (commands.c, sms). docs/commands.md. */
#pragma once
#include <cjson/cJSON.h>
#include <glib.h>

G_BEGIN_DECLS

/* One SMS of the GSM 7-bit alphabet. */
#define CA_SMS_TEXT_MAX 160

typedef struct {
    const char *name;
    gboolean changes; /* TRUE: answering emits a "command" event */
    const char *args; /* args summary for docs, "" when none */
    const char *doc;
} CaCommandInfo;

/* The documented commands, terminated by a zeroed entry. */
const CaCommandInfo *ca_cmdset_table(void);
/* The entry for name, or NULL (a command registered by a module but not in the table:
 * no args check, no event). */
const CaCommandInfo *ca_cmdset_lookup(const char *name);

/* Check the args of a request to name (args NULL when none). Commands without args
 * refuse any member; log-level wants {"level": error|warning|info|debug}; uplink wants
 * {"uplink": NAME or "auto"}; unknown members are refused everywhere. Names not in the
 * table pass. Error: CA_ERROR_INVALID_INPUT naming the member ("args.level: ..."). */
gboolean ca_cmdset_check_args(const char *name, const cJSON *args, GError **error);

/* The fields of the "command" event: {"command":N,"source":S,"id":ID,"ok":B} + "result"
 * (ok; large results such as telemetry are left out) or "error". */
cJSON *ca_cmdset_event_json(const char *name, const char *source, const char *id, gboolean ok,
                            const cJSON *result, const char *error);

/* What the status command and SMS report. Unknown: NULL strings, negative numbers. */
typedef struct {
    const char *device_id;
    const char *uplink;      /* the uplink in use, NULL: none */
    int signal_quality;      /* percent */
    const char *access_tech; /* "lte", ... */
    const char *operator_name;
    const char *registration;  /* ModemManager's names: home, roaming, searching, ... */
    gint64 rx_bytes, tx_bytes; /* of the modem's data session */
    gint64 uptime_s;           /* of the agent */
} CaStatusFacts;

/* Init with everything unknown. */
void ca_status_facts_init(CaStatusFacts *f);
/* The status as JSON (the MQTT result): nulls where unknown, plus "text", the SMS. */
cJSON *ca_cmdset_status_json(const CaStatusFacts *f);
/* One SMS: "DEV: up 3 d 4 h; uplink cellular; lte 70% Safaricom home; data rx 12.3 MB
 * tx 1.2 MB". Only GSM 7-bit safe characters; pieces are shortened (operator, device id)
 * to stay within CA_SMS_TEXT_MAX. */
char *ca_cmdset_status_text(const CaStatusFacts *f);
/* "12 B", "1.5 kB", "12.3 MB", "1.02 GB" (powers of 1000). */
char *ca_cmdset_format_bytes(gint64 bytes);

/* The reply SMS to an accepted SMS command, from the command's encoded result (as the
 * registry hands it to a transport): the status text for status; else "DEV: CMD ok" or
 * "DEV: CMD failed: ERROR", GSM 7-bit safe, within CA_SMS_TEXT_MAX. */
char *ca_cmdset_sms_reply(const char *device_id, const char *command, const char *result_json);

/* Keep what an SMS can carry safely (printable ASCII minus GSM escape characters
 * []{}|^~\ and `), at most max bytes. */
char *ca_cmdset_sms_safe(const char *text, gsize max);

G_END_DECLS
