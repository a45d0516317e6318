/* Unit tests for status-file.c: the document's top level, parsing with bounds (size,
 * format, garbage), freshness at its edges, redaction of personal data (and only of it),
 * and the text summary of a full document and of an empty one. */
#include "status-file.h"

#include "autocleanups.h"
#include "error.h"
#include "watchdog.h"

#include <string.h>

#define SEC G_USEC_PER_SEC
/* 2026-12-06T10:00:00Z */
#define T0 (G_GINT64_CONSTANT(1796551200) * SEC)

static const char full_doc[] =
    "{\"format\":1,\"version\":\"1.2.3\",\"pid\":4242,\"device_id\":\"dev1\","
    "\"started_at\":\"2026-12-06T09:00:00Z\",\"updated_at\":\"2026-12-06T10:00:00Z\","
    "\"refresh\":30,"
    "\"mqtt\":{\"state\":\"connected\",\"since\":\"2026-12-06T09:30:00Z\",\"queue\":3,"
    "\"dropped\":1,\"broker\":\"broker.example:8883\"},"
    "\"link\":{\"active\":\"wan1\",\"forced\":null,\"uplinks\":{"
    "\"wan1\":{\"state\":\"up\",\"reason\":\"probes ok\",\"type\":\"wired\",\"priority\":10,"
    "\"interface\":\"eth1\",\"rtt_ms\":1.5,\"probes\":[{\"target\":\"icmp:1.1.1.1\",\"ok\":true},"
    "{\"target\":\"dns:9.9.9.9\",\"ok\":false}],\"since\":\"2026-12-06T09:59:00Z\"},"
    "\"cellular\":{\"state\":\"standby\",\"reason\":\"backup\",\"type\":\"cellular\","
    "\"priority\":200,\"interface\":null,\"probes\":[],\"watchdog\":{\"last_step\":"
    "\"modem-reset\",\"steps\":2}}}},"
    "\"modem\":{\"modem\":{\"state\":\"registered\",\"failed_reason\":null,\"manufacturer\":"
    "\"SIMCOM\",\"model\":\"A7670E\",\"imei\":\"861234567890124\",\"access_tech\":[\"lte\"],"
    "\"signal_quality\":70},\"signal\":{\"rssi\":-67,\"rsrp\":-95,\"rsrq\":-10,\"snr\":12.5},"
    "\"network\":{\"registration\":\"home\",\"operator_code\":\"63902\",\"operator_name\":"
    "\"Safaricom\"},\"sim\":{\"iccid\":\"8925402000000000001\",\"imsi\":\"639020000000001\"},"
    "\"bearer\":{\"connected\":false}},"
    "\"sms\":{\"enabled\":true,\"queued\":2,\"received_waiting\":1,\"last_error\":"
    "\"failed: +CMS ERROR: 500\"},"
    "\"watchdog\":{\"enabled\":true,\"steps\":{\"reactivate\":{\"enabled\":true,\"used\":4,"
    "\"budget\":null,\"remaining\":null},\"modem-reset\":{\"enabled\":true,\"used\":2,"
    "\"budget\":6,\"remaining\":4},\"reboot\":{\"enabled\":false,\"used\":0,\"budget\":2,"
    "\"remaining\":2}}},"
    "\"usage\":{\"iccid\":\"8925402000000000001\",\"plan\":\"iot\",\"cycle_start\":"
    "\"2026-12-01T03:00:00Z\",\"cycle_end\":\"2027-01-01T03:00:00Z\",\"total_bytes\":"
    "41943040,\"billable_estimate_bytes\":44040192,\"limit_bytes\":524288000,\"percent\":"
    "8.4,\"state\":\"ok\",\"action\":\"none\"},"
    "\"events\":[{\"ts\":\"2026-12-06T09:59:00Z\",\"type\":\"uplink-switch\",\"from\":\"cellular\","
    "\"to\":\"wan1\"},{\"ts\":\"2026-12-06T09:58:00Z\",\"type\":\"sms-alert\",\"to\":"
    "\"+254700000077\",\"numbers\":[\"+254700000077\"],\"text\":\"secret words\"}]}";

static cJSON *
parse_ok(const char *text)
{
    g_autoptr(GError) error = NULL;
    cJSON *doc = ca_status_parse(text, strlen(text), &error);

    g_assert_no_error(error);
    g_assert_nonnull(doc);
    return doc;
}

static void
test_new(void)
{
    g_autoptr(cJSON) doc = ca_status_new("1.2.3", 77, "dev1", T0 - 3600 * (gint64) SEC, T0, 30);
    g_autofree char *text = cJSON_PrintUnformatted(doc);
    g_autoptr(cJSON) back = parse_ok(text);
    g_autoptr(cJSON) m = ca_status_mqtt_json(FALSE, 0, 5, 7, "host", 1883);
    gint64 age = -1;

    g_assert_cmpstr(text, ==,
                    "{\"format\":1,\"version\":\"1.2.3\",\"pid\":77,\"device_id\":\"dev1\","
                    "\"started_at\":\"2026-12-06T09:00:00Z\",\"updated_at\":"
                    "\"2026-12-06T10:00:00Z\",\"refresh\":30}");
    g_assert_cmpint(ca_status_check_freshness(back, T0, &age), ==, CA_STATUS_FRESH);
    g_assert_cmpint(age, ==, 0);
    g_assert_cmpstr(cJSON_GetStringValue(cJSON_GetObjectItem(m, "state")), ==, "disconnected");
    g_assert_true(cJSON_IsNull(cJSON_GetObjectItem(m, "since")));
    g_assert_cmpstr(cJSON_GetStringValue(cJSON_GetObjectItem(m, "broker")), ==, "host:1883");
}

typedef struct {
    const char *name;
    const char *text;
    const char *error; /* substring of the message, NULL: parses */
} ParseCase;

static const ParseCase parse_cases[] = {
    {"minimal", "{\"format\":1}", NULL},
    {"empty", "", "not valid JSON"},
    {"garbage", "\x01\x02status", "not valid JSON"},
    {"array", "[1,2]", "not a status document"},
    {"no-format", "{\"version\":\"1\"}", "not a status document"},
    {"format-string", "{\"format\":\"1\"}", "not a status document"},
    {"newer-format", "{\"format\":2}", "format 2 is not known"},
    {"zero-format", "{\"format\":0}", "format 0 is not known"},
    {"trailing", "{\"format\":1} x", "payload"},
    {"truncated", "{\"format\":1,\"mqtt\":{", "not valid JSON"},
};

static void
test_parse(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(parse_cases); i++) {
        const ParseCase *c = &parse_cases[i];
        g_autoptr(GError) error = NULL;
        g_autoptr(cJSON) doc = ca_status_parse(c->text, strlen(c->text), &error);

        g_test_message("case %s", c->name);
        if (!c->error) {
            g_assert_no_error(error);
            g_assert_nonnull(doc);
        } else {
            g_assert_null(doc);
            g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT);
            g_assert_nonnull(strstr(error->message, c->error));
        }
    }
}

static void
test_parse_too_large(void)
{
    gsize len = CA_STATUS_MAX_BYTES + 1;
    g_autofree char *big = g_malloc(len);
    g_autoptr(GError) error = NULL;
    g_autoptr(cJSON) doc = NULL;

    memset(big, ' ', len);
    big[0] = '{';
    doc = ca_status_parse(big, len, &error);
    g_assert_null(doc);
    g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT);
    g_assert_nonnull(strstr(error->message, "too large"));
}

typedef struct {
    const char *doc;
    gint64 now; /* seconds after T0 */
    CaStatusFreshness want;
} FreshCase;

#define DOC_AT_T0(refresh)                                                                         \
    "{\"format\":1,\"updated_at\":\"2026-12-06T10:00:00Z\",\"refresh\":" #refresh "}"

static const FreshCase fresh_cases[] = {
    {DOC_AT_T0(30), 0, CA_STATUS_FRESH},
    {DOC_AT_T0(30), 30, CA_STATUS_FRESH},
    /* One refresh missed is no alarm: 2 * refresh + 5 s of grace. */
    {DOC_AT_T0(30), 65, CA_STATUS_FRESH},
    {DOC_AT_T0(30), 66, CA_STATUS_STALE},
    {DOC_AT_T0(30), 3600, CA_STATUS_STALE},
    {DOC_AT_T0(5), 16, CA_STATUS_STALE},
    /* From the future beyond the grace: the clock was set back; no proof of life. */
    {DOC_AT_T0(30), -5, CA_STATUS_FRESH},
    {DOC_AT_T0(30), -6, CA_STATUS_STALE},
    {"{\"format\":1,\"refresh\":30}", 0, CA_STATUS_INVALID},
    {"{\"format\":1,\"updated_at\":\"yesterday\",\"refresh\":30}", 0, CA_STATUS_INVALID},
    {"{\"format\":1,\"updated_at\":\"2026-12-06T10:00:00Z\"}", 0, CA_STATUS_INVALID},
    {DOC_AT_T0(0), 0, CA_STATUS_INVALID},
    {DOC_AT_T0(100000), 0, CA_STATUS_INVALID},
};

static void
test_freshness(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(fresh_cases); i++) {
        const FreshCase *c = &fresh_cases[i];
        g_autoptr(cJSON) doc = parse_ok(c->doc);
        gint64 age = G_MININT64;
        CaStatusFreshness f = ca_status_check_freshness(doc, T0 + c->now * SEC, &age);

        g_test_message("case %" G_GSIZE_FORMAT ": %s", i, ca_status_freshness_to_string(f));
        g_assert_cmpint(f, ==, c->want);
        if (c->want != CA_STATUS_INVALID)
            g_assert_cmpint(age, ==, c->now);
    }
}

static void
test_redact(void)
{
    g_autoptr(cJSON) doc = parse_ok(full_doc);
    g_autofree char *text = NULL;

    ca_status_redact(doc);
    text = cJSON_PrintUnformatted(doc);
    /* Personal data gone ... */
    g_assert_null(strstr(text, "861234567890124"));
    g_assert_null(strstr(text, "8925402000000000001"));
    g_assert_null(strstr(text, "639020000000001"));
    g_assert_null(strstr(text, "+254700000077"));
    g_assert_null(strstr(text, "secret words"));
    /* ... the rest kept: an uplink switch's from/to are uplink names, not numbers. */
    g_assert_nonnull(strstr(text, "\"from\":\"cellular\",\"to\":\"wan1\""));
    g_assert_nonnull(strstr(text, "\"imei\":\"###\""));
    g_assert_nonnull(strstr(text, "\"operator_code\":\"63902\""));
    g_assert_nonnull(strstr(text, "\"failed_reason\":null"));
    g_assert_nonnull(strstr(text, "Safaricom"));
}

static void
test_text_full(void)
{
    g_autoptr(cJSON) doc = parse_ok(full_doc);
    g_autofree char *text = NULL;
    static const char *const want[] = {
        "  Agent    |            version: 1.2.3\n",
        "|                pid: 4242\n",
        "|            started: 2026-12-06T09:00:00Z (up 1h 00m)\n",
        "|            updated: 2026-12-06T10:00:00Z (0 s ago, every 30 s at least)\n",
        "  Broker   |             broker: broker.example:8883\n",
        "|              state: connected\n",
        "|              since: 2026-12-06T09:30:00Z (for 30m 00s)\n",
        "|        queue depth: 3 (dropped 1)\n",
        "  Uplinks  |      default route: wan1\n",
        "|               wan1: up (carries the default route)\n",
        "|               type: wired, priority 10, interface eth1\n",
        "|             reason: probes ok\n",
        "|             probes: 1/2 ok, rtt 1.5 ms\n",
        "|           cellular: standby\n",
        "|             probes: none yet, rtt --\n",
        "|           watchdog: last step modem-reset, 2 steps\n",
        "|              model: SIMCOM A7670E\n",
        "|              state: registered\n",
        "|       registration: home\n",
        "|           operator: Safaricom (63902)\n",
        "|        access tech: lte\n",
        "|             signal: 70 % (rssi -67 dBm, rsrp -95 dBm, rsrq -10 dB, snr 12.5 dB)\n",
        "|    waiting to send: 2\n",
        "|   received waiting: 1\n",
        "|         last error: failed: +CMS ERROR: 500\n",
        "|         reactivate: 4 in 24 h (no budget)\n",
        "|        modem-reset: 2 used of 6 in 24 h\n",
        "|             reboot: off\n",
        "  Usage    |               plan: iot\n",
        "|              cycle: 2026-12-01T03:00:00Z to 2027-01-01T03:00:00Z\n",
        "|               used: 42.0 MiB of 500.0 MiB (8.4 %), measured 40.0 MiB\n",
        "|              state: ok, action none\n",
    };

    text = ca_status_format_text(doc, CA_STATUS_FRESH, 0, T0);
    for (gsize i = 0; i < G_N_ELEMENTS(want); i++) {
        if (!strstr(text, want[i]))
            g_error("missing %s in:\n%s", want[i], text);
    }
    /* The order of the sections, as documented. */
    g_assert_true(strstr(text, "Agent") < strstr(text, "Broker"));
    g_assert_true(strstr(text, "Broker") < strstr(text, "Uplinks"));
    g_assert_true(strstr(text, "Uplinks") < strstr(text, "Modem"));
    g_assert_true(strstr(text, "Modem") < strstr(text, "SMS"));
    g_assert_true(strstr(text, "SMS") < strstr(text, "Watchdog"));
    g_assert_true(strstr(text, "Watchdog") < strstr(text, "Usage"));
}

static void
test_text_stale_and_empty(void)
{
    g_autoptr(cJSON) doc = parse_ok(DOC_AT_T0(30));
    g_autofree char *stale = ca_status_format_text(doc, CA_STATUS_STALE, 600, T0 + 600 * SEC);
    g_autoptr(cJSON) absent = parse_ok("{\"format\":1,\"modem\":{\"modem\":{\"state\":"
                                       "\"absent\"}},\"sms\":{\"enabled\":false},"
                                       "\"watchdog\":{\"enabled\":false}}");
    g_autofree char *text = ca_status_format_text(absent, CA_STATUS_INVALID, -1, T0);

    g_assert_nonnull(strstr(stale, "STALE, 600 s old though refreshed every 30 s"));
    /* Sections without data say so; nothing crashes on a missing member. */
    g_assert_nonnull(strstr(stale, "Broker   |              state: unknown\n"));
    g_assert_nonnull(strstr(stale, "Modem    |              state: unknown\n"));
    g_assert_nonnull(strstr(text, "state: absent (no modem)"));
    g_assert_nonnull(strstr(text, "SMS      |             bridge: off"));
    g_assert_nonnull(strstr(text, "Watchdog |              state: disabled"));
    g_assert_nonnull(strstr(text, "updated: unknown"));
    g_assert_nonnull(strstr(text, "state: not counted"));
}

/* The watchdog's budgets as the status file shows them. */
static void
test_watchdog_budgets(void)
{
    CaWdConfig c = {0};
    g_autoptr(CaWatchdog) wd = NULL;
    g_autoptr(cJSON) j = NULL;
    g_autofree char *text = NULL;

    c.enabled = TRUE;
    c.step_enabled[CA_WD_STEP_REACTIVATE] = TRUE;
    c.step_enabled[CA_WD_STEP_MODEM_RESET] = TRUE;
    c.budget[CA_WD_STEP_MODEM_RESET] = 6;
    c.budget[CA_WD_STEP_REBOOT] = 2;
    wd = ca_watchdog_new(&c, NULL);
    g_assert_true(ca_watchdog_take_budget(wd, CA_WD_STEP_MODEM_RESET, 1000, 1000));
    j = ca_watchdog_budgets_json(wd, 2000);
    text = cJSON_PrintUnformatted(j);
    g_assert_cmpstr(
        text, ==,
        "{\"enabled\":true,\"steps\":{"
        "\"reactivate\":{\"enabled\":true,\"used\":0,\"budget\":null,\"remaining\":null},"
        "\"modem-reset\":{\"enabled\":true,\"used\":1,\"budget\":6,\"remaining\":5},"
        "\"power-cycle\":{\"enabled\":false,\"used\":0,\"budget\":0,\"remaining\":0},"
        "\"reboot\":{\"enabled\":false,\"used\":0,\"budget\":2,\"remaining\":2}}}");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/status-file/new", test_new);
    g_test_add_func("/status-file/parse", test_parse);
    g_test_add_func("/status-file/parse/too-large", test_parse_too_large);
    g_test_add_func("/status-file/freshness", test_freshness);
    g_test_add_func("/status-file/redact", test_redact);
    g_test_add_func("/status-file/text/full", test_text_full);
    g_test_add_func("/status-file/text/stale-and-empty", test_text_stale_and_empty);
    g_test_add_func("/status-file/watchdog-budgets", test_watchdog_budgets);
    return g_test_run();
}
