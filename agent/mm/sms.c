/* sms: CaSms, the object. Settings, storage, following the modem handed over by agent.c,
 * taking sms/out requests in (validate, dedupe, spool durably, answer), results.
 * The sender lives in sms-send.c, received messages in sms-receive.c, the resync in
 * sms-resync.c. */
#define CA_LOG_MODULE "sms"
#include "sms-private.h"

#include "autocleanups.h"
#include "error.h"
#include "log.h"

#include <string.h>

enum {
    SIGNAL_RESULT,
    SIGNAL_RECEIVED,
    SIGNAL_EVENT,
    N_SIGNALS,
};
static guint signals[N_SIGNALS];

G_DEFINE_TYPE(CaSms, ca_sms, G_TYPE_OBJECT)

/*****************************************************************************/
/* Settings */

static gint64
now_s(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

/*****************************************************************************/
/* Results and events */

void
ca_sms_emit_result(CaSms *self, const cJSON *result)
{
    g_autofree char *json = cJSON_PrintUnformatted(result);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(result, "id");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(result, "status");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(result, "error");

    ca_info("request %s: %s%s%s", cJSON_IsString(id) ? id->valuestring : "(no id)",
            cJSON_IsString(status) ? status->valuestring : "?", cJSON_IsString(err) ? ": " : "",
            cJSON_IsString(err) ? err->valuestring : "");
    g_signal_emit(self, signals[SIGNAL_RESULT], 0, json);
}

void
ca_sms_emit_event(CaSms *self, const char *type, const cJSON *fields)
{
    g_signal_emit(self, signals[SIGNAL_EVENT], 0, type, (gpointer) fields);
}

void
ca_sms_json_set(cJSON *object, const char *key, cJSON *item)
{
    /* A copy: key may be item's own name, which cJSON frees while replacing. */
    g_autofree char *k = g_strdup(key);

    if (cJSON_GetObjectItemCaseSensitive(object, k))
        cJSON_ReplaceItemInObjectCaseSensitive(object, k, item);
    else
        cJSON_AddItemToObject(object, k, item);
}

void
ca_sms_record_result(CaSms *self, const char *id, cJSON *result, cJSON *extra)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(cJSON) owned_extra = extra;
    const cJSON *old = self->results ? ca_dedupe_lookup(self->results, id) : NULL;
    g_autoptr(cJSON) value = old ? cJSON_Duplicate(old, TRUE) : cJSON_CreateObject();
    cJSON *member;

    if (!self->results) {
        ca_sms_emit_result(self, result);
        cJSON_Delete(result);
        return;
    }

    ca_sms_json_set(value, "result", result);
    while (owned_extra && (member = owned_extra->child)) {
        cJSON_DetachItemViaPointer(owned_extra, member);
        ca_sms_json_set(value, member->string, member);
    }
    if (!ca_dedupe_record(self->results, id, value, now_s(), &error))
        ca_warn("cannot remember the result of request %s: %s, continuing", id, error->message);
    ca_sms_emit_result(self, result);
}

/*****************************************************************************/
/* Requests */

static void
reject(CaSms *self, const char *id, const char *why)
{
    g_autoptr(cJSON) result =
        ca_sms_result_new(id, CA_SMS_STATUS_REJECTED, g_get_real_time(), -1, 0, why);

    ca_sms_emit_result(self, result);
}

void
ca_sms_handle_request(CaSms *self, const char *payload, gsize len)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *id = NULL;
    g_autofree char *name = NULL;
    g_autofree char *record = NULL;
    g_autoptr(CaSmsRequest) req = NULL;
    g_autoptr(cJSON) entry = NULL;
    const cJSON *seen;
    const char *refused;

    req = ca_sms_request_parse(payload, len, self->set.max_parts, &id, &error);
    if (!req) {
        /* Rejected requests are not remembered: fixed, the same id can be sent again. */
        reject(self, id, error->message);
        return;
    }
    refused =
        ca_sms_destination_refused(req->to, (const char *const *) self->set.allowed_destinations);
    if (refused) {
        reject(self, req->id, refused);
        return;
    }
    if (self->out_broken) {
        g_autoptr(cJSON) failed = NULL;
        g_autofree char *why = g_strdup_printf(
            "not queued: the outgoing SMS storage is unavailable (%s)", self->out_broken);

        failed = ca_sms_result_new(req->id, CA_SMS_STATUS_FAILED, g_get_real_time(), -1, 0, why);
        ca_sms_emit_result(self, failed);
        return;
    }
    seen = ca_dedupe_lookup(self->results, req->id);
    if (seen && cJSON_GetObjectItemCaseSensitive(seen, "result")) {
        ca_debug("request %s seen before, answering with its latest result", req->id);
        ca_sms_emit_result(self, cJSON_GetObjectItemCaseSensitive(seen, "result"));
        return;
    }
    if (g_hash_table_contains(self->out_ids, req->id)) {
        g_autoptr(cJSON) queued = ca_sms_result_new(
            req->id, CA_SMS_STATUS_QUEUED, g_get_real_time(), -1, req->segments.parts, NULL);
        ca_sms_emit_result(self, queued);
        return;
    }

    /* Durable before anything is answered: the broker already has our PUBACK. */
    entry = cJSON_CreateObject();
    cJSON_AddItemToObject(entry, "request", ca_sms_request_to_json(req));
    cJSON_AddNumberToObject(entry, "parts", req->segments.parts);
    cJSON_AddNumberToObject(entry, "attempts", 0);
    cJSON_AddNumberToObject(entry, "queued_at", (double) now_s());
    record = cJSON_PrintUnformatted(entry);
    if (!ca_spool_append(self->out, record, strlen(record), &name, &error)) {
        g_autoptr(cJSON) failed = NULL;
        g_autofree char *why = g_strdup_printf("not queued: %s", error->message);

        ca_warn("request %s %s", req->id, why);
        /* Not remembered either: the sender may try again once there is room. */
        failed = ca_sms_result_new(req->id, CA_SMS_STATUS_FAILED, g_get_real_time(), -1, 0, why);
        ca_sms_emit_result(self, failed);
        return;
    }
    g_hash_table_insert(self->out_ids, g_strdup(req->id), g_strdup(name));
    ca_debug("request %s to %s spooled as %s (%u part%s)", req->id, ca_log_personal(req->to), name,
             req->segments.parts, req->segments.parts == 1 ? "" : "s");
    ca_sms_record_result(self, req->id,
                         ca_sms_result_new(req->id, CA_SMS_STATUS_QUEUED, g_get_real_time(), -1,
                                           req->segments.parts, NULL),
                         NULL);
    ca_sms_sender_kick(self);
}

guint
ca_sms_get_queue_length(CaSms *self)
{
    return self->out ? ca_spool_count(self->out) : 0;
}

guint
ca_sms_get_received_waiting(CaSms *self)
{
    return self->in ? ca_spool_count(self->in) : 0;
}

/*****************************************************************************/
/* The modem */

gboolean
ca_sms_modem_ready(CaSms *self)
{
    return self->modem && self->messaging &&
           mm_modem_get_state(self->modem) >= MM_MODEM_STATE_REGISTERED;
}

static void
modem_state_cb(MMModem *modem, GParamSpec *pspec, gpointer user_data)
{
    CaSms *self = user_data;
    MMModemState state = mm_modem_get_state(modem);

    ca_debug("modem state %s", mm_modem_state_get_string(state));
    /* Enabling loads the storage: list what it found. */
    if (state >= MM_MODEM_STATE_ENABLED && !self->modem_enabled) {
        /* ModemManager read the whole storage while enabling: an automatic resync that
         * waited has nothing more to find. */
        self->storage_read_at = g_get_monotonic_time();
        ca_sms_resync_satisfied(self);
        if (!self->resync_task)
            ca_sms_receiver_list(self); /* (a resync lists at its end) */
    }
    self->modem_enabled = state >= MM_MODEM_STATE_ENABLED;
    ca_sms_sender_kick(self);
}

static void
drop_messaging(CaSms *self)
{
    if (self->messaging && self->added_id)
        g_signal_handler_disconnect(self->messaging, self->added_id);
    self->added_id = 0;
    g_clear_object(&self->messaging);
}

static void
take_messaging(CaSms *self)
{
    MMModemMessaging *messaging = self->object ? mm_object_get_modem_messaging(self->object) : NULL;

    if (messaging == self->messaging) {
        g_clear_object(&messaging);
        return;
    }
    /* The interface came or went: what ran on the old one is moot. */
    if (self->send_task)
        g_cancellable_cancel(g_task_get_cancellable(self->send_task));
    g_cancellable_cancel(self->modem_cancellable);
    g_clear_object(&self->modem_cancellable);
    self->modem_cancellable = g_cancellable_new();
    drop_messaging(self);
    self->messaging = messaging;
    if (messaging)
        ca_msg("using the Messaging interface of %s", mm_modem_messaging_get_path(messaging));
    ca_sms_receiver_modem_changed(self);
    ca_sms_sender_kick(self);
}

static void
object_interfaces_cb(GDBusObject *object, GDBusInterface *iface, gpointer user_data)
{
    take_messaging(user_data);
}

static void
drop_modem(CaSms *self)
{
    if (self->modem && self->state_id)
        g_signal_handler_disconnect(self->modem, self->state_id);
    self->state_id = 0;
    g_clear_object(&self->modem);
    if (self->object)
        g_signal_handlers_disconnect_by_data(self->object, self);
    g_clear_object(&self->object);
    take_messaging(self); /* object NULL: drops the interface */
}

void
ca_sms_set_modem(CaSms *self, MMObject *object)
{
    if (object == self->object)
        return;
    drop_modem(self);
    if (!object) {
        ca_msg("no modem: sending waits, received messages wait on the modem");
        return;
    }
    self->object = g_object_ref(object);
    self->modem = mm_object_get_modem(object);
    if (self->modem) {
        self->modem_enabled = mm_modem_get_state(self->modem) >= MM_MODEM_STATE_ENABLED;
        self->state_id =
            g_signal_connect(self->modem, "notify::state", G_CALLBACK(modem_state_cb), self);
    }
    g_signal_connect(object, "interface-added", G_CALLBACK(object_interfaces_cb), self);
    g_signal_connect(object, "interface-removed", G_CALLBACK(object_interfaces_cb), self);
    take_messaging(self);
}

/*****************************************************************************/
/* Lifecycle */

static gboolean
open_storage(CaSms *self, GError **error)
{
    g_autofree char *out_dir = g_build_filename(self->dir, "out", NULL);
    g_autofree char *in_dir = g_build_filename(self->dir, "in", NULL);
    g_autofree char *results = g_build_filename(self->dir, "out-results.journal", NULL);
    g_autofree char *seen = g_build_filename(self->dir, "in-published.journal", NULL);
    gint64 max_age = (gint64) self->set.dedupe_days * 86400;
    g_auto(GStrv) names = NULL;

    g_autoptr(GError) out_error = NULL;

    if (!(self->in = ca_spool_open(in_dir, self->set.spool_limit, CA_SMS_SPOOL_BYTES, error)) ||
        !(self->seen = ca_dedupe_open(seen, self->set.dedupe_limit, max_age, now_s(), error)))
        return FALSE;
    /* The outgoing side failing does not stop receiving: requests are answered "failed". */
    if (!(self->out =
              ca_spool_open(out_dir, self->set.spool_limit, CA_SMS_SPOOL_BYTES, &out_error)) ||
        !(self->results =
              ca_dedupe_open(results, self->set.dedupe_limit, max_age, now_s(), &out_error))) {
        ca_err("sending SMS is off (receiving goes on): %s", out_error->message);
        self->out_broken = g_strdup(out_error->message);
        g_clear_pointer(&self->out, ca_spool_free);
        return TRUE;
    }

    /* Index the waiting requests by id; unreadable records are set aside. */
    names = ca_spool_list(self->out);
    for (char **n = names; *n; n++) {
        g_autoptr(GError) local = NULL;
        g_autofree char *data = ca_spool_get(self->out, *n, NULL, &local);
        g_autoptr(cJSON) entry = data ? cJSON_Parse(data) : NULL;
        const cJSON *req = cJSON_GetObjectItemCaseSensitive(entry, "request");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");

        if (!cJSON_IsString(id) || !ca_request_id_is_valid(id->valuestring)) {
            ca_warn("outgoing spool record %s is unreadable, set aside as %s.bad", *n, *n);
            if (!ca_spool_quarantine(self->out, *n, &local))
                ca_warn("%s", local->message);
            self->out_set_aside++;
            continue;
        }
        g_hash_table_insert(self->out_ids, g_strdup(id->valuestring), g_strdup(*n));
        /* Spooled but the "queued" record was lost (crash in between): remember it now. */
        if (!ca_dedupe_lookup(self->results, id->valuestring)) {
            g_autoptr(cJSON) value = cJSON_CreateObject();
            cJSON_AddItemToObject(value, "result",
                                  ca_sms_result_new(id->valuestring, CA_SMS_STATUS_QUEUED,
                                                    g_get_real_time(), -1, 0, NULL));
            if (!ca_dedupe_record(self->results, id->valuestring, value, now_s(), &local))
                ca_warn("%s, continuing", local->message);
        }
    }
    return TRUE;
}

CaSms *
ca_sms_new(CaConfig *config, GError **error)
{
    g_autoptr(CaSms) self = g_object_new(CA_TYPE_SMS, NULL);

    ca_sms_settings_load(&self->set, config);
    self->dir = g_build_filename(self->set.state_dir, "sms", NULL);
    /* Enabling the modem (before or after the start) reads the whole storage. */
    self->storage_read_at = g_get_monotonic_time();
    if (!open_storage(self, error))
        return NULL;
    ca_sms_sender_init(self);
    ca_sms_receiver_init(self);
    ca_info("SMS state in %s: %u request(s) waiting, %u received message(s) not yet published",
            self->dir, ca_sms_get_queue_length(self), ca_spool_count(self->in));
    return g_steal_pointer(&self);
}

static void
queued_cb(const char *id, const cJSON *value, gint64 time_s, gpointer user_data)
{
    GPtrArray *lost = user_data;
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(value, "result");

    if (g_strcmp0(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(result, "status")),
                  "queued") == 0)
        g_ptr_array_add(lost, g_strdup(id));
}

/* Once, when the results can be published: every damaged journal (an event each) and every
 * request that was queued but is no longer in the spool (set aside as damaged, or lost):
 * it gets its final result, "failed", instead of staying "queued" for ever. */
static void
report_damage(CaSms *self)
{
    struct {
        const char *name;
        CaDedupe *journal;
    } journals[] = {{"out-results", self->results}, {"in-published", self->seen}};
    g_autoptr(GPtrArray) lost = g_ptr_array_new_with_free_func(g_free);

    if (self->damage_reported)
        return;
    self->damage_reported = TRUE;
    for (guint i = 0; i < G_N_ELEMENTS(journals); i++) {
        g_autoptr(cJSON) fields = NULL;
        guint n = journals[i].journal ? ca_dedupe_get_quarantined(journals[i].journal) : 0;

        if (!n)
            continue;
        fields = cJSON_CreateObject();
        cJSON_AddStringToObject(fields, "journal", journals[i].name);
        cJSON_AddNumberToObject(fields, "lines", n);
        ca_sms_emit_event(self, "sms-journal-damaged", fields);
    }
    if (self->out_broken) {
        g_autoptr(cJSON) fields = cJSON_CreateObject();

        cJSON_AddStringToObject(fields, "error", self->out_broken);
        ca_sms_emit_event(self, "sms-send-off", fields);
        return;
    }
    if (self->out_set_aside) {
        g_autoptr(cJSON) fields = cJSON_CreateObject();

        cJSON_AddNumberToObject(fields, "records", self->out_set_aside);
        ca_sms_emit_event(self, "sms-spool-damaged", fields);
    }
    ca_dedupe_foreach(self->results, queued_cb, lost);
    for (guint i = 0; i < lost->len; i++) {
        const char *id = g_ptr_array_index(lost, i);

        if (g_hash_table_contains(self->out_ids, id))
            continue;
        ca_warn("request %s was queued but is no longer in the spool: failed", id);
        ca_sms_record_result(self, id,
                             ca_sms_result_new(id, CA_SMS_STATUS_FAILED, g_get_real_time(), -1, 0,
                                               "the queued request was damaged or lost on "
                                               "disk (set aside as a .bad file); not sent"),
                             NULL);
    }
}

void
ca_sms_start(CaSms *self)
{
    self->started = TRUE;
    report_damage(self);
    ca_sms_receiver_republish(self);
    ca_sms_sender_kick(self);
}

void
ca_sms_stop(CaSms *self)
{
    self->started = FALSE;
    g_cancellable_cancel(self->cancellable);
    drop_modem(self);
    ca_sms_sender_clear(self);
    ca_sms_receiver_clear(self);
}

void
ca_sms_set_config(CaSms *self, CaConfig *config)
{
    CaSmsSettings old = self->set;
    gboolean same;

    ca_sms_settings_load(&self->set, config);
    same = ca_sms_settings_equal(&old, &self->set);
    if (g_strcmp0(old.state_dir, self->set.state_dir) != 0)
        ca_warn("[agent] state-dir changed: the SMS spools stay in %s until the agent restarts",
                self->dir);
    ca_sms_settings_clear(&old);
    if (same)
        return;
    if (self->out) {
        ca_spool_set_limits(self->out, self->set.spool_limit, CA_SMS_SPOOL_BYTES);
        ca_dedupe_set_limits(self->results, self->set.dedupe_limit,
                             (gint64) self->set.dedupe_days * 86400);
    }
    ca_spool_set_limits(self->in, self->set.spool_limit, CA_SMS_SPOOL_BYTES);
    ca_dedupe_set_limits(self->seen, self->set.dedupe_limit,
                         (gint64) self->set.dedupe_days * 86400);
    /* A new rate limit or retry count applies now, not when the old timers fire. */
    ca_clear_source(&self->rate_timer);
    ca_sms_sender_kick(self);
    ca_sms_receiver_check_partial(self);
}

static void
ops_idle_cb(CaModemOps *ops, gpointer user_data)
{
    /* The sender waited for the modem operation to end. */
    ca_sms_sender_kick(user_data);
}

void
ca_sms_set_modem_ops(CaSms *self, CaModemOps *ops)
{
    g_return_if_fail(CA_IS_SMS(self));

    if (self->ops)
        g_signal_handlers_disconnect_by_data(self->ops, self);
    g_set_object(&self->ops, ops);
    if (ops)
        g_signal_connect(ops, "idle", G_CALLBACK(ops_idle_cb), self);
}

static void
ca_sms_init(CaSms *self)
{
    self->cancellable = g_cancellable_new();
    self->modem_cancellable = g_cancellable_new();
    self->out_ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

static void
ca_sms_dispose(GObject *object)
{
    CaSms *self = CA_SMS(object);

    self->started = FALSE;
    g_cancellable_cancel(self->cancellable);
    drop_modem(self);
    ca_sms_sender_clear(self);
    ca_sms_receiver_clear(self);
    ca_sms_set_modem_ops(self, NULL);
    G_OBJECT_CLASS(ca_sms_parent_class)->dispose(object);
}

static void
ca_sms_finalize(GObject *object)
{
    CaSms *self = CA_SMS(object);

    g_clear_object(&self->cancellable);
    g_clear_object(&self->modem_cancellable);
    g_clear_pointer(&self->out, ca_spool_free);
    g_clear_pointer(&self->in, ca_spool_free);
    g_clear_pointer(&self->results, ca_dedupe_free);
    g_clear_pointer(&self->seen, ca_dedupe_free);
    g_clear_pointer(&self->out_ids, g_hash_table_unref);
    g_free(self->out_broken);
    g_clear_pointer(&self->receiving, g_hash_table_unref);
    g_clear_pointer(&self->on_modem, g_hash_table_unref);
    g_clear_pointer(&self->publishing, g_hash_table_unref);
    g_clear_pointer(&self->delete_set, g_hash_table_unref);
    g_clear_pointer(&self->after_delete, g_hash_table_unref);
    g_clear_pointer(&self->partial, g_hash_table_unref);
    ca_sms_settings_clear(&self->set);
    g_free(self->dir);
    G_OBJECT_CLASS(ca_sms_parent_class)->finalize(object);
}

static void
ca_sms_class_init(CaSmsClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);

    /* libmm-glib maps ModemManager's D-Bus errors to its domains only once they exist. */
    g_type_ensure(MM_TYPE_SMS);
    (void) MM_CORE_ERROR;
    (void) MM_MESSAGE_ERROR;
    (void) MM_MOBILE_EQUIPMENT_ERROR;
    (void) MM_CONNECTION_ERROR;
    (void) MM_SERIAL_ERROR;
    object_class->dispose = ca_sms_dispose;
    object_class->finalize = ca_sms_finalize;
    signals[SIGNAL_RESULT] = g_signal_new("result", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                          NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
    signals[SIGNAL_RECEIVED] =
        g_signal_new("received", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
    signals[SIGNAL_EVENT] =
        g_signal_new("event", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_POINTER);
}

void
ca_sms_emit_received(CaSms *self, const char *id, const char *json)
{
    g_signal_emit(self, signals[SIGNAL_RECEIVED], 0, id, json);
}
