/* sms-command: the gatekeeper of commands sent by SMS, pure apart from its small replay
 * state file. It tells command SMS from ordinary ones, parses "<code> <command> [args]"
 * strictly, checks the sender against [sms-commands] allowed-senders, the TOTP code
 * (totp.h) and its replay state, counts failures per sender with lockouts, bounds failed
 * code checks over all senders, and builds the audit record.
 * Owns: every accept/reject decision and the persisted "last used step" per secret.
 * Does not own: running commands, sending replies, publishing events (agent.c wiring). */
#pragma once
#include "config.h"
#include "sms-command-settings.h"
#include "totp.h"

#include <cjson/cJSON.h>
#include <glib.h>

G_BEGIN_DECLS

/* A command SMS longer than this (bytes) is rejected as malformed. */
#define CA_SMS_COMMAND_MAX_TEXT 160
/* Longest command word and argument text. */
#define CA_SMS_COMMAND_MAX_NAME 32
#define CA_SMS_COMMAND_MAX_ARGS 64
/* At most this many allowed senders (each keeps a small failure record). */
#define CA_SMS_COMMAND_MAX_SENDERS 32
/* Failed code checks over all senders are counted over this window (seconds). */
#define CA_SMS_COMMAND_RATE_WINDOW_S 3600

/* The commands an SMS may carry, NULL-terminated: status, reconnect, modem-reset,
 * mqtt-reconnect, reboot. None takes arguments today. */
const char *const *ca_sms_command_names(void);

/*****************************************************************************/
/* Phone numbers */

/* Normalise a number for comparison: spaces, '-', '.', '(' and ')' are dropped and a
 * leading "00" (the international access code) becomes '+' when what follows is a valid
 * international number. Result: '+' and 3-15 digits, or 3-15 digits; NULL for anything
 * else (e.g. alphanumeric senders such as "MPESA"). */
char *ca_phone_normalize(const char *number);
/* TRUE when both normalise to the same text. Deliberately strict: an international
 * (+...) and a national number never match, even when they reach the same line; list
 * both forms in allowed-senders if the network delivers both. */
gboolean ca_phone_equal(const char *a, const char *b);
/* The number for logs and events: unchanged when personal is TRUE, otherwise every digit
 * but the last three replaced by '*' ("+254*******678"). Other characters than a leading
 * '+' and digits become '?'; at most 32 characters are shown. */
char *ca_phone_mask(const char *number, gboolean personal);
/* Config validator for [sms-alerts] numbers (any form ca_phone_normalize takes). */
gboolean ca_phone_check(const char *value, char **why);
/* Config validator for allowed-senders: international numbers only (+ or 00 and the country
 * code). A national form ("0712345678") is refused: an alphanumeric sender name can spell it,
 * and the network does not tell the two apart in what ModemManager reports. */
gboolean ca_phone_check_international(const char *value, char **why);

/*****************************************************************************/
/* Parsing */

typedef struct {
    char code[CA_TOTP_DIGITS + 1];
    char command[CA_SMS_COMMAND_MAX_NAME + 1]; /* lower case */
    char args[CA_SMS_COMMAND_MAX_ARGS + 1];    /* trimmed; "" when none */
} CaSmsCommandText;

typedef enum {
    CA_SMS_REASON_NONE,            /* accepted */
    CA_SMS_REASON_SENDER,          /* sender not in allowed-senders */
    CA_SMS_REASON_LOCKED_OUT,      /* the failure budget is spent: every command refused */
    CA_SMS_REASON_MALFORMED,       /* too long, bad characters, code not 6 digits */
    CA_SMS_REASON_UNKNOWN_COMMAND, /* the word is not a command */
    CA_SMS_REASON_BAD_ARGS,        /* arguments the command does not take */
    CA_SMS_REASON_WRONG_CODE,      /* the code matches no step of the window */
    CA_SMS_REASON_REPLAYED_CODE,   /* the code (or a later one) was used already */
    CA_SMS_REASON_STATE,           /* the replay state could not be saved: fail closed */
} CaSmsReason;

/* Text for audit events: "sender not allowed", "wrong code", ... */
const char *ca_sms_reason_to_string(CaSmsReason reason);

/* Does text have the form of a command: optional whitespace, 1-16 ASCII digits,
 * whitespace, then a word starting with an ASCII letter? (How the rest is judged is up to
 * ca_sms_command_parse.) */
gboolean ca_sms_command_has_shape(const char *text);
/* Parse "<code> <command> [args]" strictly: at most CA_SMS_COMMAND_MAX_TEXT bytes of
 * printable ASCII and whitespace, a code of exactly CA_TOTP_DIGITS digits, a known command
 * word (any case; stored in lower case), arguments only where the command takes them
 * (none does today). Words are separated by runs of spaces, tabs or line breaks, and
 * leading/trailing whitespace is ignored. On failure returns the reason (MALFORMED,
 * UNKNOWN_COMMAND, BAD_ARGS) and sets *detail to a static explanation. */
CaSmsReason ca_sms_command_parse(const char *text, CaSmsCommandText *out, const char **detail);

/*****************************************************************************/
/* The guard */

typedef struct _CaSmsGuard CaSmsGuard;

/* One decision about one received SMS. */
typedef struct {
    gboolean is_command;     /* FALSE: an ordinary SMS (goes to sms/in); nothing else set */
    gboolean accepted;       /* TRUE: authenticated, run command */
    CaSmsReason reason;      /* why rejected (NONE when accepted) */
    const char *detail;      /* static extra detail for MALFORMED, or NULL */
    CaSmsCommandText parsed; /* command is "" unless it was a known command */
    char sender[17];         /* normalised sender, "" when not a phone number */
    guint failures;          /* failed code checks over all senders in the last hour */
    gint64 lockout_ms;       /* > 0: this message started a lockout this long */
    gint64 counter;          /* accepted: the TOTP step that was used */
} CaSmsDecision;

/* A guard for settings ([sms-commands]) with the decoded secret. State lives in state_path
 * (a small key file written atomically and synced: one "last used step" per secret id,
 * before a command is accepted; the failure record, after each failure). A missing file
 * means nothing was used; an unreadable or corrupt one is treated as "used up to now + skew"
 * (fail closed, self-healing within a minute), with a warning in *warning (may be NULL).
 * A missing or damaged failure record is an empty one. unix_time: now.
 * Errors (CA_ERROR_INVALID_CONFIG): more than CA_SMS_COMMAND_MAX_SENDERS senders, or one
 * that is not an international number. */
CaSmsGuard *ca_sms_guard_new(const CaSmsCommandSettings *settings, GBytes *secret,
                             const char *state_path, gint64 unix_time, char **warning,
                             GError **error);
void ca_sms_guard_free(CaSmsGuard *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaSmsGuard, ca_sms_guard_free)

/* Judge one received SMS at unix_time (the wall clock: TOTP, and the failure record that
 * must survive restarts; a clock set back counts failures "in the future" as now). Order:
 * command or not (a command is exactly a 6-digit code and a known command word, from any
 * sender; anything else is an ordinary SMS); sender allowed; locked out; parse; code.
 * Failures (wrong or replayed codes only) are counted over all senders, never per claimed
 * sender (a forged sender must not lock out the real one alone while the attacker keeps
 * guessing as another): max-failures-per-hour of them lock every SMS command out for
 * lockout seconds. The record survives restarts. */
void ca_sms_guard_check(CaSmsGuard *self, const char *sender, const char *text, gint64 unix_time,
                        CaSmsDecision *out);
/* The last step accepted for the guard's secret (-1: none). */
gint64 ca_sms_guard_get_last_used(const CaSmsGuard *self);
/* The end of the lockout (unix time), 0 when commands are not locked out at unix_time. */
gint64 ca_sms_guard_locked_until(CaSmsGuard *self, gint64 unix_time);
/* Failed code checks counted in the hour before unix_time. */
guint ca_sms_guard_get_failures(CaSmsGuard *self, gint64 unix_time);

/* The id of a command SMS in audit events: HMAC-SHA256 of its sms/in-style id (a hash of
 * sender, SMSC time and text) keyed with the TOTP secret, "cmd-" + 32 hex digits. The plain
 * id would let anyone who sees the event recover the 6-digit code by trying all million
 * (sender and time are known); without the secret this one gives nothing away, and the same
 * SMS always gets the same audit id. With no secret (SMS commands unusable): a random id. */
char *ca_sms_command_audit_id(GBytes *secret, const char *sms_id);

/* The audit event fields (type "sms-command"): "from" (masked unless personal),
 * "outcome" ("accepted"/"rejected"), "command" (known commands only, else null),
 * "reason" and "detail" when rejected, "failures", "lockout" (seconds) when one started.
 * raw_sender: the number as received (shown when it did not normalise). Never the text
 * or the code. */
cJSON *ca_sms_decision_audit_json(const CaSmsDecision *d, const char *raw_sender,
                                  gboolean personal);

G_END_DECLS
