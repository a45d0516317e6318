/* commands: the remote command registry. Modules (through agent.c) register a handler per
 * command name; requests arrive as <base>/cmd/<name> with {"id":ID,"args":{...}} and every
 * request gets exactly one answer on <base>/cmd/<name>/result:
 * {"id":ID,"ok":bool,"ts":TS} + "result" or "error".
 * Owns: request validation (size, JSON, id), dispatch, answering once, duplicate ids.
 * Does not own: what commands do (handlers) or the transport: each transport (MQTT in
 * app/commands-mqtt.c, authenticated SMS in remote.c) feeds ca_commands_dispatch with its
 * own reply function. */
#pragma once
#include "request-id.h"

#include <cjson/cJSON.h>
#include <glib.h>

G_BEGIN_DECLS

/* Requests larger than this are refused without being parsed. */
#define CA_COMMAND_MAX_PAYLOAD (64 * 1024)
/* Longest command name (names are 1-32 of a-z 0-9 -). */
#define CA_COMMAND_MAX_NAME 32

typedef struct _CaCommands CaCommands; /* the registry */
typedef struct _CaCommand CaCommand;   /* one request, refcounted, answered exactly once */

/* A handler runs on the main loop. It answers with ca_command_return_ok/_error, at once or
 * later: to answer later, keep a reference (ca_command_ref) and answer from a callback.
 * A request whose last reference goes away unanswered is answered "no result". */
typedef void (*CaCommandHandler)(CaCommand *cmd, gpointer user_data);
/* Transport hook: deliver the encoded result (JSON text) of cmd. */
typedef void (*CaCommandReplyFunc)(CaCommand *cmd, const char *result_json, gpointer user_data);
/* Args check before a handler runs: TRUE to run it, FALSE with error to refuse. args is
 * NULL when the request had none. */
typedef gboolean (*CaCommandValidator)(const char *name, const cJSON *args, GError **error,
                                       gpointer user_data);
/* Observer of every answer to a request that reached a handler (after the transport's
 * reply): result (ok) or error (not ok), both borrowed. For events ("who asked, what
 * happened") without touching each handler. */
typedef void (*CaCommandObserver)(CaCommand *cmd, gboolean ok, const cJSON *result,
                                  const char *error, gpointer user_data);

/*****************************************************************************/
/* Registry */

/* An empty registry. */
CaCommands *ca_commands_new(void);
/* Free the registry (handlers' destroy notifies run); requests in flight still answer. */
void ca_commands_free(CaCommands *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaCommands, ca_commands_free)
/* Register handler for name (1-32 of a-z 0-9 -); FALSE (and destroy(user_data) is NOT
 * called) when the name is invalid or already taken. */
gboolean ca_commands_register(CaCommands *self, const char *name, CaCommandHandler handler,
                              gpointer user_data, GDestroyNotify destroy);
/* Mark name's command as read-only: it changes nothing on the device (ping, telemetry,
 * status), so running a repeat again after a restart is harmless. Its ids are remembered in
 * memory only, never in the journal: no write to flash per request, and the journal keeps
 * the ids that matter (reboot, modem-reset, reload). FALSE when name is not registered. */
gboolean ca_commands_set_read_only(CaCommands *self, const char *name);
/* Remove name's handler (destroy notify runs); requests in flight still answer. */
void ca_commands_unregister(CaCommands *self, const char *name);
/* Set the one args validator (NULL to remove): run after the name was found and before the
 * handler; FALSE (with error set, CA_ERROR_INVALID_INPUT) answers ok:false with the
 * message and the handler never runs. */
void ca_commands_set_validator(CaCommands *self, CaCommandValidator validator, gpointer user_data);
/* A repeated request is answered with the first answer when it was at most this long;
 * longer ones are remembered without their result: {"not_kept": BYTES} (or, for a failure,
 * an error saying it was too long to keep). */
#define CA_COMMAND_ANSWER_KEPT_MAX 256
/* Days a (name, id) pair is remembered on disk (and at most 1000 pairs). */
#define CA_COMMAND_JOURNAL_DAYS 30

/* Remember request ids durably in the journal at path (created when missing): a request is
 * recorded before its handler runs, so a repeat after an agent restart or a reboot (a
 * retained message, a QoS 1 redelivery, a backend retrying) is never run again; one that was
 * still running when the agent stopped is answered "interrupted". Call once, before the
 * first dispatch. Error: CA_ERROR_IO (the registry then works from memory only). */
gboolean ca_commands_set_journal(CaCommands *self, const char *path, GError **error);

/* Set the one observer (NULL to remove); it is never called after ca_commands_free, even
 * for requests still in flight. */
void ca_commands_set_observer(CaCommands *self, CaCommandObserver observer, gpointer user_data);
/* TRUE when a handler is registered for name. */
gboolean ca_commands_has(CaCommands *self, const char *name);
/* Validate payload and run name's handler; reply receives the one answer (possibly at once,
 * before this returns). source names the transport for logs ("mqtt", "sms"). */
void ca_commands_dispatch(CaCommands *self, const char *name, const char *payload, gsize len,
                          const char *source, CaCommandReplyFunc reply, gpointer reply_data,
                          GDestroyNotify reply_destroy);

/*****************************************************************************/
/* One request (for handlers) */

/* Take a reference, to answer after the handler returned. */
CaCommand *ca_command_ref(CaCommand *cmd);
/* Drop a reference; the last one answers "no result" if nobody answered. */
void ca_command_unref(CaCommand *cmd);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaCommand, ca_command_unref)
/* The command name ("reboot" for <base>/cmd/reboot). */
const char *ca_command_get_name(CaCommand *cmd);
/* The request id (valid per ca_request_id_is_valid). */
const char *ca_command_get_id(CaCommand *cmd);
/* The "args" object, or NULL when the request had none; owned by cmd. */
const cJSON *ca_command_get_args(CaCommand *cmd);
/* The transport the request came from ("mqtt", "sms"). */
const char *ca_command_get_source(CaCommand *cmd);
/* TRUE once answered (further answers are ignored with a warning). */
gboolean ca_command_is_answered(CaCommand *cmd);
/* Answer ok:true; result (an object, array or value; may be NULL) is consumed. */
void ca_command_return_ok(CaCommand *cmd, cJSON *result);
/* Answer ok:false with a printf-style message (put in "error"). */
void ca_command_return_error(CaCommand *cmd, const char *format, ...) G_GNUC_PRINTF(2, 3);
/* Answer ok:false with error->message. */
void ca_command_return_gerror(CaCommand *cmd, const GError *error);

/*****************************************************************************/
/* Pure helpers (unit-tested) */

/* Command names: 1-32 of a-z 0-9 - (a single MQTT topic level). */
gboolean ca_command_name_is_valid(const char *name);
/* Parse a request. On success *out_id, *out_args (NULL when absent) and *out_expires_us
 * (the optional "expires" field, an RFC 3339 time, as g_get_real_time() microseconds; 0 when
 * absent) are set. On failure
 * FALSE with CA_ERROR_INVALID_INPUT and a reason for the reply ("invalid JSON", "missing
 * id", ...); *out_id is still set when the id itself was valid, so the answer can name it. */
gboolean ca_command_parse_request(const char *payload, gsize len, char **out_id, cJSON **out_args,
                                  gint64 *out_expires_us, GError **error);
/* Encode a result: {"id":id|null,"ok":ok,"ts":TS} + "result" (when ok and result) or
 * "error" (when !ok). result is not consumed. */
char *ca_command_encode_result(const char *id, gboolean ok, const cJSON *result, const char *error,
                               gint64 real_time_us);

G_END_DECLS
