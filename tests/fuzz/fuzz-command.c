/* fuzz-command: remote command requests, the payload of <base>/cmd/<name> (docs/mqtt.md, docs/commands.md),
 * through ca_commands_dispatch as the MQTT transport hands them over. The first input byte
 * picks how the handler answers (at once with the args echoed, with an error, later, or
 * never); the rest is the payload. Every request must get exactly one answer, a JSON object
 * {"id": a valid id or null, "ok": bool, "ts": ISO 8601 UTC} with "error" when not ok;
 * the same request again (same id) gets the same answer and does not run the handler twice. */
#include "commands.h"
#include "error.h"
#include "fuzz.h"

#include <string.h>

typedef enum {
    ANSWER_ECHO,  /* ok, result = a copy of args */
    ANSWER_ERROR, /* ok:false */
    ANSWER_LATER, /* keeps a reference, answers after dispatch returned */
    ANSWER_NEVER, /* returns without answering: the last unref answers "no result" */
    ANSWER_N_MODES,
} AnswerMode;

typedef struct {
    AnswerMode mode;
    int runs;         /* handler calls */
    CaCommand *later; /* ANSWER_LATER: the request to answer */
    int replies;      /* answers delivered */
    char *last;       /* the last answer's JSON */
    char *first;      /* the first answer's JSON */
} Ctx;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ca_fuzz_init();
    return 0;
}

static void
handler(CaCommand *cmd, gpointer user_data)
{
    Ctx *ctx = user_data;

    ctx->runs++;
    ca_fuzz_assert(ca_request_id_is_valid(ca_command_get_id(cmd)));
    ca_fuzz_assert(strcmp(ca_command_get_name(cmd), "echo") == 0);
    switch (ctx->mode) {
    case ANSWER_ECHO: {
        const cJSON *args = ca_command_get_args(cmd);
        ca_command_return_ok(cmd, args ? cJSON_Duplicate(args, TRUE) : NULL);
        break;
    }
    case ANSWER_ERROR:
        ca_command_return_error(cmd, "refused %s", ca_command_get_id(cmd));
        break;
    case ANSWER_LATER:
        ctx->later = ca_command_ref(cmd);
        break;
    case ANSWER_NEVER:
    case ANSWER_N_MODES:
        break;
    }
}

static void
reply(CaCommand *cmd, const char *result_json, gpointer user_data)
{
    Ctx *ctx = user_data;

    ctx->replies++;
    g_free(ctx->last);
    ctx->last = g_strdup(result_json);
    if (!ctx->first)
        ctx->first = g_strdup(result_json);
}

/* The answer's shape (docs/mqtt.md, "Topics owned by this module"): id, ok, ts; error when not ok. */
static void
check_answer(const char *json)
{
    cJSON *root = cJSON_Parse(json);
    const cJSON *id, *ok, *ts, *error;

    ca_fuzz_assert(root != NULL && cJSON_IsObject(root));
    id = cJSON_GetObjectItemCaseSensitive(root, "id");
    ok = cJSON_GetObjectItemCaseSensitive(root, "ok");
    ts = cJSON_GetObjectItemCaseSensitive(root, "ts");
    error = cJSON_GetObjectItemCaseSensitive(root, "error");
    ca_fuzz_assert(cJSON_IsNull(id) ||
                   (cJSON_IsString(id) && ca_request_id_is_valid(id->valuestring)));
    ca_fuzz_assert(cJSON_IsBool(ok));
    ca_fuzz_assert(cJSON_IsString(ts) && g_str_has_suffix(ts->valuestring, "Z"));
    ca_fuzz_assert(cJSON_IsTrue(ok) || cJSON_IsString(error));
    cJSON_Delete(root);
}

/* The pure parser on its own: a request or an error, the id valid whenever it is set. */
static void
check_parse(const char *payload, gsize len)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *id = NULL;
    cJSON *args = NULL;
    gint64 expires = 0;
    gboolean ok = ca_command_parse_request(payload, len, &id, &args, &expires, &error);

    ca_fuzz_assert(ok == (error == NULL));
    ca_fuzz_assert(!ok || id != NULL);
    ca_fuzz_assert(id == NULL || ca_request_id_is_valid(id));
    if (!ok) {
        ca_fuzz_assert(g_error_matches(error, CA_ERROR, CA_ERROR_INVALID_INPUT));
        ca_fuzz_assert(args == NULL);
    }
    cJSON_Delete(args);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Ctx ctx = {0};
    CaCommands *commands;
    const char *payload;
    gsize len;

    if (size < 1)
        return 0;
    ctx.mode = data[0] % ANSWER_N_MODES;
    payload = (const char *) data + 1;
    len = size - 1;
    check_parse(payload, len);

    commands = ca_commands_new();
    ca_fuzz_assert(ca_commands_register(commands, "echo", handler, &ctx, NULL));
    ca_commands_dispatch(commands, "echo", payload, len, "fuzz", reply, &ctx, NULL);
    if (ctx.later) {
        ca_fuzz_assert(ctx.replies == 0);
        ca_command_return_ok(ctx.later, cJSON_CreateString("later"));
        g_clear_pointer(&ctx.later, ca_command_unref);
    }
    ca_fuzz_assert(ctx.replies == 1);
    check_answer(ctx.last);

    /* The same request again: answered the same (when it ran), never run twice. */
    ca_commands_dispatch(commands, "echo", payload, len, "fuzz", reply, &ctx, NULL);
    ca_fuzz_assert(ctx.runs <= 1);
    ca_fuzz_assert(ctx.replies <= 2);
    if (ctx.runs == 1) {
        ca_fuzz_assert(ctx.replies == 2);
        /* The first answer again, or, when it was too long to keep, its length only. */
        if (strlen(ctx.first) <= CA_COMMAND_ANSWER_KEPT_MAX)
            ca_fuzz_assert(strcmp(ctx.first, ctx.last) == 0);
        else
            ca_fuzz_assert(
                strlen(ctx.last) <= CA_COMMAND_ANSWER_KEPT_MAX &&
                (strstr(ctx.last, "\"not_kept\":") || strstr(ctx.last, "too long to keep")));
    }
    g_clear_pointer(&ctx.later, ca_command_unref);
    ca_commands_free(commands);
    g_free(ctx.first);
    g_free(ctx.last);
    return 0;
}
