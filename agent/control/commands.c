/* commands: registry, request validation, one answer per request, duplicate ids.
 * A request is validated before any handler runs (size, JSON, id, args); the answer goes
 * through the transport's reply function. QoS 1 can deliver a request twice: a repeated
 * (name, id) is not run again; if it was answered, the same answer is sent again. */
#define CA_LOG_MODULE "commands"
#include "commands.h"

#include "autocleanups.h"
#include "dedupe.h"
#include "error.h"
#include "json-strict.h"
#include "log.h"
#include "timestamp.h"

#include <stdarg.h>
#include <string.h>

#define RECENT_MAX 1000 /* (name, id) pairs remembered for duplicate detection */

typedef struct {
    CaCommandHandler handler;
    gpointer user_data;
    GDestroyNotify destroy;
    gboolean read_only; /* ids remembered in memory only (ca_commands_set_read_only) */
} Entry;

/* Shared by the registry and its requests: outlives the registry while requests run. */
typedef struct {
    gint ref;
    GHashTable *recent;         /* "name\037id" -> result JSON text, or "" while running */
    GQueue recent_order;        /* keys, oldest first (owned by the hash table) */
    CaCommandObserver observer; /* cleared when the registry goes */
    gpointer observer_data;
    CaDedupe *journal; /* the same pairs on disk (ca_commands_set_journal), or NULL */
} Recent;

struct _CaCommands {
    GHashTable *entries; /* name -> Entry* */
    Recent *recent;
    CaCommandValidator validator;
    gpointer validator_data;
};

struct _CaCommand {
    gint ref;
    char *name;
    char *id; /* NULL only for requests answered before dispatch (invalid) */
    cJSON *args;
    char *source;
    gboolean answered;
    CaCommandReplyFunc reply;
    gpointer reply_data;
    GDestroyNotify reply_destroy;
    Recent *recent;
    gboolean durable; /* its id goes to the journal (not a read-only command) */
};

/*****************************************************************************/
/* Pure helpers */

gboolean
ca_command_name_is_valid(const char *name)
{
    gsize n = 0;

    if (!name)
        return FALSE;
    for (const char *p = name; *p; p++, n++) {
        if (!(g_ascii_islower(*p) || g_ascii_isdigit(*p) || *p == '-'))
            return FALSE;
    }
    return n >= 1 && n <= CA_COMMAND_MAX_NAME;
}

gboolean
ca_command_parse_request(const char *payload, gsize len, char **out_id, cJSON **out_args,
                         gint64 *out_expires_us, GError **error)
{
    g_autoptr(cJSON) root = NULL;
    g_autoptr(GError) local = NULL;
    const cJSON *id;
    const cJSON *expires;
    cJSON *args;

    *out_id = NULL;
    *out_args = NULL;
    *out_expires_us = 0;
    if (len > CA_COMMAND_MAX_PAYLOAD) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                    "payload too large (%zu bytes, limit %d)", len, CA_COMMAND_MAX_PAYLOAD);
        return FALSE;
    }
    root = ca_json_parse_strict(payload, len, &local);
    if (!root) {
        /* "invalid JSON" alone for text that is no JSON at all, as documented; the reason
         * for JSON that is refused although cJSON would take it. */
        if (g_str_equal(local->message, "payload: not valid JSON"))
            g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "invalid JSON");
        else
            g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "invalid JSON (%s)",
                        local->message);
        return FALSE;
    }
    /* Before the id is read: a truncated or ambiguous id must not name the answer. */
    if (!ca_json_check_strict(root, payload, len, &local)) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "invalid request (%s)",
                    local->message);
        return FALSE;
    }
    if (!cJSON_IsObject(root)) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                            "invalid request: not a JSON object");
        return FALSE;
    }
    id = cJSON_GetObjectItemCaseSensitive(root, "id");
    if (!id) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "missing id");
        return FALSE;
    }
    if (!cJSON_IsString(id) || !ca_request_id_is_valid(id->valuestring)) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                            "invalid id: must be a string of 1-64 of A-Z a-z 0-9 . _ : -");
        return FALSE;
    }
    *out_id = g_strdup(id->valuestring);
    expires = cJSON_GetObjectItemCaseSensitive(root, "expires");
    if (expires) {
        g_autoptr(GDateTime) t = cJSON_IsString(expires)
                                     ? g_date_time_new_from_iso8601(expires->valuestring, NULL)
                                     : NULL;

        if (!t) {
            g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                                "invalid expires: must be an RFC 3339 time with a zone "
                                "(2026-12-05T10:00:00Z)");
            return FALSE;
        }
        *out_expires_us = g_date_time_to_unix(t) * G_USEC_PER_SEC;
    }
    args = cJSON_GetObjectItemCaseSensitive(root, "args");
    if (args && !cJSON_IsNull(args)) {
        if (!cJSON_IsObject(args)) {
            g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                                "invalid args: must be a JSON object");
            return FALSE;
        }
        *out_args = cJSON_DetachItemViaPointer(root, args);
    }
    return TRUE;
}

char *
ca_command_encode_result(const char *id, gboolean ok, const cJSON *result, const char *error,
                         gint64 real_time_us)
{
    g_autoptr(cJSON) root = cJSON_CreateObject();
    g_autofree char *ts = ca_timestamp_format(real_time_us);

    if (id)
        cJSON_AddStringToObject(root, "id", id);
    else
        cJSON_AddNullToObject(root, "id");
    cJSON_AddBoolToObject(root, "ok", ok);
    cJSON_AddStringToObject(root, "ts", ts);
    if (ok && result)
        cJSON_AddItemToObject(root, "result", cJSON_Duplicate(result, TRUE));
    else if (!ok)
        cJSON_AddStringToObject(root, "error", error ? error : "failed");
    return cJSON_PrintUnformatted(root);
}

/*****************************************************************************/
/* Duplicate detection */

static Recent *
recent_new(void)
{
    Recent *r = g_new0(Recent, 1);

    r->ref = 1;
    r->recent = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_queue_init(&r->recent_order);
    return r;
}

static Recent *
recent_ref(Recent *r)
{
    r->ref++;
    return r;
}

static void
recent_unref(Recent *r)
{
    if (!r || --r->ref > 0)
        return;
    g_queue_clear(&r->recent_order);
    g_hash_table_unref(r->recent);
    g_clear_pointer(&r->journal, ca_dedupe_free);
    g_free(r);
}

static char *
recent_key(const char *name, const char *id)
{
    return g_strconcat(name, "\037", id, NULL);
}

/* Remember (name, id) with its answer ("" while running), on disk too when there is a
 * journal: written before the handler runs, so a request repeated after a restart (or a
 * reboot the command itself caused) is never run again. */
static void
recent_put(Recent *r, const char *name, const char *id, const char *result, gboolean durable)
{
    char *key = recent_key(name, id);

    if (r->journal && durable) {
        g_autoptr(cJSON) value = cJSON_CreateObject();
        g_autoptr(GError) error = NULL;

        cJSON_AddStringToObject(value, "r", result);
        if (!ca_dedupe_record(r->journal, key, value, g_get_real_time() / G_USEC_PER_SEC, &error))
            ca_warn("command \"%s\" id \"%s\" not recorded (%s): a repeat after a restart "
                    "could run it again",
                    name, id, error->message);
    }
    if (g_hash_table_contains(r->recent, key)) {
        g_hash_table_insert(r->recent, key, g_strdup(result)); /* keeps the stored key */
        return;
    }
    g_hash_table_insert(r->recent, key, g_strdup(result));
    g_queue_push_tail(&r->recent_order, key);
    while (r->recent_order.length > RECENT_MAX)
        g_hash_table_remove(r->recent, g_queue_pop_head(&r->recent_order));
}

/*****************************************************************************/
/* Requests */

static CaCommand *
command_new(const char *name, const char *source, CaCommandReplyFunc reply, gpointer reply_data,
            GDestroyNotify reply_destroy)
{
    CaCommand *cmd = g_new0(CaCommand, 1);

    cmd->ref = 1;
    cmd->name = g_strdup(name);
    cmd->source = g_strdup(source ? source : "unknown");
    cmd->reply = reply;
    cmd->reply_data = reply_data;
    cmd->reply_destroy = reply_destroy;
    return cmd;
}

static void
answer(CaCommand *cmd, gboolean ok, cJSON *result, const char *error)
{
    g_autofree char *text = NULL;

    if (cmd->answered) {
        ca_warn("command \"%s\" id \"%s\" answered twice, ignoring the second answer", cmd->name,
                cmd->id ? cmd->id : "(none)");
        cJSON_Delete(result);
        return;
    }
    cmd->answered = TRUE;
    text = ca_command_encode_result(cmd->id, ok, result, error, g_get_real_time());
    if (ok)
        ca_info("command \"%s\" id \"%s\" from %s: ok", cmd->name, cmd->id, cmd->source);
    else
        ca_msg("command \"%s\" id \"%s\" from %s failed: %s", cmd->name,
               cmd->id ? cmd->id : "(none)", cmd->source, error);
    if (cmd->recent && cmd->id) {
        g_autofree char *kept = NULL;

        /* A long answer is remembered without its result: a repeat is still never run
         * again, but a thousand telemetry or status answers do not sit in memory and in the
         * journal (twice, during compaction), and their identities are not kept on disk. */
        if (strlen(text) > CA_COMMAND_ANSWER_KEPT_MAX) {
            g_autoptr(cJSON) note = cJSON_CreateObject();

            cJSON_AddNumberToObject(note, "not_kept", (double) strlen(text));
            kept = ok ? ca_command_encode_result(cmd->id, TRUE, note, NULL, g_get_real_time())
                      : ca_command_encode_result(cmd->id, FALSE, NULL,
                                                 "failed (the error was too long to keep)",
                                                 g_get_real_time());
        }
        recent_put(cmd->recent, cmd->name, cmd->id, kept ? kept : text, cmd->durable);
    }
    if (cmd->reply)
        cmd->reply(cmd, text, cmd->reply_data);
    if (cmd->recent && cmd->recent->observer)
        cmd->recent->observer(cmd, ok, result, ok ? NULL : (error ? error : "failed"),
                              cmd->recent->observer_data);
    cJSON_Delete(result);
}

CaCommand *
ca_command_ref(CaCommand *cmd)
{
    g_return_val_if_fail(cmd != NULL, NULL);
    cmd->ref++;
    return cmd;
}

void
ca_command_unref(CaCommand *cmd)
{
    if (!cmd || --cmd->ref > 0)
        return;
    if (!cmd->answered)
        answer(cmd, FALSE, NULL, "no result (the handler did not answer)");
    if (cmd->reply_destroy)
        cmd->reply_destroy(cmd->reply_data);
    recent_unref(cmd->recent);
    cJSON_Delete(cmd->args);
    g_free(cmd->name);
    g_free(cmd->id);
    g_free(cmd->source);
    g_free(cmd);
}

const char *
ca_command_get_name(CaCommand *cmd)
{
    return cmd->name;
}

const char *
ca_command_get_id(CaCommand *cmd)
{
    return cmd->id;
}

const cJSON *
ca_command_get_args(CaCommand *cmd)
{
    return cmd->args;
}

const char *
ca_command_get_source(CaCommand *cmd)
{
    return cmd->source;
}

gboolean
ca_command_is_answered(CaCommand *cmd)
{
    return cmd->answered;
}

void
ca_command_return_ok(CaCommand *cmd, cJSON *result)
{
    g_return_if_fail(cmd != NULL);
    answer(cmd, TRUE, result, NULL);
}

void
ca_command_return_error(CaCommand *cmd, const char *format, ...)
{
    g_autofree char *message = NULL;
    va_list ap;

    g_return_if_fail(cmd != NULL);
    va_start(ap, format);
    message = g_strdup_vprintf(format, ap);
    va_end(ap);
    answer(cmd, FALSE, NULL, message);
}

void
ca_command_return_gerror(CaCommand *cmd, const GError *error)
{
    g_return_if_fail(cmd != NULL);
    answer(cmd, FALSE, NULL, error ? error->message : "failed");
}

/*****************************************************************************/
/* Registry */

static void
entry_free(gpointer data)
{
    Entry *e = data;

    if (e->destroy)
        e->destroy(e->user_data);
    g_free(e);
}

CaCommands *
ca_commands_new(void)
{
    CaCommands *self = g_new0(CaCommands, 1);

    self->entries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, entry_free);
    self->recent = recent_new();
    return self;
}

void
ca_commands_free(CaCommands *self)
{
    if (!self)
        return;
    g_hash_table_unref(self->entries);
    self->recent->observer = NULL; /* requests still in flight answer without it */
    recent_unref(self->recent);
    g_free(self);
}

void
ca_commands_set_validator(CaCommands *self, CaCommandValidator validator, gpointer user_data)
{
    g_return_if_fail(self != NULL);
    self->validator = validator;
    self->validator_data = user_data;
}

void
ca_commands_set_observer(CaCommands *self, CaCommandObserver observer, gpointer user_data)
{
    g_return_if_fail(self != NULL);
    self->recent->observer = observer;
    self->recent->observer_data = user_data;
}

gboolean
ca_commands_register(CaCommands *self, const char *name, CaCommandHandler handler,
                     gpointer user_data, GDestroyNotify destroy)
{
    Entry *e;

    g_return_val_if_fail(self != NULL && handler != NULL, FALSE);
    if (!ca_command_name_is_valid(name)) {
        ca_err("invalid command name \"%s\", not registered", name ? name : "(null)");
        return FALSE;
    }
    if (g_hash_table_contains(self->entries, name)) {
        ca_err("command \"%s\" is already registered, not registered again", name);
        return FALSE;
    }
    e = g_new0(Entry, 1);
    e->handler = handler;
    e->user_data = user_data;
    e->destroy = destroy;
    g_hash_table_insert(self->entries, g_strdup(name), e);
    ca_debug("command \"%s\" registered", name);
    return TRUE;
}

gboolean
ca_commands_set_read_only(CaCommands *self, const char *name)
{
    Entry *e;

    g_return_val_if_fail(self != NULL && name != NULL, FALSE);
    e = g_hash_table_lookup(self->entries, name);
    if (!e)
        return FALSE;
    e->read_only = TRUE;
    return TRUE;
}

void
ca_commands_unregister(CaCommands *self, const char *name)
{
    g_return_if_fail(self != NULL);
    g_hash_table_remove(self->entries, name);
}

gboolean
ca_commands_has(CaCommands *self, const char *name)
{
    g_return_val_if_fail(self != NULL, FALSE);
    return g_hash_table_contains(self->entries, name);
}

void
ca_commands_dispatch(CaCommands *self, const char *name, const char *payload, gsize len,
                     const char *source, CaCommandReplyFunc reply, gpointer reply_data,
                     GDestroyNotify reply_destroy)
{
    g_autoptr(CaCommand) cmd = command_new(name, source, reply, reply_data, reply_destroy);
    g_autoptr(GError) error = NULL;
    g_autofree char *key = NULL;
    const char *previous;
    gint64 expires_us = 0;
    Entry *e;

    g_return_if_fail(self != NULL && name != NULL);
    if (!ca_command_parse_request(payload, len, &cmd->id, &cmd->args, &expires_us, &error)) {
        ca_command_return_gerror(cmd, error);
        return;
    }
    key = recent_key(name, cmd->id);
    previous = g_hash_table_lookup(self->recent->recent, key);
    if (previous) {
        cmd->answered = TRUE; /* never run twice */
        if (*previous) {
            ca_info("command \"%s\" id \"%s\" repeated: sending the same result again", name,
                    cmd->id);
            if (reply)
                reply(cmd, previous, reply_data);
        } else {
            ca_info("command \"%s\" id \"%s\" repeated while running, ignoring", name, cmd->id);
        }
        return;
    }
    e = g_hash_table_lookup(self->entries, name);
    if (!e) {
        ca_command_return_error(cmd, "unknown command");
        return;
    }
    cmd->durable = !e->read_only;
    if (expires_us && g_get_real_time() >= expires_us) {
        g_autofree char *when = ca_timestamp_format(expires_us);

        /* Remembered like an answer: a repeat gets the same refusal. */
        cmd->recent = recent_ref(self->recent);
        ca_command_return_error(cmd, "expired at %s", when);
        return;
    }
    if (self->validator && !self->validator(name, cmd->args, &error, self->validator_data)) {
        ca_command_return_gerror(cmd, error);
        return;
    }
    cmd->recent = recent_ref(self->recent);
    recent_put(self->recent, name, cmd->id, "", cmd->durable);
    ca_info("command \"%s\" id \"%s\" from %s", name, cmd->id, cmd->source);
    e->handler(cmd, e->user_data);
}

/* Collects (key, result) pairs from the journal, oldest first. */
static void
journal_entry_cb(const char *id, const cJSON *value, gint64 time_s, gpointer user_data)
{
    GPtrArray *out = user_data;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(value, "r");

    if (!cJSON_IsString(r))
        return;
    g_ptr_array_add(out, g_strdup(id));
    g_ptr_array_add(out, g_strdup(r->valuestring));
}

gboolean
ca_commands_set_journal(CaCommands *self, const char *path, GError **error)
{
    g_autoptr(CaDedupe) journal = NULL;
    g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
    gint64 now = g_get_real_time();

    g_return_val_if_fail(self != NULL && self->recent->journal == NULL, FALSE);
    journal = ca_dedupe_open(path, RECENT_MAX, CA_COMMAND_JOURNAL_DAYS * 86400,
                             now / G_USEC_PER_SEC, error);
    if (!journal)
        return FALSE;
    ca_dedupe_foreach(journal, journal_entry_cb, keys);
    for (guint i = 0; i + 1 < keys->len; i += 2) {
        const char *key = keys->pdata[i];
        const char *result = keys->pdata[i + 1];
        const char *sep = strchr(key, '\037');
        g_autofree char *name = sep ? g_strndup(key, (gsize) (sep - key)) : NULL;

        if (!name)
            continue;
        /* Running when the agent stopped (a crash, or the reboot it asked for): it counts as
         * run; a repeat is answered, never run again. */
        if (!*result) {
            g_autofree char *text = ca_command_encode_result(
                sep + 1, FALSE, NULL, "interrupted: the agent stopped while it ran", now);

            recent_put(self->recent, name, sep + 1, text, FALSE);
        } else {
            recent_put(self->recent, name, sep + 1, result, FALSE);
        }
    }
    self->recent->journal = g_steal_pointer(&journal);
    return TRUE;
}
