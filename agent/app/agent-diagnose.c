/* agent-diagnose: cmd/diagnose, the support bundle of diagnose.c (without the journal) sent
 * over MQTT: base64 chunks of [diagnose] chunk-size bytes on <base>/diagnose/<bundle>/<n>
 * (QoS 1, not retained), then the result with the size, the chunk count and the SHA-256
 * of the whole. A bundle over [diagnose] max-size is refused, not cut. At most one bundle
 * an hour unless {"force": true}, and one at a time. */
#define CA_LOG_MODULE "agent"
#include "agent-private.h"

#include "diag-format.h"
#include "diagnose.h"

#define DIAGNOSE_SPACING_S 3600

typedef struct {
    CaAgent *self; /* NULL once the agent unwired the command */
    CaCommand *cmd;
    cJSON *status;
    CaConfig *config; /* the snapshot the bundle shows, kept across a reload */
    char *topic_base;
} DiagnoseRun;

static void
run_free(DiagnoseRun *run)
{
    ca_command_unref(run->cmd);
    cJSON_Delete(run->status);
    ca_config_unref(run->config);
    g_free(run->topic_base);
    g_free(run);
}

static char *
new_bundle_id(void)
{
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    g_autofree char *stamp = g_date_time_format(now, "%Y%m%dT%H%M%SZ");

    return g_strdup_printf("%s-%08x", stamp, g_random_int());
}

static void
diagnose_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    DiagnoseRun *run = user_data;
    CaAgent *self = run->self;
    g_autoptr(GError) error = NULL;
    g_autofree char *name = NULL, *timed_out = NULL, *sha = NULL, *id = NULL;
    g_autoptr(GBytes) bundle = ca_diagnose_finish(result, &name, &timed_out, &error);
    g_autoptr(GPtrArray) chunks = NULL;
    gsize size;
    cJSON *res;

    if (!self) {
        run_free(run);
        return;
    }
    self->diagnose_run = NULL;
    if (!bundle) {
        ca_command_return_gerror(run->cmd, error);
        run_free(run);
        return;
    }
    size = g_bytes_get_size(bundle);
    if (size > self->set.diagnose_max_size) {
        /* Answered only: the "command" event records the refusal. */
        ca_command_return_error(run->cmd,
                                "bundle too large: %" G_GSIZE_FORMAT
                                " bytes, [diagnose] max-size is %" G_GSIZE_FORMAT,
                                size, self->set.diagnose_max_size);
        run_free(run);
        return;
    }
    id = new_bundle_id();
    chunks = ca_diag_chunks(bundle, id, self->set.diagnose_chunk_size, &sha);
    for (guint n = 0; n < chunks->len; n++) {
        g_autofree char *sub = g_strdup_printf("diagnose/%s/%u", id, n);
        ca_mqtt_publish(self->mqtt, sub, g_ptr_array_index(chunks, n), 1, FALSE,
                        CA_MQTT_MSG_NORMAL);
    }
    self->diagnose_last = g_get_monotonic_time();
    ca_msg("cmd/diagnose: bundle %s, %" G_GSIZE_FORMAT " bytes in %u chunks", id, size,
           chunks->len);
    res = cJSON_CreateObject();
    cJSON_AddStringToObject(res, "bundle", id);
    cJSON_AddStringToObject(res, "name", name);
    {
        g_autofree char *topic = g_strdup_printf("%s/diagnose/%s", run->topic_base, id);
        cJSON_AddStringToObject(res, "topic", topic);
    }
    cJSON_AddNumberToObject(res, "size", (double) size);
    cJSON_AddNumberToObject(res, "chunks", chunks->len);
    cJSON_AddNumberToObject(res, "chunk_size", (double) self->set.diagnose_chunk_size);
    cJSON_AddStringToObject(res, "sha256", sha);
    if (timed_out)
        cJSON_AddStringToObject(res, "timed_out", timed_out);
    else
        cJSON_AddNullToObject(res, "timed_out");
    ca_command_return_ok(run->cmd, res);
    run_free(run);
}

/* cmd/diagnose: see the top of this file and docs/troubleshooting.md. */
static void
diagnose_cmd_cb(CaCommand *cmd, gpointer user_data)
{
    CaAgent *self = user_data;
    const cJSON *force = cJSON_GetObjectItemCaseSensitive(ca_command_get_args(cmd), "force");
    gint64 since = (g_get_monotonic_time() - self->diagnose_last) / G_USEC_PER_SEC;
    CaDiagnoseOptions opts = {0};
    DiagnoseRun *run;

    if (self->diagnose_run) {
        ca_command_return_error(cmd, "a bundle is being made; ask again when it is sent");
        return;
    }
    if (self->diagnose_last && since < DIAGNOSE_SPACING_S && !cJSON_IsTrue(force)) {
        ca_command_return_error(cmd,
                                "at most one bundle an hour: the next in %" G_GINT64_FORMAT
                                " s, or ask with {\"force\": true}",
                                DIAGNOSE_SPACING_S - since);
        return;
    }
    run = g_new0(DiagnoseRun, 1);
    run->self = self;
    run->cmd = ca_command_ref(cmd);
    run->status = ca_agent_status_json(self);
    run->topic_base = g_strdup(ca_mqtt_get_base(self->mqtt));
    self->diagnose_run = run;
    run->config = ca_config_ref(self->config);
    opts.config = run->config;
    opts.personal = ca_log_get_personal_info();
    opts.journal = FALSE;
    opts.status = run->status;
    opts.origin = "cmd/diagnose";
    ca_diagnose_async(&opts, self->cancellable, diagnose_ready, run);
}

void
ca_agent_wire_diagnose(CaAgent *self)
{
    ca_commands_register(self->commands, "diagnose", diagnose_cmd_cb, self, NULL);
    ca_commands_set_read_only(self->commands, "diagnose");
}

void
ca_agent_unwire_diagnose(CaAgent *self)
{
    if (self->diagnose_run)
        ((DiagnoseRun *) self->diagnose_run)->self = NULL;
    self->diagnose_run = NULL;
    if (self->commands)
        ca_commands_unregister(self->commands, "diagnose");
}
