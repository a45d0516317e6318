/* Unit tests for the command registry: id and name rules, request parsing, result
 * encoding, dispatch (sync and async answers, unknown, invalid, oversized, duplicates,
 * handlers that never answer). The MQTT transport is covered by test_mqtt_commands.py. */
#define CA_LOG_MODULE "test"
#include "autocleanups.h"
#include "commands.h"
#include "error.h"
#include "log.h"
#include "timestamp.h"

#include <glib/gstdio.h>
#include <string.h>

static void
test_id_rules(void)
{
    static const struct {
        const char *id;
        gboolean valid;
    } cases[] = {
        {"a", TRUE},
        {"req-1", TRUE},
        {"A.b_c:d-9", TRUE},
        {"0123456789012345678901234567890123456789012345678901234567890123", TRUE},   /* 64 */
        {"01234567890123456789012345678901234567890123456789012345678901234", FALSE}, /* 65 */
        {"", FALSE},
        {"a b", FALSE},
        {"a/b", FALSE},
        {"a+b", FALSE},
        {"a#", FALSE},
        {"é", FALSE},
        {NULL, FALSE},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        g_assert_cmpint(ca_request_id_is_valid(cases[i].id), ==, cases[i].valid);
}

static void
test_name_rules(void)
{
    static const struct {
        const char *name;
        gboolean valid;
    } cases[] = {
        {"ping", TRUE},
        {"modem-reset", TRUE},
        {"sms-resync", TRUE},
        {"x1", TRUE},
        {"Ping", FALSE},
        {"", FALSE},
        {"a/b", FALSE},
        {"a_b", FALSE},
        {"+", FALSE},
        {NULL, FALSE},
        {"abcdefghijklmnopqrstuvwxyz0123456", FALSE}, /* 33 */
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        g_assert_cmpint(ca_command_name_is_valid(cases[i].name), ==, cases[i].valid);
}

static void
test_parse(void)
{
    static const struct {
        const char *payload;
        gboolean ok;
        const char *id;    /* expected *out_id */
        gboolean has_args; /* expected *out_args != NULL */
        const char *error; /* substring of the error */
    } cases[] = {
        {"{\"id\":\"r1\"}", TRUE, "r1", FALSE, NULL},
        {"{\"id\":\"r1\",\"args\":{\"a\":1}}", TRUE, "r1", TRUE, NULL},
        {"{\"id\":\"r1\",\"args\":null}", TRUE, "r1", FALSE, NULL},
        {"{\"id\":", FALSE, NULL, FALSE, "invalid JSON"},
        {"", FALSE, NULL, FALSE, "invalid JSON"},
        {"[1,2]", FALSE, NULL, FALSE, "not a JSON object"},
        {"{}", FALSE, NULL, FALSE, "missing id"},
        {"{\"id\":7}", FALSE, NULL, FALSE, "invalid id"},
        {"{\"id\":\"\"}", FALSE, NULL, FALSE, "invalid id"},
        {"{\"id\":\"a b\"}", FALSE, NULL, FALSE, "invalid id"},
        {"{\"id\":\"r2\",\"args\":[1]}", FALSE, "r2", FALSE, "invalid args"},
        /* Strict: what cJSON alone would accept or silently change. */
        {"{\"id\":\"r3\\u0000x\"}", FALSE, NULL, FALSE, "NUL character"},
        {"{\"id\":\"r4\",\"args\":{\"level\":\"de\\u0000bug\"}}", FALSE, NULL, FALSE,
         "NUL character"},
        {"{\"id\":\"r5\",\"id\":\"r6\"}", FALSE, NULL, FALSE, "given more than once"},
        {"{\"id\":\"r7\",\"args\":{\"a\":1,\"a\":2}}", FALSE, NULL, FALSE, "given more than once"},
        {"{\"id\":\"r8\"} junk", FALSE, NULL, FALSE, "data after the JSON value"},
        {"{\"id\":\"r9\"}{}", FALSE, NULL, FALSE, "data after the JSON value"},
        {"{\"id\":\"r10\"}  \n", TRUE, "r10", FALSE, NULL},
        {"{\"id\":\"r11\",\"args\":{\"a\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}}", FALSE, NULL,
         FALSE, "nested deeper"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *id = NULL;
        g_autoptr(cJSON) args = NULL;
        g_autoptr(GError) error = NULL;
        gint64 expires = -1;
        gboolean ok = ca_command_parse_request(cases[i].payload, strlen(cases[i].payload), &id,
                                               &args, &expires, &error);

        g_assert_cmpint(ok, ==, cases[i].ok);
        g_assert_cmpstr(id, ==, cases[i].id);
        g_assert_cmpint(args != NULL, ==, cases[i].has_args);
        if (ok) {
            g_assert_no_error(error);
        } else {
            g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT);
            g_assert_nonnull(strstr(error->message, cases[i].error));
        }
    }
}

static void
test_parse_oversized(void)
{
    gsize n = CA_COMMAND_MAX_PAYLOAD + 1;
    g_autofree char *big = g_malloc(n);
    g_autofree char *id = NULL;
    g_autoptr(cJSON) args = NULL;
    g_autoptr(GError) error = NULL;
    gint64 expires = 0;

    /* Valid JSON, but too large: refused by size, not parsed. */
    memset(big, ' ', n);
    memcpy(big, "{\"id\":\"r1\"}", 11);
    g_assert_false(ca_command_parse_request(big, n, &id, &args, &expires, &error));
    g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT);
    g_assert_nonnull(strstr(error->message, "too large"));
    g_assert_null(id);
}

static void
test_encode(void)
{
    g_autoptr(cJSON) result = cJSON_CreateObject();
    g_autofree char *ok = NULL;
    g_autofree char *err = NULL;
    g_autofree char *anon = NULL;

    cJSON_AddNumberToObject(result, "n", 3);
    ok = ca_command_encode_result("r1", TRUE, result, NULL, G_GINT64_CONSTANT(1700000000000000));
    g_assert_cmpstr(
        ok, ==, "{\"id\":\"r1\",\"ok\":true,\"ts\":\"2023-11-14T22:13:20Z\",\"result\":{\"n\":3}}");
    err = ca_command_encode_result("r1", FALSE, NULL, "unknown command",
                                   G_GINT64_CONSTANT(1700000000000000));
    g_assert_cmpstr(err, ==,
                    "{\"id\":\"r1\",\"ok\":false,\"ts\":\"2023-11-14T22:13:20Z\",\"error\":"
                    "\"unknown command\"}");
    anon = ca_command_encode_result(NULL, FALSE, NULL, "invalid JSON", 0);
    g_assert_true(g_str_has_prefix(anon, "{\"id\":null,\"ok\":false,"));
}

/*****************************************************************************/
/* Dispatch */

typedef struct {
    GPtrArray *replies; /* char* */
    int destroyed;
    CaCommand *held;
    int runs;
} Fixture;

static void
reply_cb(CaCommand *cmd, const char *json, gpointer user_data)
{
    Fixture *f = user_data;
    g_ptr_array_add(f->replies, g_strdup(json));
}

static void
reply_destroy(gpointer user_data)
{
    Fixture *f = user_data;
    f->destroyed++;
}

static void
dispatch(CaCommands *reg, Fixture *f, const char *name, const char *payload)
{
    ca_commands_dispatch(reg, name, payload, strlen(payload), "test", reply_cb, f, reply_destroy);
}

static cJSON *
last_reply(Fixture *f)
{
    g_assert_cmpuint(f->replies->len, >, 0);
    return cJSON_Parse(f->replies->pdata[f->replies->len - 1]);
}

static void
echo_handler(CaCommand *cmd, gpointer user_data)
{
    Fixture *f = user_data;
    const cJSON *args = ca_command_get_args(cmd);

    f->runs++;
    g_assert_cmpstr(ca_command_get_source(cmd), ==, "test");
    ca_command_return_ok(cmd, args ? cJSON_Duplicate(args, TRUE) : NULL);
}

static void
later_handler(CaCommand *cmd, gpointer user_data)
{
    Fixture *f = user_data;

    f->runs++;
    f->held = ca_command_ref(cmd);
}

static void
silent_handler(CaCommand *cmd, gpointer user_data)
{
    Fixture *f = user_data;
    f->runs++;
}

static void
test_dispatch(void)
{
    g_autoptr(CaCommands) reg = ca_commands_new();
    Fixture f = {g_ptr_array_new_with_free_func(g_free), 0, NULL, 0};
    g_autoptr(cJSON) r = NULL;

    g_assert_true(ca_commands_register(reg, "echo", echo_handler, &f, NULL));
    g_assert_true(ca_commands_register(reg, "later", later_handler, &f, NULL));
    g_assert_true(ca_commands_register(reg, "silent", silent_handler, &f, NULL));
    g_assert_true(ca_commands_has(reg, "echo"));
    g_assert_false(ca_commands_has(reg, "nope"));

    /* Synchronous answer, args echoed. */
    dispatch(reg, &f, "echo", "{\"id\":\"e1\",\"args\":{\"x\":\"y\"}}");
    r = last_reply(&f);
    g_assert_cmpstr(cJSON_GetObjectItem(r, "id")->valuestring, ==, "e1");
    g_assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")));
    g_assert_cmpstr(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"), "x")->valuestring, ==,
                    "y");
    g_assert_cmpint(f.destroyed, ==, 1);
    g_clear_pointer(&r, cJSON_Delete);

    /* Unknown command. */
    dispatch(reg, &f, "nope", "{\"id\":\"n1\"}");
    r = last_reply(&f);
    g_assert_false(cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")));
    g_assert_cmpstr(cJSON_GetObjectItem(r, "error")->valuestring, ==, "unknown command");
    g_assert_cmpstr(cJSON_GetObjectItem(r, "id")->valuestring, ==, "n1");
    g_clear_pointer(&r, cJSON_Delete);

    /* Invalid JSON never reaches the handler. */
    dispatch(reg, &f, "echo", "{nope");
    r = last_reply(&f);
    g_assert_cmpstr(cJSON_GetObjectItem(r, "error")->valuestring, ==, "invalid JSON");
    g_assert_true(cJSON_IsNull(cJSON_GetObjectItem(r, "id")));
    g_clear_pointer(&r, cJSON_Delete);
    g_assert_cmpint(f.runs, ==, 1);

    /* Asynchronous answer. */
    dispatch(reg, &f, "later", "{\"id\":\"l1\"}");
    g_assert_cmpuint(f.replies->len, ==, 3);
    g_assert_nonnull(f.held);
    g_assert_false(ca_command_is_answered(f.held));
    g_assert_cmpstr(ca_command_get_name(f.held), ==, "later");
    g_assert_cmpstr(ca_command_get_id(f.held), ==, "l1");
    /* The same id again while running: not run twice, no answer. */
    dispatch(reg, &f, "later", "{\"id\":\"l1\"}");
    g_assert_cmpint(f.runs, ==, 2);
    g_assert_cmpuint(f.replies->len, ==, 3);
    ca_command_return_error(f.held, "modem %s", "absent");
    g_assert_true(ca_command_is_answered(f.held));
    g_clear_pointer(&f.held, ca_command_unref);
    r = last_reply(&f);
    g_assert_cmpstr(cJSON_GetObjectItem(r, "error")->valuestring, ==, "modem absent");
    g_clear_pointer(&r, cJSON_Delete);

    /* A repeat after the answer gets the same answer, without running again. */
    dispatch(reg, &f, "later", "{\"id\":\"l1\"}");
    g_assert_cmpint(f.runs, ==, 2);
    g_assert_cmpstr(f.replies->pdata[f.replies->len - 1], ==, f.replies->pdata[f.replies->len - 2]);

    /* A long answer is sent whole, but remembered without its result: a repeat is not run
     * again and learns how long the answer was. */
    {
        g_autofree char *big = g_strnfill(400, 'v');
        g_autofree char *req = g_strdup_printf("{\"id\":\"e2\",\"args\":{\"x\":\"%s\"}}", big);
        const cJSON *kept;

        dispatch(reg, &f, "echo", req);
        r = last_reply(&f);
        g_assert_cmpstr(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"), "x")->valuestring, ==,
                        big);
        g_clear_pointer(&r, cJSON_Delete);
        g_assert_cmpint(f.runs, ==, 3);
        dispatch(reg, &f, "echo", req);
        g_assert_cmpint(f.runs, ==, 3);
        r = last_reply(&f);
        g_assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")));
        g_assert_cmpstr(cJSON_GetObjectItem(r, "id")->valuestring, ==, "e2");
        kept = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"), "not_kept");
        g_assert_true(cJSON_IsNumber(kept));
        g_assert_cmpint((int) kept->valuedouble, >, 400);
        g_assert_null(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"), "x"));
        g_clear_pointer(&r, cJSON_Delete);
    }

    /* A handler that drops the request unanswered: answered for it. */
    dispatch(reg, &f, "silent", "{\"id\":\"s1\"}");
    r = last_reply(&f);
    g_assert_false(cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")));
    g_assert_nonnull(strstr(cJSON_GetObjectItem(r, "error")->valuestring, "no result"));
    g_clear_pointer(&r, cJSON_Delete);

    /* Registration rules. */
    g_assert_false(ca_commands_register(reg, "echo", echo_handler, &f, NULL));
    g_assert_false(ca_commands_register(reg, "Bad/Name", echo_handler, &f, NULL));
    ca_commands_unregister(reg, "echo");
    g_assert_false(ca_commands_has(reg, "echo"));
    g_ptr_array_unref(f.replies);
}

static void
test_oversized_dispatch(void)
{
    g_autoptr(CaCommands) reg = ca_commands_new();
    Fixture f = {g_ptr_array_new_with_free_func(g_free), 0, NULL, 0};
    gsize n = CA_COMMAND_MAX_PAYLOAD + 100;
    g_autofree char *big = g_malloc0(n + 1);
    g_autoptr(cJSON) r = NULL;

    ca_commands_register(reg, "echo", echo_handler, &f, NULL);
    memset(big, 'x', n);
    ca_commands_dispatch(reg, "echo", big, n, "test", reply_cb, &f, NULL);
    r = last_reply(&f);
    g_assert_nonnull(strstr(cJSON_GetObjectItem(r, "error")->valuestring, "too large"));
    g_assert_cmpint(f.runs, ==, 0);
    g_ptr_array_unref(f.replies);
}

static void
test_recent_bounded(void)
{
    g_autoptr(CaCommands) reg = ca_commands_new();
    Fixture f = {g_ptr_array_new_with_free_func(g_free), 0, NULL, 0};

    ca_commands_register(reg, "echo", echo_handler, &f, NULL);
    /* Far more distinct ids than remembered: each runs once; the first, long forgotten,
     * runs again. */
    for (int i = 0; i < 2000; i++) {
        g_autofree char *p = g_strdup_printf("{\"id\":\"i%d\"}", i);
        dispatch(reg, &f, "echo", p);
    }
    g_assert_cmpint(f.runs, ==, 2000);
    dispatch(reg, &f, "echo", "{\"id\":\"i0\"}");
    g_assert_cmpint(f.runs, ==, 2001);
    dispatch(reg, &f, "echo", "{\"id\":\"i1999\"}");
    g_assert_cmpint(f.runs, ==, 2001);
    g_ptr_array_unref(f.replies);
}

/* "expires": a request that arrives late (the device was offline) is refused, not run;
 * the refusal is remembered like an answer. */
static void
test_expires(void)
{
    g_autoptr(CaCommands) reg = ca_commands_new();
    Fixture f = {g_ptr_array_new_with_free_func(g_free), 0, NULL, 0};
    g_autoptr(cJSON) r = NULL;
    g_autofree char *future =
        ca_timestamp_format(g_get_real_time() + G_GINT64_CONSTANT(3600) * G_USEC_PER_SEC);
    g_autofree char *ok_req = g_strdup_printf("{\"id\":\"x2\",\"expires\":\"%s\"}", future);
    const char *bad_req = "{\"id\":\"x3\",\"expires\":12}";
    gint64 expires = 0;
    g_autofree char *id = NULL;
    g_autoptr(cJSON) args = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_true(ca_commands_register(reg, "echo", echo_handler, &f, NULL));
    dispatch(reg, &f, "echo", "{\"id\":\"x1\",\"expires\":\"2020-01-01T00:00:00Z\"}");
    r = last_reply(&f);
    g_assert_false(cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")));
    g_assert_cmpstr(cJSON_GetObjectItem(r, "error")->valuestring, ==,
                    "expired at 2020-01-01T00:00:00Z");
    g_assert_cmpint(f.runs, ==, 0);
    g_clear_pointer(&r, cJSON_Delete);
    dispatch(reg, &f, "echo", ok_req);
    g_assert_cmpint(f.runs, ==, 1);
    /* Malformed: refused with the reason. */
    g_assert_false(
        ca_command_parse_request(bad_req, strlen(bad_req), &id, &args, &expires, &error));
    g_assert_nonnull(strstr(error->message, "invalid expires"));
    g_ptr_array_unref(f.replies);
}

/* Request ids survive a restart: a repeat (a retained message, a redelivery) is answered
 * from the journal and never run again; one that was running when the agent stopped is
 * answered "interrupted". */
static void
test_journal(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-commands-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "commands.journal", NULL);
    g_autofree char *crashed = g_build_filename(dir, "crashed.journal", NULL);
    g_autofree char *snapshot = NULL;
    gsize snapshot_len = 0;
    Fixture f = {g_ptr_array_new_with_free_func(g_free), 0, NULL, 0};
    g_autoptr(GError) error = NULL;
    g_autoptr(cJSON) r = NULL;

    {
        g_autoptr(CaCommands) reg = ca_commands_new();

        g_assert_true(ca_commands_set_journal(reg, path, &error));
        g_assert_no_error(error);
        g_assert_true(ca_commands_register(reg, "echo", echo_handler, &f, NULL));
        g_assert_true(ca_commands_register(reg, "later", later_handler, &f, NULL));
        dispatch(reg, &f, "echo", "{\"id\":\"j1\",\"args\":{\"a\":1}}");
        dispatch(reg, &f, "later", "{\"id\":\"j2\"}");
        g_assert_cmpint(f.runs, ==, 2);
        /* The agent dies while "later" runs: the journal as it is on disk now. */
        g_assert_true(g_file_get_contents(path, &snapshot, &snapshot_len, NULL));
        g_assert_true(g_file_set_contents(crashed, snapshot, (gssize) snapshot_len, NULL));
        g_clear_pointer(&f.held, ca_command_unref);
    }
    {
        g_autoptr(CaCommands) reg = ca_commands_new();
        guint before;

        g_assert_true(ca_commands_set_journal(reg, crashed, &error));
        g_assert_true(ca_commands_register(reg, "echo", echo_handler, &f, NULL));
        g_assert_true(ca_commands_register(reg, "later", later_handler, &f, NULL));
        before = f.replies->len;
        dispatch(reg, &f, "echo", "{\"id\":\"j1\",\"args\":{\"a\":1}}");
        g_assert_cmpint(f.runs, ==, 2);
        g_assert_cmpuint(f.replies->len, ==, before + 1);
        r = last_reply(&f);
        g_assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")));
        g_clear_pointer(&r, cJSON_Delete);
        dispatch(reg, &f, "later", "{\"id\":\"j2\"}");
        g_assert_cmpint(f.runs, ==, 2);
        r = last_reply(&f);
        g_assert_false(cJSON_IsTrue(cJSON_GetObjectItem(r, "ok")));
        g_assert_nonnull(strstr(cJSON_GetObjectItem(r, "error")->valuestring, "interrupted"));
        g_clear_pointer(&r, cJSON_Delete);
        /* A new id still runs. */
        dispatch(reg, &f, "echo", "{\"id\":\"j3\"}");
        g_assert_cmpint(f.runs, ==, 3);
    }
    /* A read-only command's ids are remembered in memory only: a repeat in the same run is
     * answered, never run; nothing reaches the journal, so after a restart it runs again. */
    {
        g_autoptr(CaCommands) reg = ca_commands_new();
        g_autofree char *text = NULL;

        g_assert_true(ca_commands_set_journal(reg, path, &error));
        g_assert_true(ca_commands_register(reg, "peek", echo_handler, &f, NULL));
        g_assert_true(ca_commands_set_read_only(reg, "peek"));
        g_assert_false(ca_commands_set_read_only(reg, "nope"));
        dispatch(reg, &f, "peek", "{\"id\":\"r1\"}");
        g_assert_cmpint(f.runs, ==, 4);
        dispatch(reg, &f, "peek", "{\"id\":\"r1\"}");
        g_assert_cmpint(f.runs, ==, 4);
        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        g_assert_null(strstr(text, "peek"));
        g_assert_nonnull(strstr(text, "j1"));
    }
    {
        g_autoptr(CaCommands) reg = ca_commands_new();

        g_assert_true(ca_commands_set_journal(reg, path, &error));
        g_assert_true(ca_commands_register(reg, "peek", echo_handler, &f, NULL));
        g_assert_true(ca_commands_set_read_only(reg, "peek"));
        dispatch(reg, &f, "peek", "{\"id\":\"r1\"}");
        g_assert_cmpint(f.runs, ==, 5);
    }
    g_ptr_array_unref(f.replies);
    g_remove(path);
    g_remove(crashed);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ca_log_init(CA_LOG_ERROR, FALSE);
    g_test_add_func("/commands/id-rules", test_id_rules);
    g_test_add_func("/commands/name-rules", test_name_rules);
    g_test_add_func("/commands/parse", test_parse);
    g_test_add_func("/commands/parse-oversized", test_parse_oversized);
    g_test_add_func("/commands/encode", test_encode);
    g_test_add_func("/commands/dispatch", test_dispatch);
    g_test_add_func("/commands/dispatch-oversized", test_oversized_dispatch);
    g_test_add_func("/commands/recent-bounded", test_recent_bounded);
    g_test_add_func("/commands/expires", test_expires);
    g_test_add_func("/commands/journal", test_journal);
    return g_test_run();
}
