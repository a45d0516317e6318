/* sms-receive: received messages. Finds them (Messaging "added" and listings at start-up,
 * after every modem (re)appearance and after a resync), waits until complete, spools them
 * durably under their stable id, hands them up for publication and deletes them from the
 * modem once the broker acknowledged them. Status reports go to the sender. Also the
 * resync (disable + enable makes ModemManager re-read the storage), triggered by a
 * multipart message stuck in "receiving", after receptions, or by cmd/sms-resync. */
#define CA_LOG_MODULE "sms"
#include "sms-private.h"

#include "autocleanups.h"
#include "error.h"
#include "log.h"

#include <string.h>

#define PUBLISH_RETRY_INITIAL_MS 1000
#define PUBLISH_RETRY_MAX_MS     60000

typedef enum {
    RESYNC_REASON_COMMAND, /* cmd/sms-resync */
    RESYNC_REASON_STUCK,   /* a multipart message stayed "receiving" */
    RESYNC_REASON_RECEIVE, /* messages arrived: a notice may have been dropped */
} ResyncReason;

static const char *
resync_reason_to_string(ResyncReason reason)
{
    switch (reason) {
    case RESYNC_REASON_COMMAND:
        return "command";
    case RESYNC_REASON_STUCK:
        return "stuck";
    case RESYNC_REASON_RECEIVE:
        return "after-receive";
    }
    g_assert_not_reached();
}

static void start_resync(CaSms *self, ResyncReason reason, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data);
static void arm_stuck_timer(CaSms *self);

static GSource *
timer_new(guint ms, GSourceFunc func, gpointer data)
{
    GSource *source = g_timeout_source_new(ms);

    g_source_set_callback(source, func, data, NULL);
    g_source_attach(source, NULL);
    return source;
}

/*****************************************************************************/
/* Publication */

static void
publish(CaSms *self, const char *id)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *payload = NULL;

    if (!self->started || g_hash_table_contains(self->publishing, id))
        return;
    payload = ca_spool_get(self->in, id, NULL, &error);
    if (!payload) {
        ca_warn("received message %s: %s, ignoring", id, error->message);
        return;
    }
    g_hash_table_add(self->publishing, g_strdup(id));
    ca_debug("handing up received message %s", id);
    ca_sms_emit_received(self, id, payload);
}

void
ca_sms_receiver_republish(CaSms *self)
{
    g_auto(GStrv) names = ca_spool_list(self->in);

    for (char **n = names; *n; n++)
        publish(self, *n);
}

static gboolean
publish_retry_cb(gpointer user_data)
{
    CaSms *self = user_data;

    ca_clear_source(&self->publish_retry);
    ca_sms_receiver_republish(self);
    return G_SOURCE_REMOVE;
}

/* Deleting from the modem: one at a time (ModemManager locks the storage for each and
 * answers "try again later" while it is busy), retried with backoff. */
static void delete_pump(CaSms *self);

static gboolean
delete_retry_cb(gpointer user_data)
{
    CaSms *self = user_data;

    ca_clear_source(&self->delete_retry);
    delete_pump(self);
    return G_SOURCE_REMOVE;
}

typedef struct {
    CaSms *self;
    guint generation;
} DeleteCall;

static void
delete_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    DeleteCall *call = user_data;
    g_autoptr(CaSms) self = call->self;
    g_autoptr(GError) error = NULL;
    g_autofree char *path = NULL;
    guint delay;
    gboolean current = call->generation == self->delete_generation;

    g_free(call);
    mm_modem_messaging_delete_finish(MM_MODEM_MESSAGING(source), result, &error);
    if (!current || g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return; /* the queue was dropped meanwhile (modem changed, resync) */
    path = g_steal_pointer(&self->deleting);
    if (!error || g_error_matches(error, MM_CORE_ERROR, MM_CORE_ERROR_NOT_FOUND)) {
        ca_debug("deleted %s from the modem", path);
        g_hash_table_remove(self->delete_set, path);
        ca_backoff_reset(&self->delete_backoff);
        delete_pump(self);
        return;
    }
    delay = ca_backoff_next(&self->delete_backoff);
    if (g_error_matches(error, MM_CORE_ERROR, MM_CORE_ERROR_RETRY))
        ca_debug("cannot delete %s yet: %s; retrying in %u ms", path, error->message, delay);
    else
        ca_warn("cannot delete %s from the modem: %s; retrying in %u s", path, error->message,
                (delay + 999) / 1000);
    g_queue_push_head(&self->delete_queue, g_steal_pointer(&path));
    self->delete_retry = timer_new(delay, delete_retry_cb, self);
}

static void
delete_pump(CaSms *self)
{
    DeleteCall *call;

    if (self->deleting || self->delete_retry || !self->messaging ||
        g_queue_is_empty(&self->delete_queue))
        return;
    self->deleting = g_queue_pop_head(&self->delete_queue);
    call = g_new0(DeleteCall, 1);
    call->self = g_object_ref(self);
    call->generation = self->delete_generation;
    mm_modem_messaging_delete(self->messaging, self->deleting, self->modem_cancellable,
                              delete_ready, call);
}

/* Queue a message object for deletion (once). */
static void
delete_path(CaSms *self, const char *path)
{
    if (g_hash_table_contains(self->delete_set, path))
        return;
    g_hash_table_add(self->delete_set, g_strdup(path));
    g_queue_push_tail(&self->delete_queue, g_strdup(path));
    delete_pump(self);
}

/* Forget every queued deletion (the modem changed, or a resync renamed every object). */
static void
delete_clear(CaSms *self)
{
    g_queue_clear_full(&self->delete_queue, g_free);
    if (self->delete_set)
        g_hash_table_remove_all(self->delete_set);
    g_clear_pointer(&self->deleting, g_free);
    self->delete_generation++; /* a delete in flight no longer counts */
    ca_clear_source(&self->delete_retry);
    ca_backoff_reset(&self->delete_backoff);
}

/* Delete a handled message from the modem (its storage must not fill). */
static void
delete_from_modem(CaSms *self, const char *id)
{
    const char *path = g_hash_table_lookup(self->on_modem, id);

    if (!path || self->set.keep_on_modem)
        return;
    delete_path(self, path);
    g_hash_table_remove(self->on_modem, id);
}

void
ca_sms_receiver_published(CaSms *self, const char *id, const GError *error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(cJSON) value = NULL;

    if (!g_hash_table_remove(self->publishing, id))
        return; /* not ours, or answered twice */
    if (error) {
        guint delay;

        if (self->publish_retry)
            return;
        delay = ca_backoff_next(&self->publish_backoff);
        ca_warn("received message %s not published: %s; will retry in %u s", id, error->message,
                (delay + 999) / 1000);
        self->publish_retry = timer_new(delay, publish_retry_cb, self);
        return;
    }
    ca_backoff_reset(&self->publish_backoff);
    ca_msg("received message %s published", id);
    /* Remember it before forgetting the spooled copy: found on the modem again (a failed
     * delete, a ModemManager restart, keep-on-modem), it is not published again. */
    value = cJSON_CreateObject();
    cJSON_AddNumberToObject(value, "published_at", (double) (g_get_real_time() / G_USEC_PER_SEC));
    if (!ca_dedupe_record(self->seen, id, value, g_get_real_time() / G_USEC_PER_SEC, &local)) {
        ca_warn("cannot remember received message %s as published: %s; keeping it spooled", id,
                local->message);
        return;
    }
    if (!ca_spool_remove(self->in, id, &local))
        ca_warn("received message %s: %s", id, local->message);
    delete_from_modem(self, id);
}

void
ca_sms_received_done(CaSms *self, const char *id, const GError *error)
{
    g_return_if_fail(CA_IS_SMS(self));
    ca_sms_receiver_published(self, id, error);
}

/*****************************************************************************/
/* Messages found on the modem */

static gboolean
resync_timer_cb(gpointer user_data)
{
    CaSms *self = user_data;

    ca_clear_source(&self->resync_timer);
    start_resync(self, RESYNC_REASON_RECEIVE, NULL, NULL, NULL);
    return G_SOURCE_REMOVE;
}

/* A complete received message (from_signal: announced by "added", not found by listing). */
static void
incoming(CaSms *self, MMSms *sms, gboolean from_signal)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(cJSON) json = NULL;
    g_autofree char *timestamp = ca_sms_timestamp_normalize(mm_sms_get_timestamp(sms));
    g_autofree char *data_b64 = NULL;
    g_autofree char *id = NULL;
    g_autofree char *record = NULL;
    const char *text = mm_sms_get_text(sms);
    const char *path = mm_sms_get_path(sms);
    CaSmsIncoming msg = {0};

    if (!text) {
        gsize len = 0;
        const guint8 *data = mm_sms_get_data(sms, &len);
        data_b64 = g_base64_encode(data, data ? len : 0);
    }
    msg.from = mm_sms_get_number(sms);
    msg.text = text ? text : "";
    msg.timestamp = timestamp ? timestamp : mm_sms_get_timestamp(sms);
    msg.smsc = mm_sms_get_smsc(sms);
    msg.received_at_us = g_get_real_time();
    id = ca_sms_incoming_id(msg.from, msg.timestamp, text ? text : data_b64);
    g_hash_table_replace(self->on_modem, g_strdup(id), g_strdup(path));

    if (ca_dedupe_lookup(self->seen, id)) {
        ca_debug("received message %s (%s) was published before", id, path);
        delete_from_modem(self, id);
        return;
    }
    if (ca_spool_contains(self->in, id)) {
        ca_debug("received message %s (%s) is already spooled", id, path);
        publish(self, id);
        return;
    }
    json = ca_sms_incoming_to_json(id, &msg);
    if (data_b64)
        cJSON_AddStringToObject(json, "data", data_b64);
    record = cJSON_PrintUnformatted(json);
    if (!ca_spool_put(self->in, id, record, strlen(record), &error)) {
        /* Left on the modem: found again by the next listing. */
        ca_warn("received message %s not spooled: %s; it stays on the modem", id, error->message);
        return;
    }
    ca_msg("received message %s from %s (%s)", id, ca_log_personal(msg.from), path);
    publish(self, id);
    /* ModemManager may have dropped the notice of a message that arrived just now: look at
     * the storage once things are quiet (not for what a listing or resync found). */
    if (from_signal && self->set.resync_delay_s > 0 && !self->resync_task) {
        ca_clear_source(&self->resync_timer);
        self->resync_timer = timer_new(self->set.resync_delay_s * 1000, resync_timer_cb, self);
    }
}

static void
status_report(CaSms *self, MMSms *sms)
{
    guint state = mm_sms_get_delivery_state(sms);
    guint reference = mm_sms_get_message_reference(sms);

    if (!ca_sms_sender_report(self, reference, mm_sms_get_number(sms), state))
        ca_info("status report for reference %u (%s) matches no request, ignoring", reference,
                mm_sms_delivery_state_get_string(state));
    delete_path(self, mm_sms_get_path(sms));
}

static void
receiving_free(gpointer data)
{
    CaSmsReceiving *r = data;

    g_signal_handler_disconnect(r->proxy, r->notify_id);
    g_object_unref(r->proxy);
    g_free(r);
}

static void handle_sms(CaSms *self, MMSms *sms, gboolean from_signal);

static void
receiving_state_cb(MMSms *sms, GParamSpec *pspec, gpointer user_data)
{
    CaSms *self = user_data;
    g_autoptr(MMSms) keep = g_object_ref(sms);

    if (mm_sms_get_state(sms) == MM_SMS_STATE_RECEIVING)
        return;
    g_hash_table_remove(self->receiving, mm_sms_get_path(sms));
    handle_sms(self, keep, TRUE);
}

static void
track_receiving(CaSms *self, MMSms *sms)
{
    CaSmsReceiving *r;

    if (g_hash_table_contains(self->receiving, mm_sms_get_path(sms)))
        return;
    ca_debug("message %s is still being received", mm_sms_get_path(sms));
    r = g_new0(CaSmsReceiving, 1);
    r->sms = self;
    r->proxy = g_object_ref(sms);
    r->since = g_get_monotonic_time();
    r->notify_id = g_signal_connect(sms, "notify::state", G_CALLBACK(receiving_state_cb), self);
    g_hash_table_insert(self->receiving, g_strdup(mm_sms_get_path(sms)), r);
    arm_stuck_timer(self);
}

static void
handle_sms(CaSms *self, MMSms *sms, gboolean from_signal)
{
    switch (mm_sms_get_pdu_type(sms)) {
    case MM_SMS_PDU_TYPE_DELIVER:
    case MM_SMS_PDU_TYPE_CDMA_DELIVER:
        if (mm_sms_get_state(sms) == MM_SMS_STATE_RECEIVED)
            incoming(self, sms, from_signal);
        else if (mm_sms_get_state(sms) == MM_SMS_STATE_RECEIVING)
            track_receiving(self, sms);
        return;
    case MM_SMS_PDU_TYPE_STATUS_REPORT:
        if (mm_sms_get_state(sms) == MM_SMS_STATE_RECEIVED)
            status_report(self, sms);
        return;
    case MM_SMS_PDU_TYPE_UNKNOWN:
    case MM_SMS_PDU_TYPE_SUBMIT:
    case MM_SMS_PDU_TYPE_CDMA_SUBMIT:
    case MM_SMS_PDU_TYPE_CDMA_CANCELLATION:
    case MM_SMS_PDU_TYPE_CDMA_DELIVERY_ACKNOWLEDGEMENT:
    case MM_SMS_PDU_TYPE_CDMA_USER_ACKNOWLEDGEMENT:
    case MM_SMS_PDU_TYPE_CDMA_READ_ACKNOWLEDGEMENT:
        return; /* ours (sms-send.c cleans up) or nothing to bridge */
    }
}

/*****************************************************************************/
/* Stuck multipart messages */

static gboolean
stuck_cb(gpointer user_data)
{
    CaSms *self = user_data;

    ca_clear_source(&self->stuck_timer);
    arm_stuck_timer(self);
    return G_SOURCE_REMOVE;
}

/* Resync when a message has been "receiving" for receive-timeout; re-arm for the oldest
 * one otherwise. Resyncs that did not help back off (a part the network never delivers
 * cannot be conjured up). */
static void
arm_stuck_timer(CaSms *self)
{
    GHashTableIter it;
    gpointer value;
    gint64 oldest = G_MAXINT64;
    gint64 now = g_get_monotonic_time();
    gint64 due;

    ca_clear_source(&self->stuck_timer);
    g_hash_table_iter_init(&it, self->receiving);
    while (g_hash_table_iter_next(&it, NULL, &value))
        oldest = MIN(oldest, ((CaSmsReceiving *) value)->since);
    if (oldest == G_MAXINT64) {
        ca_backoff_reset(&self->stuck_backoff);
        self->stuck_not_before = 0;
        return;
    }
    due =
        MAX(oldest + (gint64) self->set.receive_timeout_s * G_USEC_PER_SEC, self->stuck_not_before);
    if (due <= now && !self->resync_task) {
        guint wait = ca_backoff_next(&self->stuck_backoff);

        ca_warn("a multipart message has been incomplete for %u s: ModemManager probably missed "
                "a part's notice, re-reading the modem storage",
                self->set.receive_timeout_s);
        self->stuck_not_before = now + (gint64) wait * 1000;
        start_resync(self, RESYNC_REASON_STUCK, NULL, NULL, NULL);
        return;
    }
    self->stuck_timer = timer_new((guint) MAX(1000, (MAX(due, now) - now) / 1000), stuck_cb, self);
}

/*****************************************************************************/
/* Listing */

static void
count_storage(CaSms *self, GList *list)
{
    guint stored = 0;

    for (GList *l = list; l; l = l->next) {
        MMSms *sms = l->data;
        if (mm_sms_get_pdu_type(sms) == MM_SMS_PDU_TYPE_DELIVER &&
            mm_sms_get_storage(sms) != MM_SMS_STORAGE_UNKNOWN)
            stored++;
    }
    self->stored_received = stored;
    if (self->set.storage_warn && stored >= self->set.storage_warn) {
        if (!self->storage_full_reported) {
            g_autoptr(cJSON) fields = cJSON_CreateObject();

            cJSON_AddNumberToObject(fields, "stored", stored);
            cJSON_AddNumberToObject(fields, "threshold", self->set.storage_warn);
            ca_warn("%u received messages held in modem storage (storage-warn %u)", stored,
                    self->set.storage_warn);
            ca_sms_emit_event(self, "sms-storage-full", fields);
            self->storage_full_reported = TRUE;
        }
    } else {
        self->storage_full_reported = FALSE;
    }
}

static void
list_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(CaSms) self = user_data;
    g_autoptr(GError) error = NULL;
    GList *list = mm_modem_messaging_list_finish(MM_MODEM_MESSAGING(source), result, &error);

    self->listing = FALSE;
    if (error) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            ca_warn("cannot list the modem's messages: %s", error->message);
    } else if (MM_MODEM_MESSAGING(source) == self->messaging) {
        ca_debug("%u message(s) listed", g_list_length(list));
        for (GList *l = list; l; l = l->next)
            handle_sms(self, l->data, FALSE);
        count_storage(self, list);
    }
    g_list_free_full(list, g_object_unref);
    if (self->relist && self->messaging) {
        self->relist = FALSE;
        ca_sms_receiver_list(self);
    }
}

void
ca_sms_receiver_list(CaSms *self)
{
    if (!self->messaging)
        return;
    if (self->listing) {
        self->relist = TRUE;
        return;
    }
    self->listing = TRUE;
    self->relist = FALSE;
    mm_modem_messaging_list(self->messaging, self->modem_cancellable, list_ready,
                            g_object_ref(self));
}

static void
added_proxy_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(CaSms) self = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GObject) obj = g_async_initable_new_finish(G_ASYNC_INITABLE(source), result, &error);

    if (!obj) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            ca_warn("cannot read a new message: %s; listing instead", error->message);
        ca_sms_receiver_list(self);
        return;
    }
    if (!self->messaging)
        return;
    handle_sms(self, MM_SMS(obj), TRUE);
}

static void
added_cb(MMModemMessaging *messaging, const char *path, gboolean received, gpointer user_data)
{
    CaSms *self = user_data;

    if (!received)
        return; /* created by a client (our own sends) */
    ca_debug("new message %s", path);
    g_async_initable_new_async(
        MM_TYPE_SMS, G_PRIORITY_DEFAULT, self->modem_cancellable, added_proxy_ready,
        g_object_ref(self), "g-flags", G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START, "g-name",
        MM_DBUS_SERVICE, "g-connection", g_dbus_proxy_get_connection(G_DBUS_PROXY(messaging)),
        "g-object-path", path, "g-interface-name", "org.freedesktop.ModemManager1.Sms", NULL);
}

void
ca_sms_receiver_modem_changed(CaSms *self)
{
    g_hash_table_remove_all(self->receiving);
    g_hash_table_remove_all(self->on_modem);
    delete_clear(self);
    ca_clear_source(&self->stuck_timer);
    self->listing = FALSE;
    self->relist = FALSE;
    if (!self->messaging)
        return;
    self->added_id = g_signal_connect(self->messaging, "added", G_CALLBACK(added_cb), self);
    ca_sms_receiver_list(self);
}

/*****************************************************************************/
/* Resync (GTask step machine) */

typedef enum {
    RESYNC_STEP_FIRST,
    RESYNC_STEP_WAIT_SENDER, /* a send in flight finishes first */
    RESYNC_STEP_DISABLE,
    RESYNC_STEP_ENABLE,
    RESYNC_STEP_LIST,
    RESYNC_STEP_LAST,
} ResyncStep;

typedef struct {
    ResyncStep step;
    ResyncReason reason;
    MMModem *modem;
    MMModemMessaging *messaging;
    guint messages; /* received messages listed */
} ResyncContext;

static void resync_step(GTask *task);

static void
resync_context_free(ResyncContext *ctx)
{
    g_clear_object(&ctx->modem);
    g_clear_object(&ctx->messaging);
    g_free(ctx);
}

static void
resync_fail(GTask *task, GError *error)
{
    g_task_return_error(task, error);
    g_object_unref(task);
}

static void
disable_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    ResyncContext *ctx = g_task_get_task_data(task);
    GError *error = NULL;

    if (!mm_modem_disable_finish(MM_MODEM(source), result, &error)) {
        resync_fail(task, error);
        return;
    }
    ctx->step++;
    resync_step(task);
}

static void
enable_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    ResyncContext *ctx = g_task_get_task_data(task);
    GError *error = NULL;

    /* CaModem may have started enabling it too (it enables a disabled modem): fine. */
    if (!mm_modem_enable_finish(MM_MODEM(source), result, &error) &&
        !g_error_matches(error, MM_CORE_ERROR, MM_CORE_ERROR_IN_PROGRESS)) {
        resync_fail(task, error);
        return;
    }
    g_clear_error(&error);
    ctx->step++;
    resync_step(task);
}

static void
resync_list_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    CaSms *self = g_task_get_source_object(task);
    ResyncContext *ctx = g_task_get_task_data(task);
    GError *error = NULL;
    GList *list = mm_modem_messaging_list_finish(MM_MODEM_MESSAGING(source), result, &error);

    if (error) {
        resync_fail(task, error);
        return;
    }
    /* What ModemManager knew before is gone (new objects, new paths). */
    g_hash_table_remove_all(self->receiving);
    g_hash_table_remove_all(self->on_modem);
    delete_clear(self);
    for (GList *l = list; l; l = l->next) {
        if (mm_sms_get_pdu_type(l->data) == MM_SMS_PDU_TYPE_DELIVER)
            ctx->messages++;
        handle_sms(self, l->data, FALSE);
    }
    count_storage(self, list);
    g_list_free_full(list, g_object_unref);
    ctx->step++;
    resync_step(task);
}

static void
resync_step(GTask *task)
{
    CaSms *self = g_task_get_source_object(task);
    ResyncContext *ctx = g_task_get_task_data(task);
    GCancellable *cancellable = g_task_get_cancellable(task);

    if (g_cancellable_is_cancelled(cancellable)) {
        resync_fail(task, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
        return;
    }
    switch (ctx->step) {
    case RESYNC_STEP_FIRST:
        ctx->step++;
        G_GNUC_FALLTHROUGH;
    case RESYNC_STEP_WAIT_SENDER:
        if (self->send_task)
            return; /* ca_sms_receiver_sender_idle() continues */
        ctx->step++;
        G_GNUC_FALLTHROUGH;
    case RESYNC_STEP_DISABLE:
        if (ctx->modem != self->modem) {
            resync_fail(task,
                        g_error_new_literal(CA_ERROR, CA_ERROR_NOT_READY, "the modem changed"));
            return;
        }
        ca_msg("re-reading the modem's message storage (%s): disabling and enabling the modem",
               resync_reason_to_string(ctx->reason));
        mm_modem_disable(ctx->modem, cancellable, disable_ready, task);
        return;
    case RESYNC_STEP_ENABLE:
        mm_modem_enable(ctx->modem, cancellable, enable_ready, task);
        return;
    case RESYNC_STEP_LIST:
        if (!self->messaging) {
            resync_fail(task, g_error_new_literal(CA_ERROR, CA_ERROR_NOT_READY,
                                                  "no Messaging interface after enabling"));
            return;
        }
        g_set_object(&ctx->messaging, self->messaging);
        mm_modem_messaging_list(ctx->messaging, cancellable, resync_list_ready, task);
        return;
    case RESYNC_STEP_LAST:
        g_task_return_boolean(task, TRUE);
        g_object_unref(task);
        return;
    }
    g_assert_not_reached();
}

void
ca_sms_receiver_sender_idle(CaSms *self)
{
    ResyncContext *ctx;

    if (!self->resync_task)
        return;
    ctx = g_task_get_task_data(self->resync_task);
    if (ctx->step == RESYNC_STEP_WAIT_SENDER)
        resync_step(self->resync_task); /* the step machine still holds its reference */
}

static void
resync_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaSms *self = CA_SMS(source);
    GTask *task = G_TASK(result);
    ResyncContext *ctx = g_task_get_task_data(task);
    g_autoptr(GTask) outer = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(cJSON) fields = cJSON_CreateObject();

    if (self->resync_task == task)
        g_clear_object(&self->resync_task);
    cJSON_AddStringToObject(fields, "reason", resync_reason_to_string(ctx->reason));
    if (!g_task_propagate_boolean(task, &error)) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            ca_warn("re-reading the modem's message storage failed: %s", error->message);
        cJSON_AddBoolToObject(fields, "ok", FALSE);
        cJSON_AddStringToObject(fields, "error", error->message);
        if (outer)
            g_task_return_error(outer, g_steal_pointer(&error));
    } else {
        ca_msg("modem storage re-read: %u received message(s) on the modem", ctx->messages);
        cJSON_AddBoolToObject(fields, "ok", TRUE);
        cJSON_AddNumberToObject(fields, "messages", ctx->messages);
        if (outer) {
            cJSON *summary = cJSON_CreateObject();
            cJSON_AddNumberToObject(summary, "messages", ctx->messages);
            cJSON_AddNumberToObject(summary, "pending", ca_spool_count(self->in));
            g_task_return_pointer(outer, summary, (GDestroyNotify) cJSON_Delete);
        }
    }
    if (self->started)
        ca_sms_emit_event(self, "sms-resync", fields);
    arm_stuck_timer(self);
    ca_sms_sender_kick(self);
}

static void
start_resync(CaSms *self, ResyncReason reason, GCancellable *cancellable,
             GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *outer = callback ? g_task_new(self, cancellable, callback, user_data) : NULL;
    ResyncContext *ctx;
    GTask *task;

    if (outer)
        g_task_set_source_tag(outer, ca_sms_resync_async);
    if (self->resync_task) {
        /* One at a time; a caller simply gets the next complete picture. */
        if (outer)
            g_task_return_new_error(outer, CA_ERROR, CA_ERROR_NOT_READY,
                                    "a resync is already running");
        g_clear_object(&outer);
        return;
    }
    if (!self->modem || mm_modem_get_state(self->modem) < MM_MODEM_STATE_ENABLED) {
        if (outer)
            g_task_return_new_error(outer, CA_ERROR, CA_ERROR_NOT_READY,
                                    "no enabled modem to re-read");
        g_clear_object(&outer);
        return;
    }
    ca_clear_source(&self->resync_timer);
    ctx = g_new0(ResyncContext, 1);
    ctx->reason = reason;
    ctx->modem = g_object_ref(self->modem);
    task = g_task_new(self, self->cancellable, resync_done, outer);
    g_task_set_task_data(task, ctx, (GDestroyNotify) resync_context_free);
    self->resync_task = g_object_ref(task);
    resync_step(task);
}

void
ca_sms_resync_async(CaSms *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                    gpointer user_data)
{
    g_return_if_fail(CA_IS_SMS(self));
    start_resync(self, RESYNC_REASON_COMMAND, cancellable, callback, user_data);
}

cJSON *
ca_sms_resync_finish(CaSms *self, GAsyncResult *result, GError **error)
{
    return g_task_propagate_pointer(G_TASK(result), error);
}

/*****************************************************************************/

void
ca_sms_receiver_init(CaSms *self)
{
    self->receiving = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, receiving_free);
    self->on_modem = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    self->publishing = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    self->delete_set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_queue_init(&self->delete_queue);
    ca_backoff_init(&self->delete_backoff, 200, 30000, 20, NULL);
    ca_backoff_init(&self->publish_backoff, PUBLISH_RETRY_INITIAL_MS, PUBLISH_RETRY_MAX_MS, 20,
                    NULL);
    ca_backoff_init(&self->stuck_backoff, self->set.receive_timeout_s * 1000, 3600 * 1000, 0, NULL);
}

void
ca_sms_receiver_clear(CaSms *self)
{
    if (self->receiving)
        g_hash_table_remove_all(self->receiving);
    if (self->on_modem)
        g_hash_table_remove_all(self->on_modem);
    if (self->publishing)
        g_hash_table_remove_all(self->publishing);
    delete_clear(self);
    ca_clear_source(&self->publish_retry);
    ca_clear_source(&self->stuck_timer);
    ca_clear_source(&self->resync_timer);
    g_clear_object(&self->resync_task); /* cancelled with self->cancellable */
}
