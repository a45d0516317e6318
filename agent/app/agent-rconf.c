/* agent-rconf: remote configuration (docs/remote-config.md). The backend's retained
 * <base>/config/desired is checked (remote-desired.c), validated with the local files by the
 * same validator as --check-config, written as the remote layer (remote-layer.c) and
 * applied through the reload path of SIGHUP; then it is on trial until a publish under the
 * new configuration is acknowledged by the broker within confirm_within, else rolled back.
 * Changes to the uplinks or the cellular profile are covered by a NetworkManager checkpoint
 * as well. The outcome goes to the retained <base>/config/reported and to events.
 * Owns: the trial's state machine and timing. Does not own: the layer's files and document
 * (agent/core), the checkpoint (agent/nm), the reload (main's reload function). */
#define CA_LOG_MODULE "remote-config"
#include "agent-private.h"

#include "remote-desired.h"
#include "remote-layer.h"
#include "timestamp.h"

#define DESIRED  "config/desired"
#define REPORTED "config/reported"
/* Documents are handled at most this often (seconds): a backend publishing versions in a
 * loop gets one reload per interval, the newest document waiting in between. */
#define MIN_SPACING_S 5
/* A network change is tried late in its window: the failover reacts to it (hold-down,
 * failback, NetworkManager autoconnecting after a restart) for a while, and a broker reached
 * during such a transient must not confirm it. The broker is tried over a new connection
 * once confirm_within minus a margin (a quarter of it, 10 to 30 s, at most half) has
 * passed, and again NETWORK_SETTLE_S after every uplink switch. */
#define NETWORK_SETTLE_S 10
#define MARGIN_MIN_S     10
#define MARGIN_MAX_S     30
/* NetworkManager rolls its checkpoint back by itself this long after our own deadline, if
 * the agent is gone by then. */
#define CHECKPOINT_MARGIN_S 30

typedef enum {
    RCONF_IDLE,          /* nothing on trial */
    RCONF_CHECKPOINTING, /* creating the NetworkManager checkpoint before applying */
    RCONF_SETTLING,      /* applied a network change; waiting before trying the broker */
    RCONF_CONFIRMING,    /* applied; waiting for the broker to acknowledge the report */
    RCONF_ROLLING_BACK,  /* rolling the NetworkManager checkpoint back */
} RconfState;

struct _CaAgentRconf {
    CaAgent *agent;
    CaRemoteConfigSettings set;
    char *state_dir;
    gboolean subscribed;
    RconfState state;

    /* The change on trial (state != IDLE) */
    CaRemoteDesired *desired;
    CaRemotePending pending;
    gboolean network;      /* touches [uplink-*] or [cellular]: checkpoint, settle */
    gboolean mqtt_changed; /* [mqtt] changed: the reload reconnects by itself */
    char *rollback_reason;
    GSource *deadline;     /* owned: confirm_within from the apply */
    GSource *settle;       /* owned: RCONF_SETTLING */
    gint64 settle_until;   /* monotonic us: when RCONF_SETTLING ends */
    gint64 deadline_at;    /* monotonic us: when the deadline fires */
    GCancellable *confirm; /* the pending report's publish */

    /* Documents */
    gint64 handled;  /* highest version handled (reported or on trial) */
    char *report;    /* the last report (JSON text), republished at each connect */
    char *refused;   /* hash of the last document refused without a readable version */
    GBytes *waiting; /* the newest document received while busy */
    GSource *next;   /* owned: when the waiting document is handled */
    gint64 last_at;  /* monotonic: when the last change was applied, 0: never */
};

static void enter_state(CaAgentRconf *r, RconfState state);

static const char *
state_name(RconfState s)
{
    switch (s) {
    case RCONF_IDLE:
        return "idle";
    case RCONF_CHECKPOINTING:
        return "checkpointing";
    case RCONF_SETTLING:
        return "settling";
    case RCONF_CONFIRMING:
        return "confirming";
    case RCONF_ROLLING_BACK:
        return "rolling back";
    }
    return "?";
}

/*****************************************************************************/
/* Reports and events */

/* {"version":N,"state":S,"errors":[...],"hash":H,"ts":TS} + "reason", "confirm_within". */
static cJSON *
report_json(gint64 version, const char *state, const char *hash, const char *const *errors,
            const char *reason)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *errs = cJSON_AddArrayToObject(o, "errors");
    g_autofree char *ts = ca_timestamp_format(g_get_real_time());

    if (version > 0)
        cJSON_AddNumberToObject(o, "version", (double) version);
    else
        cJSON_AddNullToObject(o, "version");
    cJSON_AddStringToObject(o, "state", state);
    for (const char *const *e = errors; e && *e; e++)
        cJSON_AddItemToArray(errs, cJSON_CreateString(*e));
    if (hash)
        cJSON_AddStringToObject(o, "hash", hash);
    else
        cJSON_AddNullToObject(o, "hash");
    if (reason)
        cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddStringToObject(o, "ts", ts);
    return o;
}

/* Keep (durably: it says which versions were handled) and publish, retained. */
static void
report(CaAgentRconf *r, cJSON *o)
{
    g_autoptr(cJSON) owned = o;
    g_autoptr(GError) error = NULL;
    g_autofree char *text = cJSON_PrintUnformatted(owned);

    if (!ca_remote_layer_save_report(r->state_dir, text, &error))
        ca_warn("the report is not kept across restarts: %s", error->message);
    g_free(r->report);
    r->report = g_strdup(text);
    ca_mqtt_publish(r->agent->mqtt, REPORTED, text, 1, TRUE, CA_MQTT_MSG_NORMAL);
}

static void
event(CaAgentRconf *r, const char *type, gint64 version, const char *hash,
      const char *const *errors, const char *reason)
{
    g_autoptr(cJSON) f = cJSON_CreateObject();

    if (version > 0)
        cJSON_AddNumberToObject(f, "version", (double) version);
    else
        cJSON_AddNullToObject(f, "version");
    if (hash)
        cJSON_AddStringToObject(f, "hash", hash);
    if (errors) {
        cJSON *a = cJSON_AddArrayToObject(f, "errors");
        for (const char *const *e = errors; *e; e++)
            cJSON_AddItemToArray(a, cJSON_CreateString(*e));
    }
    if (reason)
        cJSON_AddStringToObject(f, "reason", reason);
    ca_agent_publish_event(r->agent, type, f);
}

static void
reject(CaAgentRconf *r, gint64 version, const char *hash, GPtrArray *errors)
{
    g_ptr_array_add(errors, NULL);
    if (version > 0)
        ca_warn("configuration version %" G_GINT64_FORMAT " rejected: %s", version,
                (const char *) errors->pdata[0]);
    else
        ca_warn("configuration document rejected: %s", (const char *) errors->pdata[0]);
    report(r, report_json(version, "rejected", hash, (const char *const *) errors->pdata, NULL));
    event(r, "config-rejected", version, hash, (const char *const *) errors->pdata, NULL);
    if (version > r->handled)
        r->handled = version;
}

/*****************************************************************************/
/* The trial */

static gboolean
reload(CaAgentRconf *r, GError **error)
{
    if (!r->agent->reload_func) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_NOT_READY, "reload is not available");
        return FALSE;
    }
    return r->agent->reload_func(error, r->agent->reload_data);
}

static void
clear_trial(CaAgentRconf *r)
{
    ca_clear_source(&r->deadline);
    ca_clear_source(&r->settle);
    if (r->confirm)
        g_cancellable_cancel(r->confirm);
    g_clear_object(&r->confirm);
    g_clear_pointer(&r->desired, ca_remote_desired_free);
    g_clear_pointer(&r->pending.checkpoint, g_free);
    g_clear_pointer(&r->rollback_reason, g_free);
    memset(&r->pending, 0, sizeof r->pending);
    r->network = r->mqtt_changed = FALSE;
}

/* The layer's files are back to the previous version: reload and report. */
static void
finish_rollback(CaAgentRconf *r)
{
    g_autoptr(GError) error = NULL;
    gint64 version = r->pending.version;
    g_autofree char *hash = g_strdup(r->desired->hash);
    g_autofree char *reason = g_steal_pointer(&r->rollback_reason);

    if (!ca_remote_layer_rollback(r->state_dir, &error))
        ca_err("rolling back the configuration layer failed: %s", error->message);
    else if (!reload(r, &error))
        ca_err("reloading after the rollback failed: %s", error->message);
    ca_warn("configuration version %" G_GINT64_FORMAT " rolled back: %s", version, reason);
    report(r, report_json(version, "rolled-back", hash, NULL, reason));
    event(r, "config-rolled-back", version, hash, NULL, reason);
    enter_state(r, RCONF_IDLE);
}

static void
rollback(CaAgentRconf *r, const char *reason)
{
    g_free(r->rollback_reason);
    r->rollback_reason = g_strdup(reason);
    if (r->confirm)
        g_cancellable_cancel(r->confirm);
    if (r->pending.checkpoint)
        enter_state(r, RCONF_ROLLING_BACK); /* then finish_rollback */
    else
        finish_rollback(r);
}

static gboolean
deadline_cb(gpointer user_data)
{
    CaAgentRconf *r = user_data;
    g_autofree char *reason =
        g_strdup_printf("no publish acknowledged by the broker within %" G_GINT64_FORMAT
                        " s under version %" G_GINT64_FORMAT,
                        r->pending.confirm_within, r->pending.version);

    ca_clear_source(&r->deadline);
    rollback(r, reason);
    return G_SOURCE_REMOVE;
}

static void
confirmed(CaAgentRconf *r)
{
    g_autoptr(GError) error = NULL;

    if (!ca_remote_layer_confirm(r->state_dir, &error)) {
        /* The marker stays: the next start would roll a good change back. Say so. */
        ca_err("confirming the configuration layer failed: %s", error->message);
    }
    if (r->pending.checkpoint)
        ca_agent_rconf_checkpoint_destroy(r->agent, r->pending.checkpoint);
    ca_msg("configuration version %" G_GINT64_FORMAT " confirmed", r->pending.version);
    report(r, report_json(r->pending.version, "applied", r->desired->hash, NULL, NULL));
    event(r, "config-applied", r->pending.version, r->desired->hash, NULL, NULL);
    enter_state(r, RCONF_IDLE);
}

/* The pending report's publish: the trial's cancellable says whether r is still there. */
typedef struct {
    GCancellable *cancellable;
    CaAgentRconf *r;
} ConfirmCtx;

static void
confirm_published(GObject *source, GAsyncResult *result, gpointer user_data)
{
    ConfirmCtx *ctx = user_data;
    CaAgentRconf *r = ctx->r;
    gboolean ended = g_cancellable_is_cancelled(ctx->cancellable);
    g_autoptr(GError) error = NULL;
    gboolean ok = ca_mqtt_publish_finish(CA_MQTT(source), result, &error);

    g_object_unref(ctx->cancellable);
    g_free(ctx);
    /* Cancelled: the trial ended, and r may be gone with it. */
    if (ended)
        return;
    if (!ok) {
        ca_warn("the pending report was not acknowledged: %s", error->message);
        return; /* the deadline decides */
    }
    if (r->state == RCONF_CONFIRMING)
        confirmed(r);
}

static gboolean
settle_cb(gpointer user_data)
{
    CaAgentRconf *r = user_data;

    ca_clear_source(&r->settle);
    /* A new connection over whatever route the change left. */
    ca_mqtt_reconnect_now(r->agent->mqtt);
    enter_state(r, RCONF_CONFIRMING);
    return G_SOURCE_REMOVE;
}

/* Publish the pending report; its PUBACK confirms. Queued while the broker is away. */
static void
publish_pending(CaAgentRconf *r)
{
    g_autoptr(cJSON) o = report_json(r->pending.version, "pending", r->desired->hash, NULL, NULL);
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    ConfirmCtx *ctx;

    cJSON_AddNumberToObject(o, "confirm_within", (double) r->pending.confirm_within);
    text = cJSON_PrintUnformatted(o);
    if (!ca_remote_layer_save_report(r->state_dir, text, &error))
        ca_warn("the report is not kept across restarts: %s", error->message);
    g_free(r->report);
    r->report = g_strdup(text);
    ctx = g_new0(ConfirmCtx, 1);
    r->confirm = g_cancellable_new();
    ctx->cancellable = g_object_ref(r->confirm);
    ctx->r = r;
    ca_mqtt_publish_async(r->agent->mqtt, REPORTED, text, 1, TRUE, CA_MQTT_MSG_NORMAL, r->confirm,
                          confirm_published, ctx);
}

static void next_document(CaAgentRconf *r);

static void
enter_state(CaAgentRconf *r, RconfState state)
{
    ca_debug("trial: %s -> %s", state_name(r->state), state_name(state));
    r->state = state;
    switch (state) {
    case RCONF_IDLE:
        clear_trial(r);
        next_document(r);
        break;
    case RCONF_CHECKPOINTING:
        break;
    case RCONF_SETTLING:
        ca_clear_source(&r->settle);
        r->settle =
            g_timeout_source_new((guint) MAX(0, (r->settle_until - g_get_monotonic_time()) / 1000));
        g_source_set_callback(r->settle, settle_cb, r, NULL);
        g_source_attach(r->settle, NULL);
        break;
    case RCONF_CONFIRMING:
        publish_pending(r);
        break;
    case RCONF_ROLLING_BACK:
        ca_clear_source(&r->deadline);
        ca_clear_source(&r->settle);
        ca_agent_rconf_checkpoint_rollback(r->agent, r->pending.checkpoint);
        break;
    }
}

/* The files and the reload; the trial starts. */
static void
apply(CaAgentRconf *r)
{
    g_autoptr(GError) error = NULL;

    if (!ca_remote_layer_begin(r->state_dir, r->desired->layer, &r->pending, &error)) {
        g_autoptr(GPtrArray) errs = g_ptr_array_new_with_free_func(g_free);
        gint64 version = r->pending.version;
        g_autofree char *hash = g_strdup(r->desired->hash);

        g_ptr_array_add(errs, g_strdup_printf("cannot write the layer: %s", error->message));
        ca_agent_rconf_checkpoint_destroy(r->agent, r->pending.checkpoint);
        ca_remote_layer_rollback(r->state_dir, NULL);
        enter_state(r, RCONF_IDLE);
        reject(r, version, hash, errs);
        return;
    }
    ca_msg("applying configuration version %" G_GINT64_FORMAT " (confirm within %" G_GINT64_FORMAT
           " s%s)",
           r->pending.version, r->pending.confirm_within,
           r->pending.checkpoint ? ", NetworkManager checkpoint taken" : "");
    r->deadline = g_timeout_source_new_seconds((guint) r->pending.confirm_within);
    g_source_set_callback(r->deadline, deadline_cb, r, NULL);
    g_source_attach(r->deadline, NULL);
    r->deadline_at = g_get_monotonic_time() + r->pending.confirm_within * G_USEC_PER_SEC;
    {
        gint64 cw = r->pending.confirm_within;
        gint64 margin = MIN(MIN(MAX(cw / 4, MARGIN_MIN_S), MARGIN_MAX_S), cw / 2);

        r->settle_until = g_get_monotonic_time() + (cw - margin) * G_USEC_PER_SEC;
    }
    if (!reload(r, &error)) {
        g_autofree char *reason = g_strdup_printf("the reload failed: %s", error->message);
        rollback(r, reason);
        return;
    }
    enter_state(r, r->network ? RCONF_SETTLING : RCONF_CONFIRMING);
}

void
ca_agent_rconf_checkpoint_created(CaAgent *self, const char *path, const GError *error)
{
    CaAgentRconf *r = self->rconf;

    if (!r || r->state != RCONF_CHECKPOINTING)
        return;
    if (!path) {
        g_autoptr(GPtrArray) errs = g_ptr_array_new_with_free_func(g_free);
        gint64 version = r->pending.version;
        g_autofree char *hash = g_strdup(r->desired->hash);

        g_ptr_array_add(errs, g_strdup_printf("cannot take a NetworkManager checkpoint: %s",
                                              error ? error->message : "unknown error"));
        enter_state(r, RCONF_IDLE);
        reject(r, version, hash, errs);
        return;
    }
    r->pending.checkpoint = *path ? g_strdup(path) : NULL;
    apply(r);
}

void
ca_agent_rconf_checkpoint_rolled_back(CaAgent *self, const GError *error)
{
    CaAgentRconf *r = self->rconf;

    if (!r || r->state != RCONF_ROLLING_BACK)
        return;
    if (error)
        ca_warn("NetworkManager checkpoint rollback: %s", error->message);
    g_clear_pointer(&r->pending.checkpoint, g_free);
    finish_rollback(r);
}

/* The failover switched uplinks: a network change on trial is tried again only once the
 * network has been quiet for NETWORK_SETTLE_S (within the deadline). */
void
ca_agent_rconf_uplink_switched(CaAgent *self)
{
    CaAgentRconf *r = self->rconf;
    gint64 until;

    if (!r || !r->network || (r->state != RCONF_SETTLING && r->state != RCONF_CONFIRMING))
        return;
    until = MIN(g_get_monotonic_time() + NETWORK_SETTLE_S * G_USEC_PER_SEC,
                r->deadline_at - 2 * G_USEC_PER_SEC);
    if (r->state == RCONF_SETTLING && until <= r->settle_until)
        return;
    ca_info("uplinks switched during the trial of version %" G_GINT64_FORMAT
            ": trying the broker again once they settle",
            r->pending.version);
    r->settle_until = MAX(until, g_get_monotonic_time());
    if (r->confirm) {
        /* An acknowledgement over the route just left proves nothing. */
        g_cancellable_cancel(r->confirm);
        g_clear_object(&r->confirm);
    }
    enter_state(r, RCONF_SETTLING);
}

/*****************************************************************************/
/* Documents */

static void handle_document(CaAgentRconf *r, GBytes *payload);

static gboolean
next_cb(gpointer user_data)
{
    CaAgentRconf *r = user_data;
    g_autoptr(GBytes) doc = g_steal_pointer(&r->waiting);

    ca_clear_source(&r->next);
    if (doc)
        handle_document(r, doc);
    return G_SOURCE_REMOVE;
}

/* Handle the waiting document once MIN_SPACING_S have passed since the last one. */
static void
next_document(CaAgentRconf *r)
{
    gint64 wait_ms;

    if (!r->waiting || r->next)
        return;
    wait_ms = MAX(0, (r->last_at + MIN_SPACING_S * G_USEC_PER_SEC - g_get_monotonic_time()) / 1000);
    r->next = g_timeout_source_new((guint) wait_ms);
    g_source_set_callback(r->next, next_cb, r, NULL);
    g_source_attach(r->next, NULL);
}

static void
handle_document(CaAgentRconf *r, GBytes *payload)
{
    gsize len = 0;
    const char *data = g_bytes_get_data(payload, &len);
    g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(CaRemoteDesired) d = NULL;
    g_autoptr(CaConfig) candidate = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *name = NULL;
    g_autofree char *current = NULL;
    CaConfig *now = r->agent->config;
    gint64 version = 0;

    if (r->state != RCONF_IDLE || r->next ||
        (r->last_at && g_get_monotonic_time() - r->last_at < MIN_SPACING_S * G_USEC_PER_SEC)) {
        /* One at a time, spaced; only the newest waits (bounded: one document). */
        g_clear_pointer(&r->waiting, g_bytes_unref);
        r->waiting = g_bytes_ref(payload);
        next_document(r);
        return;
    }
    d = ca_remote_desired_parse(data, len, &r->set, &version, errors);
    if (version > 0 && version <= r->handled) {
        ca_debug("configuration version %" G_GINT64_FORMAT
                 " already handled (last %" G_GINT64_FORMAT "), nothing to do",
                 version, r->handled);
        return;
    }
    if (!d) {
        g_autofree char *h = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *) data,
                                                         MIN(len, r->set.max_bytes + 1));
        /* The same document without a readable version again (a reconnect): once is enough. */
        if (version == 0 && g_strcmp0(h, r->refused) == 0)
            return;
        if (version == 0) {
            g_free(r->refused);
            r->refused = g_steal_pointer(&h);
        }
        reject(r, version, NULL, errors);
        return;
    }
    name = ca_remote_layer_name(d->version);
    candidate =
        ca_config_load_layered(r->agent->config_path, name, d->layer, strlen(d->layer), &error);
    if (!candidate) {
        g_auto(GStrv) lines = g_strsplit(error->message, "\n", -1);
        for (int i = 0; lines[i]; i++)
            g_ptr_array_add(errors, g_strdup(lines[i]));
        reject(r, d->version, d->hash, errors);
        return;
    }
    current = ca_remote_layer_read(r->state_dir, NULL);
    r->last_at = g_get_monotonic_time();
    r->handled = d->version;
    r->pending.version = d->version;
    r->pending.previous_version = ca_remote_layer_version(current);
    r->pending.confirm_within = d->confirm_within;
    r->pending.started_at = g_get_real_time();
    r->network = !ca_config_group_equal(now, candidate, "uplink-*") ||
                 !ca_config_group_equal(now, candidate, "cellular");
    r->mqtt_changed = !ca_config_group_equal(now, candidate, "mqtt");
    r->desired = g_steal_pointer(&d);
    if (r->network) {
        enter_state(r, RCONF_CHECKPOINTING);
        ca_agent_rconf_checkpoint_create(r->agent,
                                         (guint) (r->pending.confirm_within + CHECKPOINT_MARGIN_S));
        return;
    }
    apply(r);
}

static void
message_cb(CaMqtt *mqtt, const char *subtopic, GBytes *payload, gpointer user_data)
{
    CaAgent *self = user_data;

    if (self->rconf && g_str_equal(subtopic, DESIRED))
        handle_document(self->rconf, payload);
}

static void
connected_cb(CaMqtt *mqtt, gpointer user_data)
{
    CaAgent *self = user_data;
    CaAgentRconf *r = self->rconf;

    /* The broker may have lost the retained report (no persistence): say it again. Never
     * during a trial, whose own report is on its way. */
    if (r && r->state == RCONF_IDLE && r->report)
        ca_mqtt_publish(self->mqtt, REPORTED, r->report, 1, TRUE, CA_MQTT_MSG_NORMAL);
}

/*****************************************************************************/
/* cmd/config-get */

static void
config_get_cb(CaCommand *cmd, gpointer user_data)
{
    CaAgent *self = user_data;
    cJSON *result = cJSON_CreateObject();
    cJSON *remote = cJSON_AddObjectToObject(result, "remote");
    g_autoptr(cJSON) last =
        self->rconf && self->rconf->report ? cJSON_Parse(self->rconf->report) : NULL;

    cJSON_AddBoolToObject(remote, "enabled", self->rconf && self->rconf->set.enabled);
    if (last)
        cJSON_AddItemToObject(remote, "reported", g_steal_pointer(&last));
    else
        cJSON_AddNullToObject(remote, "reported");
    cJSON_AddItemToObject(result, "config", ca_config_sources_json(self->config));
    ca_command_return_ok(cmd, result);
}

/*****************************************************************************/
/* Wiring */

/* A trial that a crash, a stop or a power cut interrupted was rolled back by the load at
 * start (remote-layer.c): report it, and roll the NetworkManager checkpoint back when
 * NetworkManager still holds it. */
static void
finish_recovery(CaAgentRconf *r)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaRemotePending) p =
        ca_remote_layer_read_pending(r->state_dir, "recovered.json", &error);
    const char *reason = "the agent stopped before the change was confirmed (crash, stop or "
                         "reboot)";

    if (!p)
        return;
    if (p->checkpoint)
        ca_agent_rconf_checkpoint_rollback(r->agent, p->checkpoint);
    report(r, report_json(p->version, "rolled-back", NULL, NULL, reason));
    event(r, "config-rolled-back", p->version, NULL, NULL, reason);
    if (p->version > r->handled)
        r->handled = p->version;
    if (!ca_remote_layer_finish_recovery(r->state_dir, &error))
        ca_warn("%s", error->message);
}

static void
apply_settings(CaAgentRconf *r, CaConfig *config)
{
    ca_remote_config_settings_clear(&r->set);
    ca_remote_config_settings_load(&r->set, config);
    g_free(r->state_dir);
    r->state_dir = g_strdup(ca_config_get_string(config, "agent", "state-dir"));
    if (r->set.enabled && !r->subscribed)
        ca_mqtt_subscribe_state(r->agent->mqtt, DESIRED);
    else if (!r->set.enabled && r->subscribed)
        ca_mqtt_unsubscribe(r->agent->mqtt, DESIRED);
    r->subscribed = r->set.enabled;
}

void
ca_agent_wire_rconf(CaAgent *self)
{
    CaAgentRconf *r = g_new0(CaAgentRconf, 1);
    g_autoptr(cJSON) last = NULL;

    r->agent = self;
    self->rconf = r;
    apply_settings(r, self->config);
    r->report = ca_remote_layer_read_report(r->state_dir);
    last = r->report ? cJSON_Parse(r->report) : NULL;
    r->handled = (gint64) cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(last, "version"));
    if (r->handled < 0 || r->handled > CA_REMOTE_VERSION_MAX)
        r->handled = 0;
    g_signal_connect(self->mqtt, "message", G_CALLBACK(message_cb), self);
    g_signal_connect(self->mqtt, "connected", G_CALLBACK(connected_cb), self);
    ca_commands_register(self->commands, "config-get", config_get_cb, self, NULL);
    ca_commands_set_read_only(self->commands, "config-get");
    if (r->set.enabled)
        finish_recovery(r);
}

void
ca_agent_reload_rconf(CaAgent *self)
{
    if (self->rconf)
        apply_settings(self->rconf, self->config);
}

void
ca_agent_unwire_rconf(CaAgent *self)
{
    CaAgentRconf *r = self->rconf;

    if (!r)
        return;
    /* A trial under way stays on disk: the next start rolls it back. */
    self->rconf = NULL;
    if (self->mqtt) {
        g_signal_handlers_disconnect_by_func(self->mqtt, message_cb, self);
        g_signal_handlers_disconnect_by_func(self->mqtt, connected_cb, self);
    }
    if (self->commands)
        ca_commands_unregister(self->commands, "config-get");
    clear_trial(r);
    ca_clear_source(&r->next);
    g_clear_pointer(&r->waiting, g_bytes_unref);
    ca_remote_config_settings_clear(&r->set);
    g_free(r->state_dir);
    g_free(r->report);
    g_free(r->refused);
    g_free(r);
}
