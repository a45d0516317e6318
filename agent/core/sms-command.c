/* sms-command: deciding whether a received SMS is a command and whether to run it.
 * Owns: the parse rules, sender matching, the failure budget and its lockout, the state
 * file (replay state and failures, both surviving restarts). Does not own: running commands, replies, events (agent.c wiring). */
#define CA_LOG_MODULE "sms-command"
#include "sms-command.h"

#include "error.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

static const char *const command_names[] = {
    "status", "reconnect", "modem-reset", "mqtt-reconnect", "reboot", NULL,
};

const char *const *
ca_sms_command_names(void)
{
    return command_names;
}

const char *
ca_sms_reason_to_string(CaSmsReason reason)
{
    switch (reason) {
    case CA_SMS_REASON_NONE:
        return "accepted";
    case CA_SMS_REASON_SENDER:
        return "sender not allowed";
    case CA_SMS_REASON_LOCKED_OUT:
        return "locked out";
    case CA_SMS_REASON_MALFORMED:
        return "malformed";
    case CA_SMS_REASON_UNKNOWN_COMMAND:
        return "unknown command";
    case CA_SMS_REASON_BAD_ARGS:
        return "invalid arguments";
    case CA_SMS_REASON_WRONG_CODE:
        return "wrong code";
    case CA_SMS_REASON_REPLAYED_CODE:
        return "replayed code";
    case CA_SMS_REASON_STATE:
        return "replay state not saved";
    }
    return "?";
}

/*****************************************************************************/
/* Phone numbers */

static gboolean
digits_only(const char *s, gsize min, gsize max)
{
    gsize n = strlen(s);

    if (n < min || n > max)
        return FALSE;
    for (; *s; s++) {
        if (!g_ascii_isdigit(*s))
            return FALSE;
    }
    return TRUE;
}

char *
ca_phone_normalize(const char *number)
{
    g_autoptr(GString) s = g_string_new(NULL);
    const char *digits;

    if (!number || strlen(number) > 64)
        return NULL;
    for (const char *p = number; *p; p++) {
        if (*p == ' ' || *p == '-' || *p == '.' || *p == '(' || *p == ')')
            continue;
        g_string_append_c(s, *p);
    }
    /* 00 is the international access code in most of the world: "00254..." = "+254...". */
    if (g_str_has_prefix(s->str, "00") && digits_only(s->str + 2, 3, 15) && s->str[2] != '0') {
        g_string_erase(s, 0, 2);
        g_string_prepend_c(s, '+');
    }
    digits = s->str[0] == '+' ? s->str + 1 : s->str;
    if (!digits_only(digits, 3, 15))
        return NULL;
    return g_string_free(g_steal_pointer(&s), FALSE);
}

gboolean
ca_phone_equal(const char *a, const char *b)
{
    g_autofree char *na = ca_phone_normalize(a);
    g_autofree char *nb = ca_phone_normalize(b);

    return na && nb && strcmp(na, nb) == 0;
}

char *
ca_phone_mask(const char *number, gboolean personal)
{
    GString *s = g_string_new(NULL);
    gsize n = MIN(strlen(number), 32);
    gsize digits = 0, seen = 0;

    for (gsize i = 0; i < n; i++) {
        if (g_ascii_isdigit(number[i]))
            digits++;
    }
    for (gsize i = 0; i < n; i++) {
        char c = number[i];

        if (i == 0 && c == '+') {
            g_string_append_c(s, c);
        } else if (g_ascii_isdigit(c)) {
            seen++;
            g_string_append_c(s, personal || seen + 3 > digits ? c : '*');
        } else if (personal && g_ascii_isprint(c)) {
            g_string_append_c(s, c);
        } else {
            /* Names ("MPESA") and formatting are masked too: only digits are kept. */
            g_string_append_c(s, personal ? '?' : '*');
        }
    }
    return g_string_free(s, FALSE);
}

gboolean
ca_phone_check_international(const char *value, char **why)
{
    g_autofree char *n = ca_phone_normalize(value);

    if (!n || n[0] != '+') {
        *why = g_strdup("must be an international number: + (or 00) and the country code, "
                        "3-15 digits; a national form could be spelled by an alphanumeric "
                        "sender name");
        return FALSE;
    }
    return TRUE;
}

gboolean
ca_phone_check(const char *value, char **why)
{
    g_autofree char *n = ca_phone_normalize(value);

    if (!n) {
        *why = g_strdup("must be + and 3-15 digits, or 3-15 digits (spaces, - . ( ) allowed)");
        return FALSE;
    }
    return TRUE;
}

/*****************************************************************************/
/* Parsing */

static gboolean
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static const char *
skip_space(const char *p)
{
    while (is_space(*p))
        p++;
    return p;
}

static const char *
skip_word(const char *p)
{
    while (*p && !is_space(*p))
        p++;
    return p;
}

gboolean
ca_sms_command_has_shape(const char *text)
{
    const char *p = skip_space(text);
    const char *end = skip_word(p);

    if (end == p || end - p > 16)
        return FALSE;
    for (const char *q = p; q < end; q++) {
        if (!g_ascii_isdigit(*q))
            return FALSE;
    }
    if (!is_space(*end))
        return FALSE;
    p = skip_space(end);
    return g_ascii_isalpha(*p);
}

static gboolean
command_known(const char *name)
{
    return g_strv_contains(command_names, name);
}

CaSmsReason
ca_sms_command_parse(const char *text, CaSmsCommandText *out, const char **detail)
{
    const char *p, *end, *args_end;

    memset(out, 0, sizeof(*out));
    *detail = NULL;
    /* The code and the command word first: they decide whether an SMS from an unknown
     * sender is a command at all (ca_sms_guard_check). */
    p = skip_space(text);
    end = skip_word(p);
    if (end - p != CA_TOTP_DIGITS) {
        *detail = "the code must be 6 digits";
        return CA_SMS_REASON_MALFORMED;
    }
    for (const char *q = p; q < end; q++) {
        if (!g_ascii_isdigit(*q)) {
            *detail = "the code must be 6 digits";
            return CA_SMS_REASON_MALFORMED;
        }
    }
    memcpy(out->code, p, CA_TOTP_DIGITS);
    p = skip_space(end);
    end = skip_word(p);
    if (end == p) {
        *detail = "no command after the code";
        return CA_SMS_REASON_MALFORMED;
    }
    if (end - p > CA_SMS_COMMAND_MAX_NAME)
        return CA_SMS_REASON_UNKNOWN_COMMAND;
    for (gsize i = 0; p + i < end; i++) {
        char c = g_ascii_tolower(p[i]);

        if (!g_ascii_isalnum(c) && c != '-') {
            memset(out->command, 0, sizeof(out->command));
            return CA_SMS_REASON_UNKNOWN_COMMAND;
        }
        out->command[i] = c;
    }
    if (!command_known(out->command)) {
        memset(out->command, 0, sizeof(out->command));
        return CA_SMS_REASON_UNKNOWN_COMMAND;
    }
    /* The whole text. */
    if (strlen(text) > CA_SMS_COMMAND_MAX_TEXT) {
        *detail = "longer than 160 characters";
        return CA_SMS_REASON_MALFORMED;
    }
    for (const char *q = text; *q; q++) {
        if (!is_space(*q) && !(*q >= 0x21 && *q <= 0x7e)) {
            *detail = "characters other than printable ASCII";
            return CA_SMS_REASON_MALFORMED;
        }
    }
    /* Arguments: the rest, trimmed. No command takes any today. */
    p = skip_space(end);
    args_end = p + strlen(p);
    while (args_end > p && is_space(args_end[-1]))
        args_end--;
    if (args_end - p > CA_SMS_COMMAND_MAX_ARGS) {
        *detail = "arguments longer than 64 characters";
        return CA_SMS_REASON_BAD_ARGS;
    }
    memcpy(out->args, p, (gsize) (args_end - p));
    if (out->args[0]) {
        *detail = "the command takes no arguments";
        return CA_SMS_REASON_BAD_ARGS;
    }
    return CA_SMS_REASON_NONE;
}

/*****************************************************************************/
/* The guard */

struct _CaSmsGuard {
    GHashTable *senders; /* normalised international numbers allowed to send commands */
    guint budget;        /* failed code checks allowed per CA_SMS_COMMAND_RATE_WINDOW_S */
    gint64 lockout_s;    /* how long every command is refused once the budget is spent */
    gint64 *failures;    /* unix times of the latest failed checks, oldest first */
    guint n_failures;    /* entries used (at most budget) */
    gint64 locked_until; /* unix time; 0 = not locked */
    GBytes *secret;
    char *secret_id;
    char *state_path;
    gint64 last_used; /* latest accepted TOTP step, -1 none */
};

#define STATE_GROUP    "totp-used"
#define FAILURES_GROUP "failures"
/* State entries of other (earlier) secrets kept in the file. */
#define STATE_MAX_SECRETS 8

static gint64
load_last_used(CaSmsGuard *self, GKeyFile *kf, const GError *load_error, gint64 unix_time,
               char **warning)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    gint64 v;

    if (load_error) {
        if (g_error_matches(load_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return -1;
        error = g_error_copy(load_error);
        goto fail_closed;
    }
    text = g_key_file_get_value(kf, STATE_GROUP, self->secret_id, NULL);
    if (!text)
        return -1;
    if (!g_ascii_string_to_signed(text, 10, -1, G_MAXINT64 / 2, &v, &error))
        goto fail_closed;
    return v;

fail_closed:
    if (warning)
        *warning = g_strdup_printf("replay state %s unusable (%s): codes up to now are treated "
                                   "as used",
                                   self->state_path, error ? error->message : "?");
    return ca_totp_counter(unix_time) + CA_TOTP_SKEW;
}

/* Forget failures outside the window. Times in the future (the clock was set back) count as
 * now, so a clock jump can neither erase the record nor stretch it. */
static void
prune_failures(CaSmsGuard *self, gint64 unix_time)
{
    guint kept = 0;

    for (guint i = 0; i < self->n_failures; i++) {
        gint64 t = MIN(self->failures[i], unix_time);

        if (unix_time - t < CA_SMS_COMMAND_RATE_WINDOW_S)
            self->failures[kept++] = t;
    }
    self->n_failures = kept;
    if (self->locked_until && self->locked_until > unix_time + self->lockout_s)
        self->locked_until = unix_time + self->lockout_s;
    if (self->locked_until && unix_time >= self->locked_until)
        self->locked_until = 0;
}

/* The failure record from the state file; a missing or damaged one is an empty record (the
 * replay state, not this, is what fails closed). */
static void
load_failures(CaSmsGuard *self, GKeyFile *kf, gint64 unix_time)
{
    gsize n = 0;
    g_auto(GStrv) list = g_key_file_get_string_list(kf, FAILURES_GROUP, "times", &n, NULL);
    g_autofree char *until = g_key_file_get_value(kf, FAILURES_GROUP, "locked-until", NULL);
    gint64 v;

    for (gsize i = 0; list && list[i]; i++) {
        if (!g_ascii_string_to_signed(list[i], 10, 0, G_MAXINT64 / 2, &v, NULL))
            continue;
        if (self->n_failures == self->budget) {
            memmove(self->failures, self->failures + 1,
                    (self->budget - 1) * sizeof(self->failures[0]));
            self->n_failures--;
        }
        self->failures[self->n_failures++] = v;
    }
    if (until && g_ascii_string_to_signed(until, 10, 0, G_MAXINT64 / 2, &v, NULL))
        self->locked_until = v;
    prune_failures(self, unix_time);
}

/* Write the state durably: the last used step (before a command runs) and the failure
 * record (after each failure, so a restart does not reset the budget). */
static gboolean
save_state(CaSmsGuard *self, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *dir = g_path_get_dirname(self->state_path);
    g_autofree char *data = NULL;
    g_auto(GStrv) keys = NULL;
    g_autoptr(GPtrArray) times = g_ptr_array_new_with_free_func(g_free);
    gsize len = 0;

    /* Keep entries of other secrets (a rotated-back secret keeps its state), bounded. */
    if (g_key_file_load_from_file(kf, self->state_path, G_KEY_FILE_NONE, NULL)) {
        keys = g_key_file_get_keys(kf, STATE_GROUP, NULL, NULL);
        for (guint i = 0, kept = 0; keys && keys[i]; i++) {
            if (strcmp(keys[i], self->secret_id) == 0)
                continue;
            if (++kept >= STATE_MAX_SECRETS)
                g_key_file_remove_key(kf, STATE_GROUP, keys[i], NULL);
        }
    }
    if (self->last_used >= 0)
        g_key_file_set_int64(kf, STATE_GROUP, self->secret_id, self->last_used);
    for (guint i = 0; i < self->n_failures; i++)
        g_ptr_array_add(times, g_strdup_printf("%" G_GINT64_FORMAT, self->failures[i]));
    g_ptr_array_add(times, NULL);
    g_key_file_set_string_list(kf, FAILURES_GROUP, "times", (const char *const *) times->pdata,
                               self->n_failures);
    g_key_file_set_int64(kf, FAILURES_GROUP, "locked-until", self->locked_until);
    data = g_key_file_to_data(kf, &len, NULL);
    if (g_mkdir_with_parents(dir, 0700) < 0) {
        int e = errno;
        g_set_error(error, CA_ERROR, CA_ERROR_IO, "cannot create %s: %s", dir, g_strerror(e));
        return FALSE;
    }
    if (!g_file_set_contents_full(self->state_path, data, (gssize) len,
                                  G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                  0600, error))
        return FALSE;
    return TRUE;
}

CaSmsGuard *
ca_sms_guard_new(const CaSmsCommandSettings *settings, GBytes *secret, const char *state_path,
                 gint64 unix_time, char **warning, GError **error)
{
    const char *const *allowed = (const char *const *) settings->allowed_senders;
    g_autoptr(CaSmsGuard) self = g_new0(CaSmsGuard, 1);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) load_error = NULL;

    self->senders = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; allowed && allowed[i]; i++) {
        char *n = ca_phone_normalize(allowed[i]);

        if (!n || n[0] != '+') {
            g_free(n);
            g_set_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG,
                        "[sms-commands] allowed-senders: \"%s\" is not an international number",
                        allowed[i]);
            return NULL;
        }
        g_hash_table_add(self->senders, n);
    }
    if (g_hash_table_size(self->senders) > CA_SMS_COMMAND_MAX_SENDERS) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG,
                    "[sms-commands] allowed-senders: more than %d numbers",
                    CA_SMS_COMMAND_MAX_SENDERS);
        return NULL;
    }
    self->lockout_s = settings->lockout_ms / 1000;
    self->budget = settings->max_failures_per_hour;
    self->failures = g_new0(gint64, self->budget);
    self->secret = g_bytes_ref(secret);
    self->secret_id = ca_totp_secret_id(secret);
    self->state_path = g_strdup(state_path);
    g_key_file_load_from_file(kf, self->state_path, G_KEY_FILE_NONE, &load_error);
    self->last_used = load_last_used(self, kf, load_error, unix_time, warning);
    if (!load_error)
        load_failures(self, kf, unix_time);
    return g_steal_pointer(&self);
}

void
ca_sms_guard_free(CaSmsGuard *self)
{
    if (!self)
        return;
    g_clear_pointer(&self->senders, g_hash_table_unref);
    g_free(self->failures);
    g_clear_pointer(&self->secret, g_bytes_unref);
    g_free(self->secret_id);
    g_free(self->state_path);
    g_free(self);
}

gint64
ca_sms_guard_get_last_used(const CaSmsGuard *self)
{
    return self->last_used;
}

gint64
ca_sms_guard_locked_until(CaSmsGuard *self, gint64 unix_time)
{
    prune_failures(self, unix_time);
    return self->locked_until;
}

guint
ca_sms_guard_get_failures(CaSmsGuard *self, gint64 unix_time)
{
    prune_failures(self, unix_time);
    return self->n_failures;
}

/* Count a failed code check (over all senders) and start the lockout when the budget is
 * spent; written to the state file at once. */
static void
note_failure(CaSmsGuard *self, gint64 unix_time, CaSmsDecision *out)
{
    g_autoptr(GError) error = NULL;

    if (self->n_failures == self->budget) {
        memmove(self->failures, self->failures + 1, (self->budget - 1) * sizeof(self->failures[0]));
        self->n_failures--;
    }
    self->failures[self->n_failures++] = unix_time;
    out->failures = self->n_failures;
    if (self->n_failures >= self->budget) {
        self->locked_until = unix_time + self->lockout_s;
        out->lockout_ms = self->lockout_s * 1000;
    }
    if (!save_state(self, &error))
        out->detail = "the failure record could not be saved";
}

void
ca_sms_guard_check(CaSmsGuard *self, const char *sender, const char *text, gint64 unix_time,
                   CaSmsDecision *out)
{
    g_autofree char *normalised = ca_phone_normalize(sender);
    gboolean allowed = normalised && g_hash_table_contains(self->senders, normalised);
    CaSmsCommandText parsed;
    const char *detail = NULL;
    CaSmsReason reason;
    g_autoptr(GError) error = NULL;
    gsize key_len = 0;
    const guint8 *key;
    gint64 counter = -1;

    memset(out, 0, sizeof(*out));
    out->counter = -1;
    if (!ca_sms_command_has_shape(text))
        return;
    reason = ca_sms_command_parse(text, &parsed, &detail);
    /* A command is a 6-digit code followed by a known command word, whoever sends it. Text
     * that merely starts with a number ("10 min late", "123456 is your code") is an ordinary
     * SMS, from an allowed sender too: it goes to sms/in. */
    if (!parsed.command[0])
        return;
    prune_failures(self, unix_time);
    out->is_command = TRUE;
    out->parsed = parsed;
    if (normalised && strlen(normalised) < sizeof(out->sender))
        memcpy(out->sender, normalised, strlen(normalised) + 1);
    out->failures = self->n_failures;

    if (!allowed) {
        out->reason = CA_SMS_REASON_SENDER;
        return;
    }
    if (self->locked_until) {
        out->reason = CA_SMS_REASON_LOCKED_OUT;
        return;
    }
    if (reason != CA_SMS_REASON_NONE) {
        out->reason = reason;
        out->detail = detail;
        return;
    }
    key = g_bytes_get_data(self->secret, &key_len);
    switch (ca_totp_verify(key, key_len, parsed.code, unix_time, self->last_used, &counter)) {
    case CA_TOTP_OK:
        break;
    case CA_TOTP_WRONG:
    case CA_TOTP_MALFORMED: /* excluded by the parser */
        out->reason = CA_SMS_REASON_WRONG_CODE;
        note_failure(self, unix_time, out);
        return;
    case CA_TOTP_REPLAYED:
        out->reason = CA_SMS_REASON_REPLAYED_CODE;
        note_failure(self, unix_time, out);
        return;
    }
    /* Used in memory at once; on disk before anything runs. If the disk refuses, fail
     * closed: the command does not run (and this code stays used). */
    self->last_used = counter;
    out->counter = counter;
    if (!save_state(self, &error)) {
        out->reason = CA_SMS_REASON_STATE;
        out->detail = "the state directory is not writable";
        return;
    }
    out->accepted = TRUE;
}

cJSON *
ca_sms_decision_audit_json(const CaSmsDecision *d, const char *raw_sender, gboolean personal)
{
    cJSON *o = cJSON_CreateObject();
    /* The normalised number when there is one: the same sender always looks the same. */
    g_autofree char *from =
        ca_phone_mask(d->sender[0] ? d->sender : (raw_sender ? raw_sender : ""), personal);

    cJSON_AddStringToObject(o, "from", from);
    cJSON_AddStringToObject(o, "outcome", d->accepted ? "accepted" : "rejected");
    if (d->parsed.command[0])
        cJSON_AddStringToObject(o, "command", d->parsed.command);
    else
        cJSON_AddNullToObject(o, "command");
    if (!d->accepted) {
        cJSON_AddStringToObject(o, "reason", ca_sms_reason_to_string(d->reason));
        if (d->detail)
            cJSON_AddStringToObject(o, "detail", d->detail);
    }
    cJSON_AddNumberToObject(o, "failures", d->failures);
    if (d->lockout_ms > 0)
        cJSON_AddNumberToObject(o, "lockout", (double) (d->lockout_ms / 1000));
    return o;
}

char *
ca_sms_command_audit_id(GBytes *secret, const char *sms_id)
{
    g_autofree char *hex = NULL;

    if (secret && g_bytes_get_size(secret) > 0) {
        gsize len = 0;
        const guint8 *key = g_bytes_get_data(secret, &len);
        g_autoptr(GHmac) hmac = g_hmac_new(G_CHECKSUM_SHA256, key, len);

        g_hmac_update(hmac, (const guchar *) (sms_id ? sms_id : ""), -1);
        hex = g_strdup(g_hmac_get_string(hmac));
    } else {
        hex = g_strdup_printf("%08x%08x%08x%08x", g_random_int(), g_random_int(), g_random_int(),
                              g_random_int());
    }
    hex[32] = '\0';
    return g_strconcat("cmd-", hex, NULL);
}
