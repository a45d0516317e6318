/* Unit tests for config: every key's default, each validation rule, error format,
 * drop-in order, unknown keys, derived defaults, group comparison. */
#include "config.h"
#include "error.h"

#include <glib/gstdio.h>
#include <string.h>

static CaConfig *
load(const char *text, GError **error)
{
    return ca_config_load_from_data("test.conf", text, strlen(text), error);
}

/* Every key in the table with a fixed default has that default when unset. */
static void
test_defaults(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) c = load("[agent]\ndevice-id=dev1\n", &error);

    g_assert_no_error(error);
    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        if (!k->def || g_str_has_suffix(k->group, "*"))
            continue;
        g_assert_cmpstr(ca_config_get_string(c, k->group, k->key), ==, k->def);
        g_assert_false(ca_config_is_set(c, k->group, k->key));
    }
    g_assert_cmpint(ca_config_get_int(c, "mqtt", "keepalive"), ==, 60);
    g_assert_cmpint(ca_config_get_int(c, "mqtt", "queue-limit"), ==, 1000);
    g_assert_cmpint(ca_config_get_int(c, "telemetry", "interval"), ==, 60);
    g_assert_cmpint(ca_config_get_int(c, "telemetry", "signal-rate"), ==, 30);
    g_assert_cmpint(ca_config_get_int(c, "sms", "max-parts"), ==, 10);
    g_assert_cmpint(ca_config_get_int(c, "sms", "send-timeout"), ==, 120);
    g_assert_cmpint(ca_config_get_int(c, "sms", "rate-limit"), ==, 30);
    g_assert_true(ca_config_get_bool(c, "modem", "enable"));
    g_assert_true(ca_config_get_bool(c, "sms", "enabled"));
    g_assert_false(ca_config_get_bool(c, "sms", "keep-on-modem"));
    g_assert_false(ca_config_get_bool(c, "mqtt", "tls"));
    g_assert_cmpstr(ca_config_get_string(c, "mqtt", "host"), ==, "localhost");
    g_assert_cmpstr(ca_config_get_string(c, "mqtt", "topic-prefix"), ==, "cellagent");
    g_assert_cmpstr(ca_config_get_string(c, "mqtt", "protocol"), ==, "5");
    g_assert_cmpstr(ca_config_get_string(c, "mqtt", "tls-version"), ==, "tlsv1.2");
    g_assert_cmpstr(ca_config_get_string(c, "agent", "state-dir"), ==, "/var/lib/cellagent");
    g_assert_cmpstr(ca_config_get_string(c, "agent", "log-level"), ==, "info");
    g_assert_cmpstr(ca_config_get_string(c, "cellular", "connection"), ==, "cellular");
    g_assert_cmpstr(ca_config_get_string(c, "cellular", "apn"), ==, "internet");
}

/* Derived defaults: port by tls, client-id by device-id, device-id by host name. */
static void
test_derived(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) plain = load("[agent]\ndevice-id=dev1\n", &error);
    g_autoptr(CaConfig) tls = NULL;
    g_autoptr(CaConfig) explicit_port = NULL;

    g_assert_no_error(error);
    g_assert_cmpint(ca_config_get_int(plain, "mqtt", "port"), ==, 1883);
    g_assert_cmpstr(ca_config_get_string(plain, "mqtt", "client-id"), ==, "dev1");
    tls = load("[agent]\ndevice-id=dev1\n[mqtt]\ntls=true\n", &error);
    g_assert_no_error(error);
    g_assert_cmpint(ca_config_get_int(tls, "mqtt", "port"), ==, 8883);
    explicit_port =
        load("[agent]\ndevice-id=d\n[mqtt]\ntls=true\nport=1234\nclient-id=x\n", &error);
    g_assert_no_error(error);
    g_assert_cmpint(ca_config_get_int(explicit_port, "mqtt", "port"), ==, 1234);
    g_assert_cmpstr(ca_config_get_string(explicit_port, "mqtt", "client-id"), ==, "x");
}

typedef struct {
    const char *name;
    const char *text;
    const char *expect; /* substring of the error, NULL = must be valid */
} Case;

static const Case cases[] = {
    {"device-id/ok", "[agent]\ndevice-id=A-z_0.9\n", NULL},
    {"device-id/slash", "[agent]\ndevice-id=a/b\n", "test.conf:2: [agent] device-id: \"a/b\""},
    {"device-id/plus", "[agent]\ndevice-id=a+b\n", "[agent] device-id"},
    {"device-id/hash", "[agent]\ndevice-id=a#b\n", "[agent] device-id"},
    {"device-id/empty", "[agent]\ndevice-id=\n", "[agent] device-id: length 0"},
    {"device-id/65",
     "[agent]\ndevice-id="
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     "[agent] device-id: length 65"},
    {"device-id/64",
     "[agent]\ndevice-id="
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
     NULL},
    {"log-level/bad", "[agent]\ndevice-id=d\nlog-level=loud\n",
     "test.conf:3: [agent] log-level: \"loud\" is not one of"},
    {"state-dir/relative", "[agent]\ndevice-id=d\nstate-dir=var/x\n",
     "[agent] state-dir: \"var/x\" is not an absolute path"},
    {"port/0", "[agent]\ndevice-id=d\n[mqtt]\nport=0\n",
     "test.conf:4: [mqtt] port: \"0\" is not an integer from 1 to 65535"},
    {"port/99999", "[agent]\ndevice-id=d\n[mqtt]\nport=99999\n", "[mqtt] port"},
    {"port/text", "[agent]\ndevice-id=d\n[mqtt]\nport=http\n", "[mqtt] port"},
    {"port/65535", "[agent]\ndevice-id=d\n[mqtt]\nport=65535\n", NULL},
    {"keepalive/low", "[agent]\ndevice-id=d\n[mqtt]\nkeepalive=4\n", "[mqtt] keepalive"},
    {"protocol/311", "[agent]\ndevice-id=d\n[mqtt]\nprotocol=3.1.1\n", NULL},
    {"protocol/4", "[agent]\ndevice-id=d\n[mqtt]\nprotocol=4\n", "[mqtt] protocol"},
    {"tls/bool", "[agent]\ndevice-id=d\n[mqtt]\ntls=maybe\n",
     "[mqtt] tls: \"maybe\" is not a boolean"},
    {"tls-version/1.1", "[agent]\ndevice-id=d\n[mqtt]\ntls-version=tlsv1.1\n",
     "[mqtt] tls-version"},
    {"topic-prefix/wild", "[agent]\ndevice-id=d\n[mqtt]\ntopic-prefix=a/+\n",
     "[mqtt] topic-prefix"},
    {"topic-prefix/slash", "[agent]\ndevice-id=d\n[mqtt]\ntopic-prefix=/a\n",
     "[mqtt] topic-prefix"},
    {"topic-prefix/dollar", "[agent]\ndevice-id=d\n[mqtt]\ntopic-prefix=$SYS\n",
     "[mqtt] topic-prefix"},
    {"topic-prefix/levels", "[agent]\ndevice-id=d\n[mqtt]\ntopic-prefix=fleet/eu\n", NULL},
    {"queue-limit/0", "[agent]\ndevice-id=d\n[mqtt]\nqueue-limit=0\n", "[mqtt] queue-limit"},
    {"cert-without-key", "[agent]\ndevice-id=d\n[mqtt]\ncert-file=/etc/c.pem\n",
     "[mqtt] key-file: required when cert-file is set"},
    {"ca-file/relative", "[agent]\ndevice-id=d\n[mqtt]\nca-file=ca.pem\n", "[mqtt] ca-file"},
    {"interval/0", "[agent]\ndevice-id=d\n[telemetry]\ninterval=0\n", NULL},
    {"interval/neg", "[agent]\ndevice-id=d\n[telemetry]\ninterval=-1\n", "[telemetry] interval"},
    {"signal-rate/big", "[agent]\ndevice-id=d\n[telemetry]\nsignal-rate=3601\n",
     "[telemetry] signal-rate"},
    {"modem-enable/bad", "[agent]\ndevice-id=d\n[modem]\nenable=2\n", "[modem] enable"},
    {"pin-file/relative", "[agent]\ndevice-id=d\n[modem]\npin-file=pin\n", "[modem] pin-file"},
    {"max-parts/0", "[agent]\ndevice-id=d\n[sms]\nmax-parts=0\n", "[sms] max-parts"},
    {"max-parts/256", "[agent]\ndevice-id=d\n[sms]\nmax-parts=256\n", "[sms] max-parts"},
    {"send-timeout/1", "[agent]\ndevice-id=d\n[sms]\nsend-timeout=1\n", "[sms] send-timeout"},
    {"rate-limit/0", "[agent]\ndevice-id=d\n[sms]\nrate-limit=0\n", "[sms] rate-limit"},
    {"connection/empty", "[agent]\ndevice-id=d\n[cellular]\nconnection=\n",
     "[cellular] connection"},
    {"apn/101",
     "[agent]\ndevice-id=d\n[cellular]\napn="
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaa\n",
     "[cellular] apn"},
    {"syntax/garbage", "[agent]\ndevice-id=d\nthis is not ini\n", "test.conf:3: syntax error"},
    {"syntax/no-group", "key=value\n", "test.conf:1: syntax error"},
    {"utf8/bad", "[agent]\ndevice-id=d\n[cellular]\napn=\xff\xfe\n",
     "test.conf:4: [cellular] apn: not valid UTF-8"},
    {"escape/valid", "[agent]\ndevice-id=d\n[cellular]\napn=\\sa\\\\b\\t\n", NULL},
    {"escape/invalid", "[agent]\ndevice-id=d\n[mqtt]\nhost=a\\8b\n",
     "test.conf:4: [mqtt] host: invalid escape sequence \"\\8\""},
    {"escape/separator", "[agent]\ndevice-id=d\n[mqtt]\ntopic-prefix=a\\;b\n",
     "[mqtt] topic-prefix: invalid escape sequence \"\\;\""},
    {"escape/trailing", "[agent]\ndevice-id=d\n[mqtt]\nhost=a\\\n",
     "test.conf:4: [mqtt] host: ends in an escape character"},
    /* Found by fuzz-config: GLib 2.74 warned "GError set over the top of a previous GError"
     * and the half-parsed value was accepted (tests/fuzz/corpus/config/escape-twice.conf). */
    {"escape/invalid-then-trailing", "[agent]\ndevice-id=d\n[mqtt]\nhost=\\8\\\n",
     "test.conf:4: [mqtt] host: invalid escape sequence"},
};

static void
test_case(gconstpointer data)
{
    const Case *tc = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) c = load(tc->text, &error);

    if (!tc->expect) {
        g_assert_no_error(error);
        g_assert_nonnull(c);
        return;
    }
    g_assert_null(c);
    g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG);
    if (!strstr(error->message, tc->expect))
        g_error("error \"%s\" does not contain \"%s\"", error->message, tc->expect);
}

/* Every problem is reported, not only the first (for example port=99999 and device-id=a/b in one file). */
static void
test_all_problems(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) c =
        load("[agent]\ndevice-id=a/b\n[mqtt]\nport=99999\nkeepalive=1\n", &error);

    g_assert_null(c);
    g_assert_nonnull(strstr(error->message, "test.conf:2: [agent] device-id"));
    g_assert_nonnull(strstr(error->message, "test.conf:4: [mqtt] port"));
    g_assert_nonnull(strstr(error->message, "test.conf:5: [mqtt] keepalive"));
}

static void
test_unknown_keys(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) c = load("[agent]\ndevice-id=d\ncolour=blue\n[bogus]\nx=1\n", &error);
    const char *const *w;

    g_assert_no_error(error);
    w = ca_config_get_warnings(c);
    g_assert_cmpuint(g_strv_length((char **) w), ==, 2);
    g_assert_cmpstr(w[0], ==, "test.conf:3: [agent] colour: unknown key, ignored");
    g_assert_cmpstr(w[1], ==, "test.conf:4: [bogus] unknown group, ignored");
}

/* tls=false towards a broker that is not on this machine: a warning naming the key. */
static void
test_tls_warning(void)
{
    static const struct {
        const char *mqtt;
        const char *warning; /* NULL: none */
    } tls_cases[] = {
        {"host=broker.example.com\n", "[mqtt] tls: false while host \"broker.example.com\""},
        {"host=192.0.2.10\ntls=false\n", "test.conf:5: [mqtt] tls: false while host"},
        {"host=broker.example.com\ntls=true\n", NULL},
        {"host=localhost\n", NULL},
        {"host=127.0.0.53\n", NULL},
        {"host=::1\n", NULL},
        {"host=mqtt.localhost\n", NULL},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(tls_cases); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *text =
            g_strconcat("[agent]\ndevice-id=d\n[mqtt]\n", tls_cases[i].mqtt, NULL);
        g_autoptr(CaConfig) c = load(text, &error);
        const char *const *w;

        g_assert_no_error(error);
        w = ca_config_get_warnings(c);
        if (!tls_cases[i].warning) {
            g_assert_cmpuint(g_strv_length((char **) w), ==, 0);
        } else {
            g_assert_cmpuint(g_strv_length((char **) w), ==, 1);
            g_assert_nonnull(strstr(w[0], tls_cases[i].warning));
            g_assert_nonnull(strstr(w[0], "unencrypted"));
        }
    }
    /* MQTT 3.1.1 is no longer a warning: the agent bounds incoming packets itself. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(CaConfig) c =
            load("[agent]\ndevice-id=d\n[mqtt]\nhost=localhost\nprotocol=3.1.1\n", &error);

        g_assert_no_error(error);
        g_assert_cmpuint(g_strv_length((char **) ca_config_get_warnings(c)), ==, 0);
    }
}

/* Drop-ins in name order, later wins; errors name the drop-in file. */
static void
test_dropins(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("ca-config-XXXXXX", &error);
    g_autofree char *main_path = g_build_filename(dir, "cellagent.conf", NULL);
    g_autofree char *dropdir = g_build_filename(dir, "cellagent.conf.d", NULL);
    g_autofree char *d1 = g_build_filename(dropdir, "10-a.conf", NULL);
    g_autofree char *d2 = g_build_filename(dropdir, "20-b.conf", NULL);
    g_autofree char *ignored = g_build_filename(dropdir, "30-c.conf.bak", NULL);
    g_autoptr(CaConfig) c = NULL;
    g_autoptr(CaConfig) bad = NULL;

    g_assert_no_error(error);
    g_assert_cmpint(g_mkdir(dropdir, 0700), ==, 0);
    g_assert_true(
        g_file_set_contents(main_path, "[agent]\ndevice-id=main\n[mqtt]\nhost=a\n", -1, NULL));
    g_assert_true(g_file_set_contents(d2, "[mqtt]\nhost=c\n", -1, NULL));
    g_assert_true(g_file_set_contents(d1, "[mqtt]\nhost=b\nport=1\n", -1, NULL));
    g_assert_true(g_file_set_contents(ignored, "[mqtt]\nhost=zzz\n", -1, NULL));
    c = ca_config_load(main_path, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(ca_config_get_string(c, "mqtt", "host"), ==, "c");
    g_assert_cmpint(ca_config_get_int(c, "mqtt", "port"), ==, 1);
    g_assert_cmpstr(ca_config_get_string(c, "agent", "device-id"), ==, "main");
    g_assert_cmpuint(g_strv_length((char **) ca_config_get_files(c)), ==, 3);

    g_assert_true(g_file_set_contents(d2, "[mqtt]\n\nport=70000\n", -1, NULL));
    bad = ca_config_load(main_path, &error);
    g_assert_null(bad);
    g_assert_nonnull(strstr(error->message, "20-b.conf:3: [mqtt] port"));
    g_clear_error(&error);

    g_remove(d1);
    g_remove(d2);
    g_remove(ignored);
    g_rmdir(dropdir);
    g_remove(main_path);
    g_rmdir(dir);
}

static void
test_missing_explicit_file(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) c = ca_config_load("/nonexistent/cellagent.conf", &error);

    g_assert_null(c);
    g_assert_nonnull(strstr(error->message, "/nonexistent/cellagent.conf: cannot read"));
}

static void
test_group_equal(void)
{
    g_autoptr(CaConfig) a = load("[agent]\ndevice-id=d\n[mqtt]\nhost=a\n", NULL);
    g_autoptr(CaConfig) b = load("[agent]\ndevice-id=d\n[mqtt]\nhost=b\n", NULL);

    g_assert_false(ca_config_group_equal(a, b, "mqtt"));
    g_assert_true(ca_config_group_equal(a, b, "sms"));
    g_assert_true(ca_config_group_equal(a, b, "agent"));
}

static void
test_dump(void)
{
    g_autoptr(CaConfig) c = load("[agent]\ndevice-id=d\n[mqtt]\nhost=broker.example\n", NULL);
    g_autofree char *dump = ca_config_dump(c);

    g_assert_nonnull(strstr(dump, "[mqtt]\nhost=broker.example    # test.conf:4\n"));
    g_assert_nonnull(strstr(dump, "keepalive=60    # default\n"));
    g_assert_nonnull(strstr(dump, "port=1883    # default\n"));
}

/* The generated example config is itself valid and documents every key. */
static void
test_reference(void)
{
    g_autofree char *ini = ca_config_reference_ini();
    g_autofree char *md = ca_config_reference_markdown();
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) c = ca_config_load_from_data("example", ini, strlen(ini), &error);

    g_assert_no_error(error);
    g_assert_nonnull(c);
    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        g_autofree char *line = g_strdup_printf("\n#%s=", k->key);
        g_autofree char *cell = g_strdup_printf("| `%s` |", k->key);
        g_assert_nonnull(strstr(ini, line));
        g_assert_nonnull(strstr(md, cell));
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/config/defaults", test_defaults);
    g_test_add_func("/config/derived", test_derived);
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf("/config/validate/%s", cases[i].name);
        g_test_add_data_func(path, &cases[i], test_case);
    }
    g_test_add_func("/config/all-problems", test_all_problems);
    g_test_add_func("/config/unknown-keys", test_unknown_keys);
    g_test_add_func("/config/dropins", test_dropins);
    g_test_add_func("/config/tls-warning", test_tls_warning);
    g_test_add_func("/config/missing-explicit-file", test_missing_explicit_file);
    g_test_add_func("/config/group-equal", test_group_equal);
    g_test_add_func("/config/dump", test_dump);
    g_test_add_func("/config/reference", test_reference);
    return g_test_run();
}
