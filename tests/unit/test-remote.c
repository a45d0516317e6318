/* Unit tests for remote on a real command registry (no broker): args checks before any
 * handler, "command" events for commands that change something (also those registered by
 * other modules), status, log-level, reboot with a recording command, the SMS command
 * channel end to end (audit events, dispatch, the reply SMS), the registry observer. */
#define CA_LOG_MODULE "test-remote"
#include "autocleanups.h"
#include "commands.h"
#include "log.h"
#include "remote.h"
#include "sms-command.h"
#include "totp.h"

#include <glib/gstdio.h>
#include <string.h>

static const char rfc_secret[] = "12345678901234567890";

typedef struct {
    char *dir;
    char *secret_file;
    CaConfig *config;
    CaCommands *registry;
    CaRemote *remote;
    GPtrArray *events;  /* "type fields-json" */
    GPtrArray *sms;     /* "id|to|text" */
    GPtrArray *results; /* result JSON texts of dispatched requests */
    guint modem_resets;
} Fixture;

static void
event_hook(const char *type, const cJSON *fields, gpointer user_data)
{
    Fixture *f = user_data;
    g_autofree char *json = cJSON_PrintUnformatted(fields);

    g_ptr_array_add(f->events, g_strdup_printf("%s %s", type, json));
}

static gboolean
sms_hook(const char *id, const char *to, const char *text, GError **error, gpointer user_data)
{
    Fixture *f = user_data;

    g_ptr_array_add(f->sms, g_strdup_printf("%s|%s|%s", id, to, text));
    return TRUE;
}

static void
status_hook(CaStatusFacts *facts, GPtrArray *strings, gpointer user_data)
{
    facts->uplink = "wired";
    facts->signal_quality = 55;
    facts->operator_name = "Op";
}

static void
result_reply(CaCommand *cmd, const char *json, gpointer user_data)
{
    Fixture *f = user_data;

    g_ptr_array_add(f->results, g_strdup(json));
}

/* Stands in for a handler another module registers (modem.c's modem-reset). */
static void
modem_reset_handler(CaCommand *cmd, gpointer user_data)
{
    Fixture *f = user_data;

    f->modem_resets++;
    ca_command_return_ok(cmd, NULL);
}

static CaConfig *
load_config(Fixture *f, const char *extra)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *text = g_strdup_printf("[agent]\ndevice-id=dev1\nstate-dir=%s/state\n"
                                            "[sms-commands]\nenabled=true\nsecret-file=%s\n"
                                            "allowed-senders=+254712345678;+254722000111\n%s",
                                            f->dir, f->secret_file, extra ? extra : "");
    CaConfig *c = ca_config_load_from_data("t.conf", text, strlen(text), &error);

    g_assert_no_error(error);
    return c;
}

static void
fixture_open(Fixture *f, const char *extra)
{
    CaRemoteHooks hooks = {.publish_event = event_hook,
                           .send_sms = sms_hook,
                           .get_status = status_hook,
                           .user_data = f};
    g_autofree char *b32 = ca_base32_encode((const guint8 *) rfc_secret, 20);

    memset(f, 0, sizeof(*f));
    f->dir = g_dir_make_tmp("test-remote-XXXXXX", NULL);
    f->secret_file = g_build_filename(f->dir, "secret", NULL);
    g_assert_true(g_file_set_contents(f->secret_file, b32, -1, NULL));
    g_assert_cmpint(g_chmod(f->secret_file, 0600), ==, 0);
    f->config = load_config(f, extra);
    f->events = g_ptr_array_new_with_free_func(g_free);
    f->sms = g_ptr_array_new_with_free_func(g_free);
    f->results = g_ptr_array_new_with_free_func(g_free);
    f->registry = ca_commands_new();
    ca_commands_register(f->registry, "modem-reset", modem_reset_handler, f, NULL);
    f->remote = ca_remote_new(f->config, f->registry, &hooks);
}

static void
rm_rf(const char *path)
{
    if (g_file_test(path, G_FILE_TEST_IS_DIR)) {
        g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
        const char *n;

        while (d && (n = g_dir_read_name(d))) {
            g_autofree char *p = g_build_filename(path, n, NULL);
            rm_rf(p);
        }
        g_rmdir(path);
    } else {
        g_remove(path);
    }
}

static void
fixture_close(Fixture *f)
{
    ca_remote_free(f->remote);
    ca_commands_free(f->registry);
    ca_config_unref(f->config);
    g_ptr_array_unref(f->events);
    g_ptr_array_unref(f->sms);
    g_ptr_array_unref(f->results);
    rm_rf(f->dir);
    g_assert_false(g_file_test(f->dir, G_FILE_TEST_EXISTS));
    g_free(f->secret_file);
    g_free(f->dir);
}

static const char *
dispatch(Fixture *f, const char *name, const char *payload)
{
    guint before = f->results->len;

    ca_commands_dispatch(f->registry, name, payload, strlen(payload), "mqtt", result_reply, f,
                         NULL);
    g_assert_cmpuint(f->results->len, ==, before + 1);
    return f->results->pdata[before];
}

static guint
count_prefix(GPtrArray *a, const char *prefix)
{
    guint n = 0;

    for (guint i = 0; i < a->len; i++)
        n += g_str_has_prefix(a->pdata[i], prefix);
    return n;
}

static gboolean
expire_cb(gpointer data)
{
    *(gboolean *) data = TRUE;
    return G_SOURCE_REMOVE;
}

/* Run the main loop until pred or a generous deadline (the machine is shared). */
static gboolean
loop_until(gboolean (*pred)(gpointer), gpointer data, guint seconds)
{
    gboolean expired = FALSE;
    GSource *deadline = g_timeout_source_new_seconds(seconds);

    g_source_set_callback(deadline, expire_cb, &expired, NULL);
    g_source_attach(deadline, NULL);
    while (!pred(data) && !expired)
        g_main_context_iteration(NULL, TRUE);
    g_source_destroy(deadline);
    g_source_unref(deadline);
    return pred(data);
}

/*****************************************************************************/

static void
test_args_and_events(void)
{
    Fixture f;
    const char *r;

    fixture_open(&f, NULL);
    /* Refused before the handler ran, and nothing changed: no event. */
    r = dispatch(&f, "modem-reset", "{\"id\":\"a1\",\"args\":{\"now\":true}}");
    g_assert_nonnull(strstr(r, "\"ok\":false"));
    g_assert_nonnull(strstr(r, "args.now: unknown argument"));
    g_assert_cmpuint(f.modem_resets, ==, 0);
    g_assert_cmpuint(f.events->len, ==, 0);
    /* Valid: runs, and the event says who asked. */
    r = dispatch(&f, "modem-reset", "{\"id\":\"a2\"}");
    g_assert_nonnull(strstr(r, "\"ok\":true"));
    g_assert_cmpuint(f.modem_resets, ==, 1);
    g_assert_cmpuint(f.events->len, ==, 1);
    g_assert_cmpstr(f.events->pdata[0], ==,
                    "command {\"command\":\"modem-reset\",\"source\":\"mqtt\",\"id\":\"a2\","
                    "\"ok\":true}");
    /* Read-only commands make no event. */
    r = dispatch(&f, "status", "{\"id\":\"s1\"}");
    g_assert_nonnull(strstr(r, "\"ok\":true"));
    g_assert_nonnull(strstr(r, "\"uplink\":\"wired\""));
    g_assert_nonnull(strstr(r, "\"text\":\"dev1: up 0 s; uplink wired; modem 55% Op\""));
    g_assert_cmpuint(f.events->len, ==, 1);
    /* Unknown commands are answered by the registry, no event. */
    r = dispatch(&f, "self-destruct", "{\"id\":\"x\"}");
    g_assert_nonnull(strstr(r, "unknown command"));
    g_assert_cmpuint(f.events->len, ==, 1);
    fixture_close(&f);
}

static void
test_log_level(void)
{
    Fixture f;
    const char *r;
    CaLogLevel before = ca_log_get_level();

    fixture_open(&f, NULL);
    ca_log_set_level(CA_LOG_INFO);
    r = dispatch(&f, "log-level", "{\"id\":\"l1\",\"args\":{\"level\":\"trace\"}}");
    g_assert_nonnull(strstr(r, "args.level: must be"));
    g_assert_cmpint(ca_log_get_level(), ==, CA_LOG_INFO);
    r = dispatch(&f, "log-level", "{\"id\":\"l2\",\"args\":{\"level\":\"debug\"}}");
    g_assert_nonnull(strstr(r, "\"result\":{\"level\":\"debug\",\"previous\":\"info\"}"));
    g_assert_cmpint(ca_log_get_level(), ==, CA_LOG_DEBUG);
    g_assert_cmpuint(count_prefix(f.events, "command {\"command\":\"log-level\""), ==, 1);
    ca_log_set_level(before);
    fixture_close(&f);
}

typedef struct {
    const char *path;
    Fixture *f;
} FileWait;

static gboolean
file_exists(gpointer data)
{
    return g_file_test(((FileWait *) data)->path, G_FILE_TEST_EXISTS);
}

static gboolean
has_reboot_failed(gpointer data)
{
    return count_prefix(((FileWait *) data)->f->events, "reboot-failed ") > 0;
}

static void
test_reboot(void)
{
    Fixture f;
    const char *r;

    /* Not allowed (the default). */
    fixture_open(&f, NULL);
    r = dispatch(&f, "reboot", "{\"id\":\"r1\"}");
    g_assert_nonnull(strstr(r, "reboot not allowed ([commands] allow-reboot=false)"));
    g_assert_cmpuint(count_prefix(f.events, "command {\"command\":\"reboot\""), ==, 1);
    g_assert_nonnull(strstr(f.events->pdata[0], "\"ok\":false"));
    fixture_close(&f);

    /* Allowed: answered at once, the recording command runs after the delay. */
    {
        g_autofree char *extra = NULL;
        g_autofree char *marker = NULL;
        FileWait w;

        fixture_open(&f, NULL);
        marker = g_build_filename(f.dir, "rebooted", NULL);
        extra = g_strdup_printf("[commands]\nallow-reboot=true\nreboot-delay=0\n"
                                "reboot-command=/bin/sh -c 'echo reboot > \"%s\"'\n",
                                marker);
        ca_config_unref(f.config);
        f.config = load_config(&f, extra);
        ca_remote_set_config(f.remote, f.config);
        r = dispatch(&f, "reboot", "{\"id\":\"r2\"}");
        g_assert_nonnull(strstr(r, "\"result\":{\"command\":\"/bin/sh\",\"delay\":0}"));
        /* A second request while the first runs is refused. */
        r = dispatch(&f, "reboot", "{\"id\":\"r3\"}");
        g_assert_nonnull(strstr(r, "a reboot is already under way"));
        w.path = marker;
        w.f = &f;
        g_assert_true(loop_until(file_exists, &w, 30));
        fixture_close(&f);
    }

    /* A failing reboot command is reported as an event. */
    {
        FileWait w = {.f = &f};

        fixture_open(&f, "[commands]\nallow-reboot=true\nreboot-delay=0\n"
                         "reboot-command=/bin/false\n");
        r = dispatch(&f, "reboot", "{\"id\":\"r4\"}");
        g_assert_nonnull(strstr(r, "\"ok\":true"));
        g_assert_true(loop_until(has_reboot_failed, &w, 30));
        g_assert_cmpuint(count_prefix(f.events, "reboot-failed {\"error\":\"reboot-command exited "
                                                "with status 1\"}"),
                         ==, 1);
        fixture_close(&f);
    }
}

/*****************************************************************************/
/* SMS commands */

static char *
code_now(gint64 d)
{
    gint64 step = g_get_real_time() / G_USEC_PER_SEC / 30 + d;

    return ca_hotp_format(ca_hotp((const guint8 *) rfc_secret, 20, (guint64) step, 6), 6);
}

static void
test_sms_commands(void)
{
    Fixture f;
    g_autofree char *code = NULL;
    g_autofree char *text = NULL;
    g_autofree char *wrong = NULL;

    fixture_open(&f, NULL);
    /* Ordinary SMS: not consumed, nothing happens. */
    g_assert_false(ca_remote_handle_sms(f.remote, "m1", "+254712345678", "Hello"));
    g_assert_false(ca_remote_handle_sms(f.remote, "m2", "+254799999999", "123456 is your code"));
    g_assert_cmpuint(f.events->len, ==, 0);

    /* Accepted: audit event, the command runs through the registry (source sms) and the
     * reply SMS goes to the normalised sender. */
    code = code_now(0);
    text = g_strdup_printf("%s modem-reset", code);
    g_assert_true(ca_remote_handle_sms(f.remote, "m3", "+254 712 345 678", text));
    g_assert_cmpuint(f.modem_resets, ==, 1);
    g_assert_cmpuint(f.events->len, ==, 2);
    g_assert_true(g_str_has_prefix(f.events->pdata[0],
                                   "sms-command {\"from\":\"+*********678\",\"outcome\":"
                                   "\"accepted\",\"command\":\"modem-reset\",\"failures\":0,"
                                   "\"sms_id\":\"cmd-"));
    /* The audit id is keyed with the secret: the SMS's own id (a plain hash of sender, time
     * and text, from which the code could be recovered by trying all million) never shows. */
    {
        g_autoptr(GBytes) key = g_bytes_new_static(rfc_secret, 20);
        g_autofree char *want = ca_sms_command_audit_id(key, "m3");
        g_autofree char *other = ca_sms_command_audit_id(key, "m4");
        g_autofree char *field = g_strdup_printf("\"sms_id\":\"%s\",\"command_id\":\"sms-", want);

        g_assert_nonnull(strstr(f.events->pdata[0], field));
        g_assert_null(strstr(f.events->pdata[0], "\"m3\""));
        g_assert_cmpstr(want, !=, other);
        g_assert_cmpuint(strlen(want), ==, 4 + 32);
    }
    g_assert_true(g_str_has_prefix(f.events->pdata[1],
                                   "command {\"command\":\"modem-reset\",\"source\":\"sms\","));
    g_assert_cmpuint(f.sms->len, ==, 1);
    g_assert_true(g_str_has_prefix(f.sms->pdata[0], "sms-cmd-"));
    g_assert_true(g_str_has_suffix(f.sms->pdata[0], "-reply|+254712345678|dev1: modem-reset ok"));
    /* The code never shows in events or replies. */
    for (guint i = 0; i < f.events->len; i++)
        g_assert_null(strstr(f.events->pdata[i], code));

    /* Replayed: audited, not run, no reply. */
    g_assert_true(ca_remote_handle_sms(f.remote, "m4", "+254712345678", text));
    g_assert_cmpuint(f.modem_resets, ==, 1);
    g_assert_cmpuint(f.sms->len, ==, 1);
    g_assert_nonnull(strstr(f.events->pdata[2], "\"reason\":\"replayed code\""));

    /* Unknown sender with the next (valid) code: audited, not run, no reply. */
    g_free(text);
    g_free(code);
    code = code_now(1);
    text = g_strdup_printf("%s status", code);
    g_assert_true(ca_remote_handle_sms(f.remote, "m5", "+254799999999", text));
    g_assert_nonnull(strstr(f.events->pdata[3], "\"reason\":\"sender not allowed\""));
    g_assert_cmpuint(f.sms->len, ==, 1);

    /* Wrong code: audited, counted. */
    wrong =
        g_strdup_printf("%06u status", (guint) (g_ascii_strtoull(code, NULL, 10) + 1) % 1000000);
    g_assert_true(ca_remote_handle_sms(f.remote, "m6", "+254722000111", wrong));
    g_assert_nonnull(strstr(f.events->pdata[4], "\"reason\":\"wrong code\""));
    g_assert_cmpuint(f.sms->len, ==, 1);

    /* The status command answers with the status text. */
    g_assert_true(ca_remote_handle_sms(f.remote, "m7", "+254722000111", text));
    g_assert_cmpuint(f.sms->len, ==, 2);
    g_assert_true(g_str_has_suffix(f.sms->pdata[1],
                                   "|+254722000111|dev1: up 0 s; uplink wired; modem 55% Op"));

    fixture_close(&f);

    /* Reboot is authenticated but refused by policy: the reply says so. (A new state
     * directory: one code per 30 s step at most.) */
    fixture_open(&f, NULL);
    {
        g_autofree char *c2 = code_now(0);
        g_autofree char *t2 = g_strdup_printf("%s reboot", c2);
        g_assert_true(ca_remote_handle_sms(f.remote, "m8", "+254722000111", t2));
        g_assert_cmpuint(f.sms->len, ==, 1);
        g_assert_true(g_str_has_suffix(
            f.sms->pdata[0],
            "|dev1: reboot failed: reboot not allowed (commands allow-reboot=false)"));
    }
    fixture_close(&f);
}

static void
test_sms_commands_unavailable(void)
{
    Fixture f;

    fixture_open(&f, NULL);
    /* The secret becomes unreadable by policy (others may read it): after a reload command
     * SMS are still kept off sms/in and audited, never run. */
    g_assert_cmpint(g_chmod(f.secret_file, 0644), ==, 0);
    {
        g_autofree char *b32 = ca_base32_encode((const guint8 *) "abcdefghijklmnopqrst", 20);
        g_assert_true(g_file_set_contents(f.secret_file, b32, -1, NULL));
    }
    ca_remote_set_config(f.remote, f.config);
    g_assert_true(ca_remote_handle_sms(f.remote, "m1", "+254712345678", "123456 modem-reset"));
    g_assert_cmpuint(f.modem_resets, ==, 0);
    g_assert_nonnull(strstr(f.events->pdata[0], "SMS commands unavailable"));
    g_assert_false(ca_remote_handle_sms(f.remote, "m2", "+254712345678", "hello"));
    g_assert_false(ca_remote_handle_sms(f.remote, "m3", "+254712345678", "123456 hello"));
    fixture_close(&f);

    /* Disabled: nothing is a command. */
    fixture_open(&f, "[sms-commands]\nenabled=false\n");
    {
        g_autofree char *code = code_now(0);
        g_autofree char *text = g_strdup_printf("%s modem-reset", code);
        g_assert_false(ca_remote_handle_sms(f.remote, "m1", "+254712345678", text));
    }
    g_assert_cmpuint(f.modem_resets, ==, 0);
    fixture_close(&f);
}

/* The registry's observer is not called after the registry is gone, even for a request
 * answered later. */
static void
hold_handler(CaCommand *cmd, gpointer user_data)
{
    *(CaCommand **) user_data = ca_command_ref(cmd);
}

static void
count_observer(CaCommand *cmd, gboolean ok, const cJSON *result, const char *error,
               gpointer user_data)
{
    (*(guint *) user_data)++;
}

static void
test_observer_lifetime(void)
{
    CaCommands *registry = ca_commands_new();
    CaCommand *held = NULL;
    guint calls = 0;
    const char *payload = "{\"id\":\"h1\"}";

    ca_commands_set_observer(registry, count_observer, &calls);
    ca_commands_register(registry, "hold", hold_handler, &held, NULL);
    ca_commands_dispatch(registry, "hold", payload, strlen(payload), "mqtt", NULL, NULL, NULL);
    g_assert_nonnull(held);
    g_assert_cmpuint(calls, ==, 0);
    ca_commands_free(registry);
    ca_command_return_ok(held, NULL);
    ca_command_unref(held);
    g_assert_cmpuint(calls, ==, 0);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ca_log_init(CA_LOG_WARNING, FALSE);
    g_test_add_func("/remote/args-and-events", test_args_and_events);
    g_test_add_func("/remote/log-level", test_log_level);
    g_test_add_func("/remote/reboot", test_reboot);
    g_test_add_func("/remote/sms-commands", test_sms_commands);
    g_test_add_func("/remote/sms-commands-unavailable", test_sms_commands_unavailable);
    g_test_add_func("/remote/observer-lifetime", test_observer_lifetime);
    return g_test_run();
}
