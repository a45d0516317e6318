/* Unit tests for sms-command: number normalisation and masking, the command shape and the
 * strict parser (table-driven), and the guard with an injected clock: allowed senders,
 * codes, replay (persisted), the failure budget over all senders and its persisted lockout,
 * the audit record. */
#include "autocleanups.h"
#include "error.h"
#include "sms-command.h"

#include <glib/gstdio.h>
#include <string.h>

static const char rfc_secret[] = "12345678901234567890";

/* The guard for config's [sms-commands], as remote.c builds it. */
static CaSmsGuard *
guard_new(const CaConfig *config, GBytes *key, const char *state, gint64 unix_time, char **warning,
          GError **error)
{
    CaSmsCommandSettings set;
    CaSmsGuard *guard;

    ca_sms_command_settings_load(&set, config);
    guard = ca_sms_guard_new(&set, key, state, unix_time, warning, error);
    ca_sms_command_settings_clear(&set);
    return guard;
}
#define RFC_KEY ((const guint8 *) rfc_secret), 20

/*****************************************************************************/
/* Phone numbers */

typedef struct {
    const char *in;
    const char *out; /* NULL: not a number */
} NormCase;

static const NormCase norm_cases[] = {
    {"+254712345678", "+254712345678"},
    {"+254 712 345 678", "+254712345678"},
    {"+254-712-345-678", "+254712345678"},
    {"+1 (555) 010.2030", "+15550102030"},
    {"00254712345678", "+254712345678"},
    {"0712345678", "0712345678"},
    {"712345678", "712345678"},
    {"123", "123"},
    {"+123", "+123"},
    {"12", NULL},
    {"+12", NULL},
    {"1234567890123456", NULL},  /* 16 digits */
    {"+1234567890123456", NULL}, /* 16 digits */
    {"123456789012345", "123456789012345"},
    {"0012", "0012"},           /* too short for an international number: kept national */
    {"000254712", "000254712"}, /* 00 then a 0: not an international number */
    {"MPESA", NULL},
    {"", NULL},
    {"+", NULL},
    {"++254712345678", NULL},
    {"254+712", NULL},
    {"+254712345678\n", NULL},
    {"\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93", NULL}, /* fullwidth digits */
};

static void
test_normalize(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(norm_cases); i++) {
        g_autofree char *n = ca_phone_normalize(norm_cases[i].in);
        g_autofree char *why = NULL;

        g_assert_cmpstr(n, ==, norm_cases[i].out);
        g_assert_true(ca_phone_check(norm_cases[i].in, &why) == (norm_cases[i].out != NULL));
        g_assert_true((why != NULL) == (norm_cases[i].out == NULL));
    }
    {
        g_autofree char *long_one = g_strnfill(100, '1');
        g_assert_null(ca_phone_normalize(long_one));
    }
}

static void
test_equal(void)
{
    g_assert_true(ca_phone_equal("+254712345678", "+254 712 345 678"));
    g_assert_true(ca_phone_equal("+254712345678", "00254712345678"));
    g_assert_true(ca_phone_equal("0712345678", "071-234-5678"));
    /* The safe rule: international and national forms never match. */
    g_assert_false(ca_phone_equal("+254712345678", "0712345678"));
    g_assert_false(ca_phone_equal("+254712345678", "254712345678"));
    g_assert_false(ca_phone_equal("712345678", "0712345678"));
    /* No suffix matching. */
    g_assert_false(ca_phone_equal("+254712345678", "+1254712345678"));
    g_assert_false(ca_phone_equal("MPESA", "MPESA"));
    g_assert_false(ca_phone_equal("", ""));
}

static void
test_mask(void)
{
    static const struct {
        const char *in;
        const char *masked;
        const char *personal;
    } cases[] = {
        {"+254712345678", "+*********678", "+254712345678"},
        {"0712345678", "*******678", "0712345678"},
        {"123", "123", "123"},
        {"12", "12", "12"},
        {"MPESA", "*****", "MPESA"},
        {"+1 555", "+**555", "+1 555"},
        {"", "", ""},
        {"\x01+99", "**99", "?+99"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *m = ca_phone_mask(cases[i].in, FALSE);
        g_autofree char *p = ca_phone_mask(cases[i].in, TRUE);
        g_assert_cmpstr(m, ==, cases[i].masked);
        g_assert_cmpstr(p, ==, cases[i].personal);
    }
    {
        g_autofree char *long_one = g_strnfill(100, '7');
        g_autofree char *m = ca_phone_mask(long_one, TRUE);
        g_assert_cmpuint(strlen(m), ==, 32);
    }
}

/*****************************************************************************/
/* Shape and parser */

typedef struct {
    const char *text;
    gboolean shape;
    CaSmsReason reason;
    const char *code;    /* expected on NONE / BAD_ARGS / UNKNOWN (when parsed that far) */
    const char *command; /* "" when not a known command */
} ParseCase;

static const ParseCase parse_cases[] = {
    {"123456 status", TRUE, CA_SMS_REASON_NONE, "123456", "status"},
    {"  123456   status  ", TRUE, CA_SMS_REASON_NONE, "123456", "status"},
    {"123456\tstatus\r\n", TRUE, CA_SMS_REASON_NONE, "123456", "status"},
    {"123456 Status", TRUE, CA_SMS_REASON_NONE, "123456", "status"},
    {"123456 STATUS", TRUE, CA_SMS_REASON_NONE, "123456", "status"},
    {"000000 modem-reset", TRUE, CA_SMS_REASON_NONE, "000000", "modem-reset"},
    {"999999 mqtt-reconnect", TRUE, CA_SMS_REASON_NONE, "999999", "mqtt-reconnect"},
    {"123456 reconnect", TRUE, CA_SMS_REASON_NONE, "123456", "reconnect"},
    {"123456 reboot", TRUE, CA_SMS_REASON_NONE, "123456", "reboot"},
    {"123456 status now", TRUE, CA_SMS_REASON_BAD_ARGS, "123456", "status"},
    {"123456 reboot please now", TRUE, CA_SMS_REASON_BAD_ARGS, "123456", "reboot"},
    {"123456 statu", TRUE, CA_SMS_REASON_UNKNOWN_COMMAND, "123456", ""},
    {"123456 status2", TRUE, CA_SMS_REASON_UNKNOWN_COMMAND, "123456", ""},
    {"123456 stat_us", TRUE, CA_SMS_REASON_UNKNOWN_COMMAND, "123456", ""},
    {"123456 is your code", TRUE, CA_SMS_REASON_UNKNOWN_COMMAND, "123456", ""},
    {"123456 a23456789012345678901234567890123", TRUE, CA_SMS_REASON_UNKNOWN_COMMAND, "123456", ""},
    {"12345 status", TRUE, CA_SMS_REASON_MALFORMED, "", ""},
    {"1234567 status", TRUE, CA_SMS_REASON_MALFORMED, "", ""},
    {"1500 ok", TRUE, CA_SMS_REASON_MALFORMED, "", ""},
    {"12345a status", FALSE, CA_SMS_REASON_MALFORMED, "", ""},
    {"123456status", FALSE, CA_SMS_REASON_MALFORMED, "", ""},
    {"123456", FALSE, CA_SMS_REASON_MALFORMED, "123456", ""},
    {"123456 ", FALSE, CA_SMS_REASON_MALFORMED, "123456", ""},
    {"123456 -status", FALSE, CA_SMS_REASON_UNKNOWN_COMMAND, "123456", ""},
    {"123456 5tatus", FALSE, CA_SMS_REASON_UNKNOWN_COMMAND, "123456", ""},
    {"status 123456", FALSE, CA_SMS_REASON_MALFORMED, "", ""},
    {"Hello there", FALSE, CA_SMS_REASON_MALFORMED, "", ""},
    {"", FALSE, CA_SMS_REASON_MALFORMED, "", ""},
    {"12345678901234567 status", FALSE, CA_SMS_REASON_MALFORMED, "", ""},
    {"\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93\xef\xbc\x94\xef\xbc\x95\xef\xbc\x96 status", FALSE,
     CA_SMS_REASON_MALFORMED, "", ""},
    /* Known command but not printable ASCII elsewhere, or too long. */
    {"123456 status \xc3\xa9", TRUE, CA_SMS_REASON_MALFORMED, "123456", "status"},
    {"123456 status \x01", TRUE, CA_SMS_REASON_MALFORMED, "123456", "status"},
    {"123456 status \x7f", TRUE, CA_SMS_REASON_MALFORMED, "123456", "status"},
    /* A control character inside the word makes it no command word. */
    {"123456 status\x01", TRUE, CA_SMS_REASON_UNKNOWN_COMMAND, "123456", ""},
};

static void
test_parse(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(parse_cases); i++) {
        const ParseCase *c = &parse_cases[i];
        CaSmsCommandText t;
        const char *detail = (const char *) 1;
        CaSmsReason r;

        g_test_message("case %" G_GSIZE_FORMAT ": \"%s\"", i, c->text);
        g_assert_true(ca_sms_command_has_shape(c->text) == c->shape);
        r = ca_sms_command_parse(c->text, &t, &detail);
        g_assert_cmpint(r, ==, c->reason);
        g_assert_cmpstr(t.code, ==, c->code);
        g_assert_cmpstr(t.command, ==, c->command);
        if (r == CA_SMS_REASON_NONE) {
            g_assert_null(detail);
            g_assert_cmpstr(t.args, ==, "");
        } else if (r == CA_SMS_REASON_MALFORMED || r == CA_SMS_REASON_BAD_ARGS) {
            g_assert_nonnull(detail);
        }
    }
}

static void
test_parse_lengths(void)
{
    CaSmsCommandText t;
    const char *detail;
    /* 160 bytes exactly is fine (trailing spaces), 161 is not. */
    g_autofree char *pad = g_strnfill(160 - strlen("123456 status"), ' ');
    g_autofree char *ok = g_strconcat("123456 status", pad, NULL);
    g_autofree char *too_long = g_strconcat(ok, " ", NULL);
    g_autofree char *long_args = g_strnfill(65, 'x');
    g_autofree char *args_text = g_strconcat("123456 status ", long_args, NULL);

    g_assert_cmpuint(strlen(ok), ==, 160);
    g_assert_cmpint(ca_sms_command_parse(ok, &t, &detail), ==, CA_SMS_REASON_NONE);
    g_assert_cmpint(ca_sms_command_parse(too_long, &t, &detail), ==, CA_SMS_REASON_MALFORMED);
    g_assert_cmpstr(detail, ==, "longer than 160 characters");
    g_assert_cmpint(ca_sms_command_parse(args_text, &t, &detail), ==, CA_SMS_REASON_BAD_ARGS);
    g_assert_cmpstr(detail, ==, "arguments longer than 64 characters");
    g_assert_cmpstr(t.args, ==, "");
    /* Every name in the table parses, in any case. */
    for (const char *const *n = ca_sms_command_names(); *n; n++) {
        g_autofree char *up = g_ascii_strup(*n, -1);
        g_autofree char *text = g_strconcat("654321 ", up, NULL);
        g_assert_cmpint(ca_sms_command_parse(text, &t, &detail), ==, CA_SMS_REASON_NONE);
        g_assert_cmpstr(t.command, ==, *n);
        g_assert_cmpuint(strlen(*n), <=, CA_SMS_COMMAND_MAX_NAME);
    }
}

/*****************************************************************************/
/* The guard */

#define ALLOWED1 "+254712345678"
#define ALLOWED2 "+254722000111"
#define ALLOWED3 "+15550102030"
#define STRANGER "+254799999999"

typedef struct {
    char *dir;
    char *state;
    CaConfig *config;
    GBytes *secret;
    CaSmsGuard *guard;
    gint64 unix_time;
} Fixture;

static CaConfig *
make_config(const char *extra)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *text =
        g_strdup_printf("[agent]\ndevice-id=t\n[sms-commands]\nenabled=true\n"
                        "secret-file=/etc/secret\n"
                        "allowed-senders=+254 712 345 678; " ALLOWED2 ";" ALLOWED3 "\n%s",
                        extra ? extra : "");
    CaConfig *c = ca_config_load_from_data("test.conf", text, strlen(text), &error);

    g_assert_no_error(error);
    return c;
}

static void
fixture_open(Fixture *f, const char *extra)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *warning = NULL;

    f->dir = g_dir_make_tmp("test-sms-command-XXXXXX", NULL);
    f->state = g_build_filename(f->dir, "state", "sms-commands.state", NULL);
    f->config = make_config(extra);
    f->secret = g_bytes_new_static(rfc_secret, 20);
    f->unix_time = 1111111111;
    f->guard = guard_new(f->config, f->secret, f->state, f->unix_time, &warning, &error);
    g_assert_no_error(error);
    g_assert_null(warning);
    g_assert_nonnull(f->guard);
    g_assert_cmpint(ca_sms_guard_get_last_used(f->guard), ==, -1);
}

static void
fixture_close(Fixture *f)
{
    g_autofree char *statedir = g_path_get_dirname(f->state);

    ca_sms_guard_free(f->guard);
    ca_config_unref(f->config);
    g_bytes_unref(f->secret);
    g_remove(f->state);
    g_remove(statedir); /* a directory, or the file test_guard_state_unwritable put there */
    g_assert_cmpint(g_rmdir(f->dir), ==, 0);
    g_free(f->state);
    g_free(f->dir);
}

/* "<code for step offset d from now> <command>" */
static char *
msg(const Fixture *f, gint64 d, const char *command)
{
    gint64 step = f->unix_time / CA_TOTP_STEP + d;
    g_autofree char *code = ca_hotp_format(ca_hotp(RFC_KEY, (guint64) step, 6), 6);

    return g_strconcat(code, " ", command, NULL);
}

/* A code that is wrong at every step of the window. */
static char *
wrong_msg(const Fixture *f, const char *command)
{
    for (guint v = 0;; v++) {
        g_autofree char *code = ca_hotp_format(v, 6);
        if (ca_totp_verify(RFC_KEY, code, f->unix_time, -1, NULL) == CA_TOTP_WRONG)
            return g_strconcat(code, " ", command, NULL);
    }
}

static void
check(Fixture *f, const char *sender, const char *text, CaSmsDecision *d)
{
    ca_sms_guard_check(f->guard, sender, text, f->unix_time, d);
    /* Invariants of every decision. */
    g_assert_true(!d->accepted || d->is_command);
    g_assert_true(d->accepted == (d->is_command && d->reason == CA_SMS_REASON_NONE));
}

static void
test_guard_ordinary(void)
{
    Fixture f;
    CaSmsDecision d;

    fixture_open(&f, NULL);
    /* Not a command from anyone: no shape. */
    check(&f, ALLOWED1, "Hello, how is the pump?", &d);
    g_assert_false(d.is_command);
    check(&f, STRANGER, "Your balance is 100", &d);
    g_assert_false(d.is_command);
    /* A number first is no command from a stranger ... */
    check(&f, STRANGER, "123456 is your verification code", &d);
    g_assert_false(d.is_command);
    check(&f, STRANGER, "1500 ok", &d);
    g_assert_false(d.is_command);
    check(&f, "MPESA", "123456 confirmed. Ksh100 sent", &d);
    g_assert_false(d.is_command);
    /* ... and from an allowed sender too: only a 6-digit code and a known command word
     * make a command (anything else would never reach sms/in). */
    check(&f, ALLOWED1, "1500 ok", &d);
    g_assert_false(d.is_command);
    check(&f, ALLOWED1, "10 min late", &d);
    g_assert_false(d.is_command);
    check(&f, ALLOWED1, "123456 is your code", &d);
    g_assert_false(d.is_command);
    check(&f, ALLOWED1, "12345 status", &d);
    g_assert_false(d.is_command);
    /* A 6-digit code and a known command from anyone is a command. */
    check(&f, STRANGER, "123456 status", &d);
    g_assert_true(d.is_command);
    g_assert_false(d.accepted);
    g_assert_cmpint(d.reason, ==, CA_SMS_REASON_SENDER);
    g_assert_cmpstr(d.sender, ==, STRANGER);
    check(&f, "MPESA", "123456 reboot", &d);
    g_assert_true(d.is_command);
    g_assert_cmpint(d.reason, ==, CA_SMS_REASON_SENDER);
    g_assert_cmpstr(d.sender, ==, "");
    fixture_close(&f);
}

static void
test_guard_accept_and_replay(void)
{
    Fixture f;
    CaSmsDecision d;
    g_autofree char *m0 = NULL;
    g_autofree char *mprev = NULL;
    g_autofree char *mnext = NULL;

    fixture_open(&f, NULL);
    m0 = msg(&f, 0, "Status");
    mprev = msg(&f, -1, "reconnect");
    mnext = msg(&f, 1, "modem-reset");
    /* The allowed sender in another written form. */
    check(&f, "00254712345678", m0, &d);
    g_assert_true(d.accepted);
    g_assert_cmpstr(d.parsed.command, ==, "status");
    g_assert_cmpstr(d.sender, ==, ALLOWED1);
    g_assert_cmpint(d.counter, ==, f.unix_time / 30);
    g_assert_cmpint(ca_sms_guard_get_last_used(f.guard), ==, f.unix_time / 30);
    g_assert_true(g_file_test(f.state, G_FILE_TEST_IS_REGULAR));
    /* The same message again: replay, counted. */
    check(&f, ALLOWED1, m0, &d);
    g_assert_false(d.accepted);
    g_assert_cmpint(d.reason, ==, CA_SMS_REASON_REPLAYED_CODE);
    g_assert_cmpuint(d.failures, ==, 1);
    /* From another allowed sender: still a replay (the code is per secret). */
    check(&f, ALLOWED2, m0, &d);
    g_assert_cmpint(d.reason, ==, CA_SMS_REASON_REPLAYED_CODE);
    /* The previous step's unused code is also spent. */
    check(&f, ALLOWED3, mprev, &d);
    g_assert_cmpint(d.reason, ==, CA_SMS_REASON_REPLAYED_CODE);
    /* The next step's is not. An accepted command does not clear the failures: they stay
     * for their hour, so a guesser gets no fresh budget from the operator's success. */
    check(&f, ALLOWED1, mnext, &d);
    g_assert_true(d.accepted);
    g_assert_cmpuint(d.failures, ==, 3);
    g_assert_cmpstr(d.parsed.command, ==, "modem-reset");

    /* A new guard (restart) reads the used step from the state file. */
    {
        g_autoptr(GError) error = NULL;
        g_autofree char *warning = NULL;
        g_autoptr(CaSmsGuard) again =
            guard_new(f.config, f.secret, f.state, f.unix_time, &warning, &error);
        CaSmsDecision d2;

        g_assert_no_error(error);
        g_assert_null(warning);
        g_assert_cmpint(ca_sms_guard_get_last_used(again), ==, f.unix_time / 30 + 1);
        ca_sms_guard_check(again, ALLOWED1, mnext, f.unix_time, &d2);
        g_assert_cmpint(d2.reason, ==, CA_SMS_REASON_REPLAYED_CODE);
    }
    /* Another secret has its own state, in the same file. */
    {
        g_autoptr(GBytes) other = g_bytes_new_static("abcdefghijklmnopqrst", 20);
        g_autoptr(CaSmsGuard) g2 = guard_new(f.config, other, f.state, f.unix_time, NULL, NULL);
        g_assert_cmpint(ca_sms_guard_get_last_used(g2), ==, -1);
    }
    fixture_close(&f);
}

/* Reload the guard from its state file, as a restart does. */
static void
restart(Fixture *f)
{
    g_autoptr(GError) error = NULL;

    ca_sms_guard_free(f->guard);
    f->guard = guard_new(f->config, f->secret, f->state, f->unix_time, NULL, &error);
    g_assert_no_error(error);
}

static void
test_guard_lockout(void)
{
    Fixture f;
    CaSmsDecision d;
    g_autofree char *wrong = NULL;

    /* 3 failures per hour over all senders; then 10 minutes of lockout. */
    fixture_open(&f, "lockout=600\nmax-failures-per-hour=3\n");
    wrong = wrong_msg(&f, "reboot");
    /* A forger claiming two operators' numbers: the failures count together. */
    check(&f, ALLOWED2, wrong, &d);
    g_assert_cmpint(d.reason, ==, CA_SMS_REASON_WRONG_CODE);
    g_assert_cmpuint(d.failures, ==, 1);
    check(&f, ALLOWED1, wrong, &d);
    g_assert_cmpuint(d.failures, ==, 2);
    g_assert_cmpint(d.lockout_ms, ==, 0);
    g_assert_cmpint(ca_sms_guard_locked_until(f.guard, f.unix_time), ==, 0);
    /* A restart does not reset the budget. */
    restart(&f);
    g_assert_cmpuint(ca_sms_guard_get_failures(f.guard, f.unix_time), ==, 2);
    check(&f, ALLOWED3, wrong, &d);
    g_assert_cmpuint(d.failures, ==, 3);
    g_assert_cmpint(d.lockout_ms, ==, 600 * 1000);
    g_assert_cmpint(ca_sms_guard_locked_until(f.guard, f.unix_time), ==, f.unix_time + 600);
    /* Locked out: every sender, even with the right code, which is not checked (nor spent). */
    {
        g_autofree char *good = msg(&f, 0, "status");

        check(&f, ALLOWED1, good, &d);
        g_assert_cmpint(d.reason, ==, CA_SMS_REASON_LOCKED_OUT);
        g_assert_cmpint(ca_sms_guard_get_last_used(f.guard), ==, -1);
        /* The lockout survives a restart too. */
        restart(&f);
        check(&f, ALLOWED2, good, &d);
        g_assert_cmpint(d.reason, ==, CA_SMS_REASON_LOCKED_OUT);
    }
    /* Just before the end still locked; at the end free again (and the failures, 10 minutes
     * old, still count: one more within the hour locks again at once). */
    f.unix_time += 599;
    g_assert_cmpint(ca_sms_guard_locked_until(f.guard, f.unix_time), !=, 0);
    f.unix_time += 1;
    g_assert_cmpint(ca_sms_guard_locked_until(f.guard, f.unix_time), ==, 0);
    check(&f, ALLOWED1, wrong, &d);
    g_assert_cmpint(d.reason, ==, CA_SMS_REASON_WRONG_CODE);
    g_assert_cmpint(d.lockout_ms, ==, 600 * 1000);
    /* An hour after the failures the budget is whole again. */
    f.unix_time += CA_SMS_COMMAND_RATE_WINDOW_S;
    g_assert_cmpint(ca_sms_guard_locked_until(f.guard, f.unix_time), ==, 0);
    g_assert_cmpuint(ca_sms_guard_get_failures(f.guard, f.unix_time), ==, 0);
    {
        g_autofree char *good = msg(&f, 0, "status");

        check(&f, ALLOWED2, good, &d);
        g_assert_true(d.accepted);
    }
    fixture_close(&f);
}

static void
test_guard_clock_set_back(void)
{
    Fixture f;
    CaSmsDecision d;
    g_autofree char *wrong = NULL;

    fixture_open(&f, "lockout=600\nmax-failures-per-hour=2\n");
    wrong = wrong_msg(&f, "reboot");
    check(&f, ALLOWED1, wrong, &d);
    check(&f, ALLOWED1, wrong, &d);
    g_assert_cmpint(d.lockout_ms, ==, 600 * 1000);
    /* The clock goes back a day (no RTC, a bad time source): the lockout is not stretched
     * to a day and ten minutes, and the failures are not forgotten either. */
    f.unix_time -= 86400;
    restart(&f);
    g_assert_cmpint(ca_sms_guard_locked_until(f.guard, f.unix_time), ==, f.unix_time + 600);
    g_assert_cmpuint(ca_sms_guard_get_failures(f.guard, f.unix_time), ==, 2);
    fixture_close(&f);
}

static void
test_guard_failures_not_counted(void)
{
    Fixture f;
    CaSmsDecision d;
    g_autofree char *wrong = NULL;

    fixture_open(&f, "max-failures-per-hour=2\n");
    wrong = wrong_msg(&f, "status");
    /* Parse errors do not check the code: never a failure. */
    for (int i = 0; i < 5; i++) {
        check(&f, ALLOWED1, "123456 status now", &d);
        g_assert_true(d.is_command);
        g_assert_cmpint(d.reason, ==, CA_SMS_REASON_BAD_ARGS);
        g_assert_cmpuint(d.failures, ==, 0);
        check(&f, ALLOWED1, "123456 status \x01", &d);
        g_assert_true(d.is_command);
        g_assert_cmpint(d.reason, ==, CA_SMS_REASON_MALFORMED);
        g_assert_cmpuint(d.failures, ==, 0);
    }
    g_assert_cmpint(ca_sms_guard_locked_until(f.guard, f.unix_time), ==, 0);
    /* Strangers' codes are never checked, however often they try: no lever on the budget. */
    for (int i = 0; i < 50; i++) {
        check(&f, STRANGER, wrong, &d);
        g_assert_cmpint(d.reason, ==, CA_SMS_REASON_SENDER);
        g_assert_cmpuint(d.failures, ==, 0);
    }
    check(&f, ALLOWED1, wrong, &d);
    g_assert_cmpuint(d.failures, ==, 1);
    fixture_close(&f);
}

static void
test_guard_national_senders_refused(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *why = NULL;
    const char *text = "[agent]\ndevice-id=t\n[sms-commands]\nenabled=true\n"
                       "secret-file=/etc/secret\nallowed-senders=+254712345678; 0722000111\n";
    g_autoptr(CaConfig) c = ca_config_load_from_data("test.conf", text, strlen(text), &error);

    /* At config load, with the reason. */
    g_assert_null(c);
    g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG);
    g_assert_nonnull(strstr(error->message, "allowed-senders"));
    g_assert_nonnull(strstr(error->message, "international"));
    g_assert_true(ca_phone_check_international("0044 20 7946 0000", &why));
    g_assert_null(why);
    g_assert_false(ca_phone_check_international("0722000111", &why));
    g_clear_pointer(&why, g_free);
    g_assert_false(ca_phone_check_international("MPESA", &why));
}

static void
test_guard_state_unwritable(void)
{
    Fixture f;
    CaSmsDecision d;
    g_autofree char *statedir = NULL;
    g_autofree char *good = NULL;

    fixture_open(&f, NULL);
    /* The state directory turns into a regular file: saving can never work. */
    statedir = g_path_get_dirname(f.state);
    g_assert_true(g_file_set_contents(statedir, "x", 1, NULL));
    good = msg(&f, 0, "reboot");
    check(&f, ALLOWED1, good, &d);
    g_assert_true(d.is_command);
    g_assert_false(d.accepted);
    g_assert_cmpint(d.reason, ==, CA_SMS_REASON_STATE);
    g_assert_nonnull(d.detail);
    /* The code is spent in memory all the same. */
    check(&f, ALLOWED1, good, &d);
    g_assert_cmpint(d.reason, ==, CA_SMS_REASON_REPLAYED_CODE);
    fixture_close(&f);

    /* A state path that cannot even be read (not a directory on the way): fail closed. */
    {
        g_autoptr(GError) error = NULL;
        g_autofree char *warning = NULL;
        g_autoptr(GBytes) secret = g_bytes_new_static(rfc_secret, 20);
        g_autoptr(CaConfig) c = make_config(NULL);
        g_autofree char *dir = g_dir_make_tmp("test-sms-command-XXXXXX", NULL);
        g_autofree char *file = g_build_filename(dir, "file", NULL);
        g_autofree char *below = g_build_filename(file, "state", NULL);
        CaSmsGuard *g;

        g_assert_true(g_file_set_contents(file, "x", 1, NULL));
        g = guard_new(c, secret, below, 1111111111, &warning, &error);
        g_assert_no_error(error);
        g_assert_nonnull(warning);
        g_assert_cmpint(ca_sms_guard_get_last_used(g), ==, 1111111111 / 30 + 1);
        ca_sms_guard_free(g);
        g_remove(file);
        g_rmdir(dir);
    }
}

static void
test_guard_state_corrupt(void)
{
    Fixture f;
    CaSmsDecision d;
    g_autoptr(GError) error = NULL;
    g_autofree char *warning = NULL;
    g_autofree char *statedir = NULL;
    g_autofree char *now = NULL;
    g_autofree char *later = NULL;
    g_autofree char *id = NULL;
    g_autofree char *content = NULL;
    CaSmsGuard *g;

    fixture_open(&f, NULL);
    statedir = g_path_get_dirname(f.state);
    g_assert_cmpint(g_mkdir_with_parents(statedir, 0700), ==, 0);
    id = ca_totp_secret_id(f.secret);
    content = g_strdup_printf("[totp-used]\n%s=banana\n", id);
    g_assert_true(g_file_set_contents(f.state, content, -1, NULL));
    g = guard_new(f.config, f.secret, f.state, f.unix_time, &warning, &error);
    g_assert_no_error(error);
    g_assert_nonnull(warning);
    g_assert_cmpint(ca_sms_guard_get_last_used(g), ==, f.unix_time / 30 + 1);
    now = msg(&f, 0, "status");
    ca_sms_guard_check(g, ALLOWED1, now, f.unix_time, &d);
    g_assert_cmpint(d.reason, ==, CA_SMS_REASON_REPLAYED_CODE);
    /* Two steps later codes work again. */
    f.unix_time += 60;
    later = msg(&f, 0, "status");
    ca_sms_guard_check(g, ALLOWED1, later, f.unix_time, &d);
    g_assert_true(d.accepted);
    ca_sms_guard_free(g);
    g_clear_pointer(&warning, g_free);

    /* Not a key file at all. */
    g_assert_true(g_file_set_contents(f.state, "\x01\x02garbage", -1, NULL));
    g = guard_new(f.config, f.secret, f.state, f.unix_time, &warning, &error);
    g_assert_no_error(error);
    g_assert_nonnull(warning);
    g_assert_cmpint(ca_sms_guard_get_last_used(g), ==, f.unix_time / 30 + 1);
    ca_sms_guard_free(g);
    fixture_close(&f);
}

static void
test_guard_config(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GString) senders = g_string_new(NULL);
    g_autoptr(GBytes) secret = g_bytes_new_static(rfc_secret, 20);
    g_autofree char *text = NULL;
    g_autoptr(CaConfig) c = NULL;
    CaSmsGuard *g;

    for (int i = 0; i < CA_SMS_COMMAND_MAX_SENDERS + 1; i++)
        g_string_append_printf(senders, "+2547000000%02d;", i);
    text = g_strdup_printf("[agent]\ndevice-id=t\n[sms-commands]\nenabled=true\n"
                           "secret-file=/etc/s\nallowed-senders=%s\n",
                           senders->str);
    c = ca_config_load_from_data("t.conf", text, strlen(text), &error);
    g_assert_no_error(error);
    g = guard_new(c, secret, "/nonexistent/state", 0, NULL, &error);
    g_assert_null(g);
    g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG);
}

/* The config table's cross checks and validators for the new groups. */
static void
test_config_keys(void)
{
    static const struct {
        const char *text;
        const char *problem; /* NULL: valid */
    } cases[] = {
        {"[sms-commands]\nenabled=false\n", NULL},
        {"[sms-commands]\nenabled=true\nallowed-senders=+254712345678\n",
         "[sms-commands] secret-file: required when enabled=true"},
        {"[sms-commands]\nenabled=true\nsecret-file=/etc/s\n",
         "[sms-commands] allowed-senders: required when enabled=true"},
        {"[sms-commands]\nallowed-senders=+254712345678;MPESA\n", "MPESA"},
        {"[sms-commands]\nmax-failures-per-hour=0\n", "max-failures-per-hour"},
        {"[sms-commands]\nlockout=0\n", "lockout"},
        {"[sms-commands]\nallowed-senders=+254712345678;0722000111\n", "0722000111"},
        {"[sms-alerts]\nenabled=true\n", "[sms-alerts] numbers: required when enabled=true"},
        {"[sms-alerts]\nenabled=true\nnumbers=+254712345678; 0722 000 111\n", NULL},
        {"[sms-alerts]\ndata-down-after=5\n", "data-down-after"},
        {"[commands]\nallow-reboot=maybe\n", "allow-reboot"},
        {"[commands]\nreboot-command=\n", "reboot-command"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *text = g_strconcat("[agent]\ndevice-id=t\n", cases[i].text, NULL);
        g_autoptr(CaConfig) c = ca_config_load_from_data("t.conf", text, strlen(text), &error);

        if (!cases[i].problem) {
            g_assert_no_error(error);
            continue;
        }
        g_assert_null(c);
        g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG);
        g_assert_nonnull(strstr(error->message, cases[i].problem));
    }
    {
        g_autoptr(CaConfig) c = make_config(NULL);
        const char *const *list = ca_config_get_list(c, "sms-commands", "allowed-senders");
        g_assert_cmpuint(g_strv_length((char **) list), ==, 3);
        g_assert_false(ca_config_get_bool(c, "commands", "allow-reboot"));
        g_assert_cmpint(ca_config_get_int(c, "sms-commands", "max-failures-per-hour"), ==, 10);
        g_assert_cmpint(ca_config_get_int(c, "sms-commands", "lockout"), ==, 3600);
        g_assert_cmpint(ca_config_get_int(c, "sms-alerts", "data-down-after"), ==, 600);
    }
}

static void
test_audit(void)
{
    CaSmsDecision d = {.is_command = TRUE,
                       .accepted = FALSE,
                       .reason = CA_SMS_REASON_WRONG_CODE,
                       .failures = 3,
                       .lockout_ms = 900000};
    g_autoptr(cJSON) o = NULL;
    g_autofree char *text = NULL;

    memcpy(d.parsed.code, "123456", 7);
    memcpy(d.parsed.command, "reboot", 7);
    o = ca_sms_decision_audit_json(&d, "+254712345678", FALSE);
    text = cJSON_PrintUnformatted(o);
    g_assert_cmpstr(text, ==,
                    "{\"from\":\"+*********678\",\"outcome\":\"rejected\",\"command\":\"reboot\","
                    "\"reason\":\"wrong code\",\"failures\":3,\"lockout\":900}");
    /* Never the code. */
    g_assert_null(strstr(text, "123456"));
    g_clear_pointer(&o, cJSON_Delete);
    g_clear_pointer(&text, g_free);

    memset(&d, 0, sizeof d);
    d.is_command = TRUE;
    d.reason = CA_SMS_REASON_MALFORMED;
    d.detail = "the code must be 6 digits";
    o = ca_sms_decision_audit_json(&d, "+254712345678", TRUE);
    text = cJSON_PrintUnformatted(o);
    g_assert_cmpstr(text, ==,
                    "{\"from\":\"+254712345678\",\"outcome\":\"rejected\",\"command\":null,"
                    "\"reason\":\"malformed\",\"detail\":\"the code must be 6 digits\","
                    "\"failures\":0}");
    g_clear_pointer(&o, cJSON_Delete);
    g_clear_pointer(&text, g_free);

    memset(&d, 0, sizeof d);
    d.is_command = TRUE;
    d.accepted = TRUE;
    memcpy(d.parsed.command, "status", 7);
    o = ca_sms_decision_audit_json(&d, "0722000111", FALSE);
    text = cJSON_PrintUnformatted(o);
    g_assert_cmpstr(text, ==,
                    "{\"from\":\"*******111\",\"outcome\":\"accepted\",\"command\":\"status\","
                    "\"failures\":0}");
    for (int r = CA_SMS_REASON_NONE; r <= CA_SMS_REASON_STATE; r++)
        g_assert_cmpstr(ca_sms_reason_to_string(r), !=, "?");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sms-command/phone/normalize", test_normalize);
    g_test_add_func("/sms-command/phone/equal", test_equal);
    g_test_add_func("/sms-command/phone/mask", test_mask);
    g_test_add_func("/sms-command/parse/table", test_parse);
    g_test_add_func("/sms-command/parse/lengths", test_parse_lengths);
    g_test_add_func("/sms-command/guard/ordinary", test_guard_ordinary);
    g_test_add_func("/sms-command/guard/accept-and-replay", test_guard_accept_and_replay);
    g_test_add_func("/sms-command/guard/lockout", test_guard_lockout);
    g_test_add_func("/sms-command/guard/failures-not-counted", test_guard_failures_not_counted);
    g_test_add_func("/sms-command/guard/clock-set-back", test_guard_clock_set_back);
    g_test_add_func("/sms-command/guard/national-senders-refused",
                    test_guard_national_senders_refused);
    g_test_add_func("/sms-command/guard/state-unwritable", test_guard_state_unwritable);
    g_test_add_func("/sms-command/guard/state-corrupt", test_guard_state_corrupt);
    g_test_add_func("/sms-command/guard/config", test_guard_config);
    g_test_add_func("/sms-command/config-keys", test_config_keys);
    g_test_add_func("/sms-command/audit", test_audit);
    return g_test_run();
}
