/* Unit tests for the remote configuration layer: the config/desired document's checks and
 * translation (remote-desired.c), the files and their crash-safe trial (remote-layer.c) and
 * the configuration loaded with the layer. */
#include "config.h"
#include "error.h"
#include "remote-desired.h"
#include "remote-layer.h"

#include <glib/gstdio.h>
#include <string.h>

static CaRemoteConfigSettings
settings_from(const char *conf)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) c = ca_config_load_from_data("t.conf", conf, strlen(conf), &error);
    CaRemoteConfigSettings set;

    g_assert_no_error(error);
    ca_remote_config_settings_load(&set, c);
    return set;
}

/* Parse with the default settings; errors joined by '\n' into *out_errors. */
static CaRemoteDesired *
parse(const CaRemoteConfigSettings *set, const char *doc, gint64 *out_version, char **out_errors)
{
    g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
    CaRemoteDesired *d = ca_remote_desired_parse(doc, strlen(doc), set, out_version, errors);

    g_ptr_array_add(errors, NULL);
    *out_errors = g_strjoinv("\n", (char **) errors->pdata);
    g_assert_true((d == NULL) == (errors->len > 1));
    return d;
}

static void
test_desired_valid(void)
{
    CaRemoteConfigSettings set = settings_from("[agent]\ndevice-id=d\n");
    g_autofree char *errors = NULL;
    g_autofree char *errors2 = NULL;
    g_autoptr(CaRemoteDesired) d = NULL;
    g_autoptr(CaRemoteDesired) d2 = NULL;
    gint64 version = 0;

    d = parse(&set,
              "{\"version\":7,\"groups\":{\"telemetry\":{\"interval\":300,\"homeassistant\":true},"
              "\"health\":{\"probes\":[\"icmp:10.0.0.1\",\"tcp:mqtt\"]},"
              "\"uplink-wired\":{\"connection\":\"eth 1\"}}}",
              &version, &errors);
    g_assert_nonnull(d);
    g_assert_cmpstr(errors, ==, "");
    g_assert_cmpint(version, ==, 7);
    g_assert_cmpint(d->version, ==, 7);
    g_assert_cmpint(d->confirm_within, ==, 120); /* [remote-config] confirm-within */
    g_assert_true(g_str_has_prefix(d->layer, "# version=7\n"));
    g_assert_nonnull(strstr(d->layer, "[telemetry]\ninterval=300\nhomeassistant=true\n"));
    g_assert_nonnull(strstr(d->layer, "probes=icmp:10.0.0.1;tcp:mqtt\n"));
    g_assert_nonnull(strstr(d->layer, "[uplink-wired]\nconnection=eth 1\n"));
    g_assert_cmpint(ca_remote_layer_version(d->layer), ==, 7);
    g_assert_true(g_str_has_prefix(d->hash, "sha256:"));
    g_assert_cmpuint(strlen(d->hash), ==, 7 + 64);

    /* The same settings under another version: same hash, same settings. */
    d2 = parse(&set,
               "{\"confirm_within\":30,\"version\":8,\"groups\":{\"telemetry\":{\"interval\":300,"
               "\"homeassistant\":true},\"health\":{\"probes\":[\"icmp:10.0.0.1\",\"tcp:mqtt\"]},"
               "\"uplink-wired\":{\"connection\":\"eth 1\"}}}",
               &version, &errors2);
    g_assert_nonnull(d2);
    g_assert_cmpint(d2->confirm_within, ==, 30);
    g_assert_cmpstr(d->hash, ==, d2->hash);
    g_assert_true(ca_remote_layer_same_settings(d->layer, d2->layer));
    g_assert_false(ca_remote_layer_same_settings(d->layer, NULL));
    ca_remote_config_settings_clear(&set);
}

typedef struct {
    const char *doc;
    gint64 version;    /* readable version, 0: none */
    const char *error; /* a substring of the errors */
} Refusal;

static const Refusal refusals[] = {
    {"not json", 0, "document: "},
    {"[1,2]", 0, "document: not a JSON object"},
    {"{\"groups\":{}}", 0, "version: missing"},
    {"{\"version\":0,\"groups\":{}}", 0, "version: must be an integer from 1"},
    {"{\"version\":1.5,\"groups\":{}}", 0, "version: must be an integer"},
    {"{\"version\":\"3\",\"groups\":{}}", 0, "version: must be an integer"},
    {"{\"version\":3}", 3, "groups: missing or not an object"},
    {"{\"version\":3,\"groups\":{},\"extra\":1}", 3, "extra: unknown member"},
    {"{\"version\":3,\"groups\":{},\"confirm_within\":5}", 3, "confirm_within: must be"},
    {"{\"version\":3,\"groups\":{\"nosuch\":{}}}", 3, "[nosuch]: not a group"},
    {"{\"version\":3,\"groups\":{\"uplink-a]b\":{}}}", 3, "not a group"},
    {"{\"version\":3,\"groups\":{\"telemetry\":5}}", 3, "[telemetry]: must be an object"},
    {"{\"version\":3,\"groups\":{\"telemetry\":{\"nokey\":1}}}", 3,
     "[telemetry] nokey: unknown key"},
    {"{\"version\":3,\"groups\":{\"agent\":{\"state-dir\":\"/tmp\"}}}", 3,
     "[agent] state-dir: set only in the local files"},
    {"{\"version\":3,\"groups\":{\"agent\":{\"device-id\":\"x\"}}}", 3,
     "[agent] device-id: set only"},
    {"{\"version\":3,\"groups\":{\"remote-config\":{\"enabled\":false}}}", 3,
     "[remote-config] enabled: set only in the local files"},
    {"{\"version\":3,\"groups\":{\"watchdog\":{\"reboot-command\":\"rm -rf /\"}}}", 3,
     "[watchdog] reboot-command: set only in the local files"},
    {"{\"version\":3,\"groups\":{\"commands\":{\"reboot-command\":\"x\"}}}", 3,
     "[commands] reboot-command: set only"},
    {"{\"version\":3,\"groups\":{\"mqtt\":{\"password-file\":\"/tmp/p\"}}}", 3,
     "[mqtt] password-file: a credential"},
    {"{\"version\":3,\"groups\":{\"mqtt\":{\"key-file\":\"/tmp/p\"}}}", 3,
     "[mqtt] key-file: a credential"},
    {"{\"version\":3,\"groups\":{\"sms-commands\":{\"lockout\":60}}}", 3,
     "[sms-commands] lockout: the group is not in [remote-config] allowed-groups"},
    {"{\"version\":3,\"groups\":{\"telemetry\":{\"interval\":[1]}}}", 3,
     "[telemetry] interval: not a list key"},
    {"{\"version\":3,\"groups\":{\"telemetry\":{\"interval\":1.5}}}", 3,
     "[telemetry] interval: numbers must be integers"},
    {"{\"version\":3,\"groups\":{\"telemetry\":{\"interval\":null}}}", 3,
     "[telemetry] interval: must be"},
    {"{\"version\":3,\"groups\":{\"mqtt\":{\"host\":\"a\\nb\"}}}", 3,
     "[mqtt] host: control characters"},
    {"{\"version\":3,\"groups\":{\"health\":{\"probes\":[\"a;b\"]}}}", 3, "cannot contain ';'"},
    {"{\"version\":3,\"groups\":{\"mqtt\":{\"host\":\"a\\u0000b\"}}}", 0, "document: "},
    {"{\"version\":3,\"version\":4,\"groups\":{}}", 0, "document: "},
};

static void
test_desired_refused(void)
{
    CaRemoteConfigSettings set = settings_from("[agent]\ndevice-id=d\n");

    for (gsize i = 0; i < G_N_ELEMENTS(refusals); i++) {
        g_autofree char *errors = NULL;
        gint64 version = -1;
        g_autoptr(CaRemoteDesired) d = parse(&set, refusals[i].doc, &version, &errors);

        g_test_message("%s -> %s", refusals[i].doc, errors);
        g_assert_null(d);
        g_assert_nonnull(strstr(errors, refusals[i].error));
        if (refusals[i].version)
            g_assert_cmpint(version, ==, refusals[i].version);
    }
    ca_remote_config_settings_clear(&set);
}

/* max-bytes bounds the document before it is parsed; allowed-groups widens and narrows. */
static void
test_desired_settings(void)
{
    CaRemoteConfigSettings set = settings_from(
        "[agent]\ndevice-id=d\n[remote-config]\nmax-bytes=256\nallowed-groups=telemetry;"
        "mqtt.password-file;uplink-*\n");
    g_autofree char *big = g_strnfill(300, ' ');
    g_autofree char *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;
    g_autoptr(CaRemoteDesired) d1 = NULL, d2 = NULL, d3 = NULL, d4 = NULL;
    gint64 v;

    d1 = parse(&set, big, &v, &e1);
    g_assert_null(d1);
    g_assert_nonnull(
        strstr(e1, "document: 300 bytes, larger than [remote-config] max-bytes (256)"));
    /* A credential named as group.key is allowed, the rest of its group is not. */
    d2 = parse(&set, "{\"version\":2,\"groups\":{\"mqtt\":{\"password-file\":\"/etc/p\"}}}", &v,
               &e2);
    g_assert_nonnull(d2);
    d3 = parse(&set, "{\"version\":2,\"groups\":{\"mqtt\":{\"port\":1}}}", &v, &e3);
    g_assert_null(d3);
    g_assert_nonnull(strstr(e3, "[mqtt] port: the group is not in"));
    d4 = parse(&set, "{\"version\":2,\"groups\":{\"uplink-wifi\":{\"priority\":5}}}", &v, &e4);
    g_assert_nonnull(d4);
    ca_remote_config_settings_clear(&set);

    /* allowed-groups entries are checked against the table. */
    {
        const char *bad =
            "[agent]\ndevice-id=d\n[remote-config]\nallowed-groups=nosuch;mqtt.nokey\n";
        g_autoptr(GError) error = NULL;
        g_autoptr(CaConfig) c = ca_config_load_from_data("t.conf", bad, strlen(bad), &error);

        g_assert_null(c);
        g_assert_nonnull(
            strstr(error->message, "[remote-config] allowed-groups: \"nosuch\": not a group"));
        g_assert_nonnull(strstr(error->message, "\"mqtt.nokey\": no key \"nokey\""));
    }
}

typedef struct {
    char *dir;
    char *conf;
    char *state;
} Fixture;

static void
fixture_setup(Fixture *f, gconstpointer data)
{
    g_autofree char *text = NULL;

    f->dir = g_dir_make_tmp("test-remote-XXXXXX", NULL);
    f->conf = g_build_filename(f->dir, "cellagent.conf", NULL);
    f->state = g_build_filename(f->dir, "state", NULL);
    text = g_strdup_printf("[agent]\ndevice-id=d\nstate-dir=%s\n[telemetry]\ninterval=60\n"
                           "[remote-config]\nenabled=%s\n",
                           f->state, data ? (const char *) data : "true");
    g_assert_true(g_file_set_contents(f->conf, text, -1, NULL));
}

static void
rm_rf(const char *path)
{
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);

    for (const char *n = d ? g_dir_read_name(d) : NULL; n; n = g_dir_read_name(d)) {
        g_autofree char *p = g_build_filename(path, n, NULL);
        rm_rf(p);
    }
    g_remove(path);
}

static void
fixture_teardown(Fixture *f, gconstpointer data)
{
    rm_rf(f->dir);
    g_free(f->dir);
    g_free(f->conf);
    g_free(f->state);
}

static gboolean
layer_file_exists(Fixture *f, const char *name)
{
    g_autofree char *p = g_build_filename(f->state, CA_REMOTE_LAYER_DIR, name, NULL);
    return g_file_test(p, G_FILE_TEST_EXISTS);
}

static const char *const L7 = "# version=7\n[telemetry]\ninterval=300\n";
static const char *const L8 = "# version=8\n[telemetry]\ninterval=600\n";

static const char *const BAD = "[telemetry]\ninterval=-4\n";

/* The layer is read after the files; its values name it as their source. */
static void
test_layered_load(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) c = NULL;
    g_autoptr(CaConfig) bad = NULL;
    const char *file;
    int line;

    c = ca_config_load_layered(f->conf, "remote version 7", L7, strlen(L7), &error);
    g_assert_no_error(error);
    g_assert_cmpint(ca_config_get_int(c, "telemetry", "interval"), ==, 300);
    g_assert_true(ca_config_get_source(c, "telemetry", "interval", &file, &line));
    g_assert_cmpstr(file, ==, "remote version 7");
    g_assert_cmpint(line, ==, 0);
    g_assert_true(ca_config_get_source(c, "agent", "device-id", &file, &line));
    g_assert_cmpstr(file, ==, f->conf);
    g_assert_cmpint(line, ==, 2);
    g_assert_true(ca_config_get_source(c, "mqtt", "keepalive", &file, &line));
    g_assert_null(file);
    /* --check-config names the layer (no line: generated text). */
    {
        g_autofree char *dump = ca_config_dump(c);
        g_assert_nonnull(strstr(dump, "interval=300    # remote version 7\n"));
    }

    /* The same validator as --check-config, naming the layer, the group and the key. */
    bad = ca_config_load_layered(f->conf, "remote version 9", BAD, strlen(BAD), &error);
    g_assert_null(bad);
    g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG);
    g_assert_true(g_str_has_prefix(error->message, "remote version 9: [telemetry] interval: "
                                                   "\"-4\" is not an integer from 0 to 86400"));
}

/* begin, confirm, begin, rollback: the files at each step. */
static void
test_trial_files(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaRemotePending) p = NULL;
    g_autofree char *cur = NULL;
    CaRemotePending p7 = {.version = 7, .confirm_within = 30, .started_at = 1000000000000000};
    CaRemotePending p8 = {.version = 8,
                          .previous_version = 7,
                          .confirm_within = 30,
                          .checkpoint = (char *) "/org/freedesktop/NetworkManager/Checkpoint/3"};

    g_assert_null(ca_remote_layer_read(f->state, &error));
    g_assert_no_error(error);
    g_assert_true(ca_remote_layer_begin(f->state, L7, &p7, &error));
    g_assert_no_error(error);
    g_assert_true(layer_file_exists(f, "pending.json"));
    p = ca_remote_layer_read_pending(f->state, "pending.json", &error);
    g_assert_nonnull(p);
    g_assert_cmpint(p->version, ==, 7);
    g_assert_cmpint(p->confirm_within, ==, 30);
    g_assert_cmpint(p->started_at, ==, 1000000000000000);
    g_assert_null(p->checkpoint);
    g_assert_true(ca_remote_layer_confirm(f->state, &error));
    g_assert_false(layer_file_exists(f, "pending.json"));
    cur = ca_remote_layer_read(f->state, &error);
    g_assert_cmpstr(cur, ==, L7);
    g_clear_pointer(&cur, g_free);

    g_assert_true(ca_remote_layer_begin(f->state, L8, &p8, &error));
    cur = ca_remote_layer_read(f->state, &error);
    g_assert_cmpstr(cur, ==, L8);
    g_clear_pointer(&cur, g_free);
    g_assert_true(ca_remote_layer_rollback(f->state, &error));
    g_assert_no_error(error);
    cur = ca_remote_layer_read(f->state, &error);
    g_assert_cmpstr(cur, ==, L7);
    g_assert_false(layer_file_exists(f, "pending.json"));

    /* Reports are kept as written. */
    g_assert_null(ca_remote_layer_read_report(f->state));
    g_assert_true(ca_remote_layer_save_report(f->state, "{\"version\":8}", &error));
    {
        g_autofree char *r = ca_remote_layer_read_report(f->state);
        g_assert_cmpstr(r, ==, "{\"version\":8}");
    }
}

/* A trial left by a crash is rolled back by the next load with recover=TRUE, before the
 * layer is read; the first layer ever rolls back to none. */
static void
test_recover_at_start(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) during = NULL;
    g_autoptr(CaConfig) after = NULL;
    g_autoptr(CaConfig) first = NULL;
    g_autoptr(CaRemotePending) rec = NULL;
    CaRemotePending p7 = {.version = 7, .confirm_within = 30};
    CaRemotePending p8 = {.version = 8,
                          .previous_version = 7,
                          .confirm_within = 30,
                          .checkpoint = (char *) "/org/freedesktop/NetworkManager/Checkpoint/3"};
    gint64 v = -1;

    g_assert_true(ca_remote_layer_begin(f->state, L7, &p7, &error));
    g_assert_true(ca_remote_layer_confirm(f->state, &error));
    g_assert_true(ca_remote_layer_begin(f->state, L8, &p8, &error));
    /* A reload during the trial reads the layer on trial. */
    during = ca_remote_layer_load_config(f->conf, FALSE, &error);
    g_assert_no_error(error);
    g_assert_cmpint(ca_config_get_int(during, "telemetry", "interval"), ==, 600);
    /* The start after a crash rolls back. */
    after = ca_remote_layer_load_config(f->conf, TRUE, &error);
    g_assert_no_error(error);
    g_assert_cmpint(ca_config_get_int(after, "telemetry", "interval"), ==, 300);
    g_assert_false(layer_file_exists(f, "pending.json"));
    rec = ca_remote_layer_read_pending(f->state, "recovered.json", &error);
    g_assert_nonnull(rec);
    g_assert_cmpint(rec->version, ==, 8);
    g_assert_cmpstr(rec->checkpoint, ==, "/org/freedesktop/NetworkManager/Checkpoint/3");
    g_assert_true(ca_remote_layer_finish_recovery(f->state, &error));
    g_assert_false(layer_file_exists(f, "recovered.json"));
    g_assert_true(ca_remote_layer_recover(f->state, &v, &error));
    g_assert_cmpint(v, ==, 0);

    /* The first layer ever: rolled back to none. */
    rm_rf(f->state);
    g_assert_true(ca_remote_layer_begin(f->state, L8, &p8, &error));
    first = ca_remote_layer_load_config(f->conf, TRUE, &error);
    g_assert_cmpint(ca_config_get_int(first, "telemetry", "interval"), ==, 60);
    g_assert_false(layer_file_exists(f, "current.conf"));
}

/* enabled=false: the layer is not read. A layer that no longer validates is left out. */
static void
test_layer_ignored(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) c = NULL;
    CaRemotePending p = {.version = 7, .confirm_within = 30};

    g_assert_true(ca_remote_layer_begin(
        f->state, data ? L7 : "# version=3\n[telemetry]\ninterval=x\n", &p, &error));
    g_assert_true(ca_remote_layer_confirm(f->state, &error));
    c = ca_remote_layer_load_config(f->conf, TRUE, &error);
    g_assert_no_error(error);
    g_assert_cmpint(ca_config_get_int(c, "telemetry", "interval"), ==, 60);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/remote-config/desired/valid", test_desired_valid);
    g_test_add_func("/remote-config/desired/refused", test_desired_refused);
    g_test_add_func("/remote-config/desired/settings", test_desired_settings);
    g_test_add("/remote-config/layer/load", Fixture, NULL, fixture_setup, test_layered_load,
               fixture_teardown);
    g_test_add("/remote-config/layer/trial", Fixture, NULL, fixture_setup, test_trial_files,
               fixture_teardown);
    g_test_add("/remote-config/layer/recover", Fixture, NULL, fixture_setup, test_recover_at_start,
               fixture_teardown);
    g_test_add("/remote-config/layer/disabled", Fixture, "false", fixture_setup, test_layer_ignored,
               fixture_teardown);
    g_test_add("/remote-config/layer/invalid", Fixture, NULL, fixture_setup, test_layer_ignored,
               fixture_teardown);
    return g_test_run();
}
