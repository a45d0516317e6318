/* fuzz-sms-command: the SMS command gate on arbitrary senders and texts. The input is
 * "<sender>\n<text>" (no newline: all sender, empty text). For every input:
 * - ca_phone_normalize gives NULL or '+'/digits of the allowed lengths, and is idempotent;
 *   ca_phone_mask never shows more than 32 characters nor, masked, more than 3 digits;
 * - ca_sms_command_parse either accepts (a 6-digit code, a known lower-case command, no
 *   arguments) or names a reason, and never reads or writes past its fields;
 * - the guard's decision is consistent (accepted only for an allowed sender whose code
 *   verifies), and its audit record never carries the code or the raw text.
 * The guard's state path cannot be written, so an input never leaves files behind. */
#include "autocleanups.h"
#include "config.h"
#include "fuzz.h"
#include "sms-command.h"

#include <string.h>

#define FUZZ_TIME 1111111111 /* fixed wall clock: reproducible */

static CaConfig *config;
static GBytes *secret;

/* The guard for config's [sms-commands], as remote.c builds it. */
static CaSmsGuard *
guard_new(const CaConfig *c, GBytes *key, const char *state, gint64 unix_time, char **warning,
          GError **error)
{
    CaSmsCommandSettings set;
    CaSmsGuard *guard;

    ca_sms_command_settings_load(&set, c);
    guard = ca_sms_guard_new(&set, key, state, unix_time, warning, error);
    ca_sms_command_settings_clear(&set);
    return guard;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const char text[] = "[agent]\ndevice-id=fuzz\n[sms-commands]\nenabled=true\n"
                               "secret-file=/nonexistent\n"
                               "allowed-senders=+254712345678;+254722000111;+12345\n"
                               "max-failures-per-hour=20\n";

    ca_fuzz_init();
    config = ca_config_load_from_data("fuzz.conf", text, sizeof(text) - 1, NULL);
    secret = g_bytes_new_static("12345678901234567890", 20);
    return 0;
}

static void
check_number(const char *sender)
{
    g_autofree char *n = ca_phone_normalize(sender);
    g_autofree char *masked = ca_phone_mask(sender, FALSE);
    g_autofree char *full = ca_phone_mask(sender, TRUE);
    gsize shown = 0;

    if (n) {
        const char *d = n[0] == '+' ? n + 1 : n;
        g_autofree char *again = ca_phone_normalize(n);

        ca_fuzz_assert(strlen(d) >= 3 && strlen(d) <= 15);
        for (const char *p = d; *p; p++)
            ca_fuzz_assert(g_ascii_isdigit(*p));
        ca_fuzz_assert(again && strcmp(again, n) == 0);
        ca_fuzz_assert(ca_phone_equal(sender, n));
    }
    ca_fuzz_assert(strlen(masked) <= 32 && strlen(full) <= 32);
    ca_fuzz_assert(g_utf8_validate(masked, -1, NULL) && g_utf8_validate(full, -1, NULL));
    for (const char *p = masked; *p; p++) {
        if (g_ascii_isdigit(*p))
            shown++;
        else
            ca_fuzz_assert(*p == '*' || (*p == '+' && p == masked));
    }
    ca_fuzz_assert(shown <= 3);
}

static void
check_parse(const char *text)
{
    CaSmsCommandText t;
    const char *detail = NULL;
    CaSmsReason r = ca_sms_command_parse(text, &t, &detail);

    ca_fuzz_assert(t.code[sizeof(t.code) - 1] == '\0');
    ca_fuzz_assert(t.command[sizeof(t.command) - 1] == '\0');
    ca_fuzz_assert(t.args[sizeof(t.args) - 1] == '\0');
    ca_fuzz_assert(t.code[0] == '\0' || strlen(t.code) == 6);
    ca_fuzz_assert(t.command[0] == '\0' || g_strv_contains(ca_sms_command_names(), t.command));
    switch (r) {
    case CA_SMS_REASON_NONE:
        ca_fuzz_assert(strlen(t.code) == 6 && t.command[0] && !t.args[0] && !detail);
        ca_fuzz_assert(strlen(text) <= CA_SMS_COMMAND_MAX_TEXT);
        ca_fuzz_assert(ca_sms_command_has_shape(text));
        break;
    case CA_SMS_REASON_MALFORMED:
    case CA_SMS_REASON_BAD_ARGS:
        ca_fuzz_assert(detail != NULL);
        break;
    case CA_SMS_REASON_UNKNOWN_COMMAND:
        ca_fuzz_assert(!t.command[0]);
        break;
    case CA_SMS_REASON_SENDER:
    case CA_SMS_REASON_LOCKED_OUT:
    case CA_SMS_REASON_WRONG_CODE:
    case CA_SMS_REASON_REPLAYED_CODE:
    case CA_SMS_REASON_STATE:
        ca_fuzz_assert(!"the parser does not give this reason");
        break;
    }
}

static void
check_guard(const char *sender, const char *text)
{
    /* A state path that can be read (absent) but never written. */
    g_autoptr(CaSmsGuard) guard =
        guard_new(config, secret, "/proc/self/nonexistent/state", FUZZ_TIME, NULL, NULL);
    CaSmsDecision d;
    g_autoptr(cJSON) audit = NULL;
    g_autofree char *json = NULL;

    ca_fuzz_assert(guard != NULL);
    ca_sms_guard_check(guard, sender, text, FUZZ_TIME, &d);
    if (!d.is_command) {
        ca_fuzz_assert(!d.accepted);
        return;
    }
    ca_fuzz_assert(ca_sms_command_has_shape(text));
    /* Nothing can be saved, so nothing is ever accepted. */
    ca_fuzz_assert(!d.accepted);
    if (d.reason == CA_SMS_REASON_STATE) {
        gsize len = 0;
        const guint8 *key = g_bytes_get_data(secret, &len);
        ca_fuzz_assert(ca_totp_verify(key, len, d.parsed.code, FUZZ_TIME, -1, NULL) == CA_TOTP_OK);
    }
    audit = ca_sms_decision_audit_json(&d, sender, FALSE);
    json = cJSON_PrintUnformatted(audit);
    ca_fuzz_assert(json != NULL);
    if (d.parsed.code[0])
        ca_fuzz_assert(strstr(json, d.parsed.code) == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *copy = g_strndup((const char *) data, size); /* stops at a NUL */
    char *nl = strchr(copy, '\n');
    const char *sender = copy;
    const char *text = "";

    if (size > 4096)
        return 0;
    if (nl) {
        *nl = '\0';
        text = nl + 1;
    }
    check_number(sender);
    check_parse(text);
    (void) ca_sms_command_has_shape(text);
    check_guard(sender, text);
    return 0;
}
