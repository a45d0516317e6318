/* Unit tests for command-set: the table, args schemas, the event record, byte and status
 * texts (one SMS, GSM-safe), SMS replies built from encoded results. */
#include "autocleanups.h"
#include "command-set.h"
#include "commands.h"
#include "error.h"

#include <string.h>

static void
test_table(void)
{
    static const char *const changing[] = {
        "reconnect", "modem-reset",    "sms-resync",   "reload",         "uplink",   "log-level",
        "reboot",    "mqtt-reconnect", "usage-adjust", "usage-override", "diagnose", NULL};
    static const char *const contract[] = {"telemetry",  "reconnect", "modem-reset",
                                           "sms-resync", "reload",    NULL};
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

    for (const CaCommandInfo *c = ca_cmdset_table(); c->name; c++) {
        g_assert_true(ca_command_name_is_valid(c->name));
        g_assert_false(g_hash_table_contains(seen, c->name));
        g_hash_table_add(seen, (gpointer) c->name);
        g_assert_true(c->changes == g_strv_contains(changing, c->name));
        g_assert_nonnull(c->doc);
        g_assert_true(ca_cmdset_lookup(c->name) == c);
    }
    /* docs/commands.md names these at least. */
    for (const char *const *n = contract; *n; n++)
        g_assert_nonnull(ca_cmdset_lookup(*n));
    g_assert_null(ca_cmdset_lookup("echo"));
}

typedef struct {
    const char *name;
    const char *args;  /* JSON or NULL */
    const char *error; /* substring of the error, NULL: accepted */
} ArgsCase;

static const ArgsCase args_cases[] = {
    {"status", NULL, NULL},
    {"status", "{}", NULL},
    {"status", "{\"verbose\":true}", "args.verbose: unknown argument"},
    {"modem-reset", "{\"now\":1}", "args.now: unknown argument"},
    {"telemetry", NULL, NULL},
    {"reboot", "{\"force\":true}", "args.force: unknown argument"},
    {"log-level", NULL, "args.level: missing"},
    {"log-level", "{}", "args.level: missing"},
    {"log-level", "{\"level\":\"debug\"}", NULL},
    {"log-level", "{\"level\":\"error\"}", NULL},
    {"log-level", "{\"level\":\"DEBUG\"}", "args.level: must be"},
    {"log-level", "{\"level\":\"trace\"}", "args.level: must be"},
    {"log-level", "{\"level\":3}", "args.level: must be a string"},
    {"log-level", "{\"level\":\"info\",\"x\":1}", "args.x: unknown argument"},
    {"usage", NULL, NULL},
    {"usage", "{\"x\":1}", "args.x: unknown argument"},
    {"usage-adjust", NULL, "args.bytes: missing"},
    {"usage-adjust", "{\"bytes\":0}", NULL},
    {"usage-adjust", "{\"bytes\":123456789012}", NULL},
    {"usage-adjust", "{\"bytes\":-1}", "args.bytes: must be"},
    {"usage-adjust", "{\"bytes\":1.5}", "args.bytes: must be"},
    {"usage-adjust", "{\"bytes\":1e300}", "args.bytes: must be"},
    {"usage-adjust", "{\"bytes\":\"5\"}", "args.bytes: must be"},
    {"usage-adjust", "{\"bytes\":5,\"mb\":1}", "args.mb: unknown argument"},
    {"usage-override", "{\"until\":\"2027-01-01T00:00:00Z\"}", NULL},
    {"usage-override", "{\"until\":\"2027-01-01T03:00:00+03:00\"}", NULL},
    {"usage-override", "{\"until\":null}", NULL},
    {"usage-override", "{}", "args.until: missing"},
    {"usage-override", "{\"until\":\"tomorrow\"}", "args.until: must be"},
    {"usage-override", "{\"until\":\"2027-01-01T00:00:00\"}", "args.until: must be"},
    {"usage-override", "{\"until\":5}", "args.until: must be"},
    {"uplink", "{\"uplink\":\"auto\"}", NULL},
    {"uplink", "{\"uplink\":\"wired\"}", NULL},
    {"uplink", "{\"uplink\":\"cellular-2.backup_1\"}", NULL},
    {"uplink", "{\"uplink\":\"\"}", "args.uplink: must be"},
    {"uplink", "{\"uplink\":\"a/b\"}", "args.uplink: must be"},
    {"uplink", "{\"uplink\":null}", "args.uplink: must be a string"},
    {"uplink", "{}", "args.uplink: missing"},
    {"uplink", NULL, "args.uplink: missing"},
    {"diagnose", NULL, NULL},
    {"diagnose", "{}", NULL},
    {"diagnose", "{\"force\":true}", NULL},
    {"diagnose", "{\"force\":false}", NULL},
    {"diagnose", "{\"force\":1}", "args.force: must be true or false"},
    {"diagnose", "{\"force\":\"yes\"}", "args.force: must be true or false"},
    {"diagnose", "{\"journal\":true}", "args.journal: unknown argument"},
    /* Not in the table: not checked here. */
    {"echo", "{\"anything\":[1,2]}", NULL},
};

static void
test_args(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(args_cases); i++) {
        const ArgsCase *c = &args_cases[i];
        g_autoptr(cJSON) args = c->args ? cJSON_Parse(c->args) : NULL;
        g_autoptr(GError) error = NULL;
        gboolean ok = ca_cmdset_check_args(c->name, args, &error);

        g_test_message("%s %s", c->name, c->args ? c->args : "(none)");
        if (!c->error) {
            g_assert_no_error(error);
            g_assert_true(ok);
        } else {
            g_assert_false(ok);
            g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT);
            g_assert_nonnull(strstr(error->message, c->error));
        }
    }
    /* A hostile member name is shortened and cleaned in the message. */
    {
        g_autofree char *long_name = g_strnfill(200, 'q');
        g_autoptr(cJSON) args = cJSON_CreateObject();
        g_autoptr(GError) error = NULL;

        cJSON_AddNumberToObject(args, long_name, 1);
        g_assert_false(ca_cmdset_check_args("status", args, &error));
        g_assert_cmpuint(strlen(error->message), <, 80);
    }
}

static void
test_event(void)
{
    g_autoptr(cJSON) result = cJSON_Parse("{\"level\":\"debug\",\"previous\":\"info\"}");
    g_autoptr(cJSON) a = ca_cmdset_event_json("log-level", "sms", "sms-42", TRUE, result, NULL);
    g_autoptr(cJSON) b =
        ca_cmdset_event_json("reboot", "mqtt", "r1", FALSE, NULL, "reboot not allowed");
    g_autoptr(cJSON) c = ca_cmdset_event_json("modem-reset", NULL, NULL, TRUE, NULL, NULL);
    g_autoptr(cJSON) big = cJSON_CreateObject();
    g_autoptr(cJSON) d = NULL;
    g_autofree char *ta = cJSON_PrintUnformatted(a);
    g_autofree char *tb = cJSON_PrintUnformatted(b);
    g_autofree char *tc = cJSON_PrintUnformatted(c);
    g_autofree char *td = NULL;
    g_autofree char *filler = g_strnfill(2000, 'x');

    g_assert_cmpstr(ta, ==,
                    "{\"command\":\"log-level\",\"source\":\"sms\",\"id\":\"sms-42\",\"ok\":true,"
                    "\"result\":{\"level\":\"debug\",\"previous\":\"info\"}}");
    g_assert_cmpstr(tb, ==,
                    "{\"command\":\"reboot\",\"source\":\"mqtt\",\"id\":\"r1\",\"ok\":false,"
                    "\"error\":\"reboot not allowed\"}");
    g_assert_cmpstr(tc, ==,
                    "{\"command\":\"modem-reset\",\"source\":\"unknown\",\"id\":null,\"ok\":true}");
    cJSON_AddStringToObject(big, "blob", filler);
    d = ca_cmdset_event_json("sms-resync", "mqtt", "x", TRUE, big, NULL);
    td = cJSON_PrintUnformatted(d);
    g_assert_null(strstr(td, "blob")); /* large results stay out of events */
}

static void
test_bytes(void)
{
    static const struct {
        gint64 b;
        const char *text;
    } cases[] = {
        {-1, "0 B"},
        {0, "0 B"},
        {999, "999 B"},
        {1000, "1.00 kB"},
        {1500, "1.50 kB"},
        {99999, "99.9 kB"},
        {999999, "999 kB"},
        {1000000, "1.00 MB"},
        {12345678, "12.3 MB"},
        {1020000000, "1.02 GB"},
        {G_GINT64_CONSTANT(5000000000000000000), "5000 PB"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *t = ca_cmdset_format_bytes(cases[i].b);
        g_assert_cmpstr(t, ==, cases[i].text);
    }
}

static gboolean
gsm_plain(const char *s)
{
    for (; *s; s++) {
        if (*s < 0x20 || *s > 0x7e || strchr("[]{}|^~\\`", *s))
            return FALSE;
    }
    return TRUE;
}

static void
test_status(void)
{
    CaStatusFacts f;
    g_autofree char *t1 = NULL;
    g_autofree char *t2 = NULL;
    g_autoptr(cJSON) j1 = NULL;
    g_autoptr(cJSON) j2 = NULL;
    g_autofree char *p2 = NULL;

    ca_status_facts_init(&f);
    f.device_id = "pump-7";
    f.uplink = "cellular";
    f.signal_quality = 70;
    f.access_tech = "lte";
    f.operator_name = "Safaricom";
    f.registration = "home";
    f.rx_bytes = 12345678;
    f.tx_bytes = 1234567;
    f.uptime_s = 3 * 86400 + 4 * 3600 + 5;
    t1 = ca_cmdset_status_text(&f);
    g_assert_cmpstr(t1, ==,
                    "pump-7: up 3 d 4 h; uplink cellular; lte 70% Safaricom home; data rx 12.3 MB "
                    "tx 1.23 MB");
    j1 = ca_cmdset_status_json(&f);
    g_assert_cmpstr(cJSON_GetObjectItem(j1, "text")->valuestring, ==, t1);
    g_assert_cmpint(cJSON_GetObjectItem(j1, "signal_quality")->valueint, ==, 70);
    g_assert_cmpstr(cJSON_GetObjectItem(j1, "uplink")->valuestring, ==, "cellular");

    /* Nothing known. */
    ca_status_facts_init(&f);
    f.device_id = "d";
    f.uptime_s = 42;
    t2 = ca_cmdset_status_text(&f);
    g_assert_cmpstr(t2, ==, "d: up 42 s; no uplink; modem signal ?");
    j2 = ca_cmdset_status_json(&f);
    p2 = cJSON_PrintUnformatted(j2);
    g_assert_cmpstr(p2, ==,
                    "{\"uplink\":null,\"signal_quality\":null,\"access_tech\":null,"
                    "\"operator_name\":null,\"registration\":null,\"rx_bytes\":null,"
                    "\"tx_bytes\":null,\"uptime\":42,\"text\":\"d: up 42 s; no uplink; modem "
                    "signal ?\"}");

    /* Long and hostile strings: one SMS, GSM-safe, operator shortened. */
    {
        g_autofree char *dev = g_strnfill(64, 'D');
        g_autofree char *op = g_strconcat("Operator{with}[odd]~chars`and|more\\", "\xc3\xa9", NULL);
        g_autofree char *up = g_strnfill(64, 'u');
        g_autofree char *t3 = NULL;

        ca_status_facts_init(&f);
        f.device_id = dev;
        f.uplink = up;
        f.operator_name = op;
        f.access_tech = "lte";
        f.registration = "roaming";
        f.signal_quality = 100;
        f.rx_bytes = G_GINT64_CONSTANT(999999999999);
        f.tx_bytes = G_GINT64_CONSTANT(999999999999);
        f.uptime_s = 999 * 86400 + 23 * 3600;
        t3 = ca_cmdset_status_text(&f);
        g_assert_cmpuint(strlen(t3), <=, CA_SMS_TEXT_MAX);
        g_assert_true(gsm_plain(t3));
        g_assert_nonnull(strstr(t3, "roaming")); /* facts are kept, free text shortened */
    }
}

static void
test_sms_reply(void)
{
    static const struct {
        const char *command;
        const char *json;
        const char *reply;
    } cases[] = {
        {"modem-reset", "{\"id\":\"sms-1\",\"ok\":true,\"ts\":\"T\"}", "dev: modem-reset ok"},
        {"reboot", "{\"id\":\"sms-1\",\"ok\":true,\"ts\":\"T\",\"result\":{\"delay\":5}}",
         "dev: reboot ok"},
        {"reboot",
         "{\"id\":\"sms-1\",\"ok\":false,\"ts\":\"T\",\"error\":\"reboot not allowed "
         "([commands] allow-reboot=false)\"}",
         "dev: reboot failed: reboot not allowed (commands allow-reboot=false)"},
        {"status", "{\"id\":\"s\",\"ok\":true,\"result\":{\"text\":\"dev: up 1 s; no uplink\"}}",
         "dev: up 1 s; no uplink"},
        {"status", "{\"id\":\"s\",\"ok\":false,\"error\":\"boom\"}", "dev: status failed: boom"},
        {"reconnect", "not json", "dev: reconnect failed: no result"},
        {"reconnect", NULL, "dev: reconnect failed: no result"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *r = ca_cmdset_sms_reply("dev", cases[i].command, cases[i].json);
        g_assert_cmpstr(r, ==, cases[i].reply);
    }
    {
        g_autofree char *err = g_strnfill(500, 'e');
        g_autofree char *json = g_strdup_printf("{\"ok\":false,\"error\":\"%s\"}", err);
        g_autofree char *r = ca_cmdset_sms_reply("dev", "reconnect", json);
        g_assert_cmpuint(strlen(r), ==, CA_SMS_TEXT_MAX);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/command-set/table", test_table);
    g_test_add_func("/command-set/args", test_args);
    g_test_add_func("/command-set/event", test_event);
    g_test_add_func("/command-set/bytes", test_bytes);
    g_test_add_func("/command-set/status", test_status);
    g_test_add_func("/command-set/sms-reply", test_sms_reply);
    return g_test_run();
}
