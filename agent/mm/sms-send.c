/* sms-send: the single sender. Works through the outgoing spool in order, one request at a
 * time, while a registered modem is present and the hourly rate limit allows: a GTask step
 * machine per request (recover an interrupted send, create, mark, send, clean up);
 * transient failures retried with backoff up to [sms] retries times.
 * At most one transmission per request, whatever ModemManager does: cancelling a D-Bus call
 * does not stop ModemManager, so Sms.Send gets a D-Bus timeout longer than ModemManager's
 * own, and a send whose outcome was lost (timeout, crash, stall) is never repeated while
 * ModemManager still holds its SMS object: the sender waits for that object's state and,
 * if it never becomes "sent", reports the request failed rather than risk a second copy.
 * Also matches delivery reports to the requests that asked for them. */
#define CA_LOG_MODULE "sms"
#include "sms-private.h"

#include "autocleanups.h"
#include "error.h"
#include "log.h"

#include <string.h>

#define RETRY_INITIAL_MS 2000
#define RETRY_MAX_MS     (5 * 60 * 1000)
#define RATE_WINDOW_S    3600
/* ModemManager's own limit for sending one part (MM_BASE_SMS_DEFAULT_SEND_TIMEOUT in
 * src/mm-base-sms.h, 5 min in 1.20 and 1.24), and a margin for its queue and polkit. */
#define MM_PART_SEND_LIMIT_S 300
#define MM_SEND_MARGIN_S     30

static gint64
now_s(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

/*****************************************************************************/
/* One send (GTask step machine) */

typedef enum {
    SEND_STEP_FIRST,
    SEND_STEP_RECOVER,      /* a previous attempt left an SMS object: look at it */
    SEND_STEP_RECOVER_WAIT, /* it was being sent when we lost track: wait for its state */
    SEND_STEP_CREATE,       /* Messaging.Create */
    SEND_STEP_MARK,         /* spool: state "sending" + the object path, before sending */
    SEND_STEP_SEND,         /* Sms.Send */
    SEND_STEP_REFERENCE,    /* read MessageReference (the proxy's cache lags the reply) */
    SEND_STEP_LAST,
} SendStep;

typedef struct {
    SendStep step;
    char *name;                 /* spool record */
    cJSON *entry;               /* the record */
    const char *id, *to, *text; /* in entry */
    gboolean delivery_report;
    guint validity;
    guint parts;
    MMModemMessaging *messaging;
    MMSms *sms;
    guint reference;
    GSource *timeout; /* owned: send-timeout, armed when sending starts */
    gboolean timed_out;
    guint timeout_s;
    /* SEND_STEP_RECOVER_WAIT */
    gboolean waited; /* waited once already: a message still unsent is reported failed */
    gulong wait_state_id;
    gulong wait_owner_id;
    gulong wait_cancel_id;
    GSource *wait_timer; /* owned */
    GSource *wait_idle;  /* owned: continues after a cancellation */
} SendContext;

static void send_step(GTask *task);

/* How long ModemManager may take to send a message of PARTS parts. */
static guint
mm_send_limit_s(guint parts)
{
    return MM_PART_SEND_LIMIT_S * MAX(parts, 1) + MM_SEND_MARGIN_S;
}

static void
send_context_free(SendContext *ctx)
{
    if (ctx->wait_state_id)
        g_signal_handler_disconnect(ctx->sms, ctx->wait_state_id);
    if (ctx->wait_owner_id)
        g_signal_handler_disconnect(ctx->sms, ctx->wait_owner_id);
    ca_clear_source(&ctx->wait_timer);
    ca_clear_source(&ctx->wait_idle);
    ca_clear_source(&ctx->timeout);
    g_free(ctx->name);
    cJSON_Delete(ctx->entry);
    g_clear_object(&ctx->messaging);
    g_clear_object(&ctx->sms);
    g_free(ctx);
}

/* Finish the task with error (consumed), mapping a timeout's cancellation. */
static void
send_fail(GTask *task, GError *error)
{
    SendContext *ctx = g_task_get_task_data(task);

    if (ctx->timed_out && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        g_clear_error(&error);
        error =
            g_error_new(CA_ERROR, CA_ERROR_TIMEOUT,
                        "no answer from ModemManager within %u s (send-timeout)", ctx->timeout_s);
    }
    ca_clear_source(&ctx->timeout);
    g_task_return_error(task, error);
    g_object_unref(task);
}

static gboolean
send_timeout_cb(gpointer user_data)
{
    GTask *task = user_data;
    SendContext *ctx = g_task_get_task_data(task);

    ca_clear_source(&ctx->timeout);
    ctx->timed_out = TRUE;
    g_cancellable_cancel(g_task_get_cancellable(task));
    return G_SOURCE_REMOVE;
}

/* Bound finding and creating the message by send-timeout (from the first call that can
 * hang). Sending is bounded by ModemManager's own limit instead (SEND_STEP_SEND). */
static void
arm_timeout(GTask *task)
{
    SendContext *ctx = g_task_get_task_data(task);

    if (ctx->timeout)
        return;
    ctx->timeout = g_timeout_source_new_seconds(ctx->timeout_s);
    g_source_set_callback(ctx->timeout, send_timeout_cb, task, NULL);
    g_source_attach(ctx->timeout, NULL);
}

static void
recover_wait_done(GTask *task, SendStep next)
{
    SendContext *ctx = g_task_get_task_data(task);

    if (ctx->wait_state_id)
        g_signal_handler_disconnect(ctx->sms, ctx->wait_state_id);
    ctx->wait_state_id = 0;
    if (ctx->wait_owner_id)
        g_signal_handler_disconnect(ctx->sms, ctx->wait_owner_id);
    ctx->wait_owner_id = 0;
    if (ctx->wait_cancel_id)
        g_cancellable_disconnect(g_task_get_cancellable(task), ctx->wait_cancel_id);
    ctx->wait_cancel_id = 0;
    ca_clear_source(&ctx->wait_timer);
    ca_clear_source(&ctx->wait_idle);
    ctx->step = next;
    send_step(task);
}

static void
recover_state_cb(MMSms *sms, GParamSpec *pspec, gpointer user_data)
{
    if (mm_sms_get_state(sms) == MM_SMS_STATE_SENT)
        recover_wait_done(user_data, SEND_STEP_REFERENCE);
}

/* ModemManager left or came back: look at the object again (gone: send anew). */
static void
recover_owner_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
    recover_wait_done(user_data, SEND_STEP_RECOVER);
}

static gboolean
recover_timer_cb(gpointer user_data)
{
    GTask *task = user_data;
    SendContext *ctx = g_task_get_task_data(task);

    /* Looked at once more: gone means send anew, still there and unsent means failed. */
    ctx->waited = TRUE;
    recover_wait_done(task, SEND_STEP_RECOVER);
    return G_SOURCE_REMOVE;
}

static gboolean
recover_idle_cb(gpointer user_data)
{
    /* send_step() sees the cancellation first and fails. */
    recover_wait_done(user_data, SEND_STEP_MARK);
    return G_SOURCE_REMOVE;
}

/* May run inside g_cancellable_cancel(): only schedule. */
static void
recover_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
    GTask *task = user_data;
    SendContext *ctx = g_task_get_task_data(task);

    if (ctx->wait_idle)
        return;
    ctx->wait_idle = g_idle_source_new();
    g_source_set_callback(ctx->wait_idle, recover_idle_cb, task, NULL);
    g_source_attach(ctx->wait_idle, NULL);
}

static void
recover_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    SendContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    g_autoptr(GObject) obj = g_async_initable_new_finish(G_ASYNC_INITABLE(source), result, &error);
    g_auto(GStrv) props = NULL;
    g_autofree char *owner = NULL;
    MMSms *sms;

    if (!obj) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            send_fail(task, g_steal_pointer(&error));
            return;
        }
        ctx->step = SEND_STEP_CREATE;
        send_step(task);
        return;
    }
    sms = MM_SMS(obj);
    props = g_dbus_proxy_get_cached_property_names(G_DBUS_PROXY(sms));
    owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(ctx->messaging));
    /* Object paths restart at SMS/0 with every ModemManager: the same path in another
     * daemon instance, or with other content, is not ours. */
    if (!props || !props[0] || mm_sms_get_pdu_type(sms) != MM_SMS_PDU_TYPE_SUBMIT ||
        g_strcmp0(owner, cJSON_GetStringValue(
                             cJSON_GetObjectItemCaseSensitive(ctx->entry, "mm_owner"))) != 0 ||
        g_strcmp0(mm_sms_get_number(sms), ctx->to) != 0 ||
        g_strcmp0(mm_sms_get_text(sms), ctx->text) != 0) {
        /* Gone (ModemManager restarted or it was deleted): the send never completed as far
         * as anyone can tell, so it is made again. */
        ca_info("request %s: the interrupted attempt's message is gone, sending anew", ctx->id);
        ctx->step = SEND_STEP_CREATE;
        send_step(task);
        return;
    }
    g_clear_object(&ctx->sms); /* looked at again after a wait */
    ctx->sms = MM_SMS(g_steal_pointer(&obj));
    if (mm_sms_get_state(ctx->sms) == MM_SMS_STATE_SENT) {
        ca_info("request %s: the interrupted attempt had been sent", ctx->id);
        ctx->step = SEND_STEP_REFERENCE;
    } else if (g_strcmp0(
                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ctx->entry, "state")),
                   "sending") == 0) {
        /* ModemManager may still be transmitting it (1.20 and 1.24 show no "sending" state
         * while they do): sending it again could deliver it twice. */
        if (ctx->waited) {
            send_fail(task, g_error_new(CA_ERROR, CA_ERROR_MODEM,
                                        "ModemManager did not report the interrupted attempt "
                                        "sent within %u s; not sent again, so that it "
                                        "cannot arrive twice",
                                        mm_send_limit_s(ctx->parts)));
            return;
        }
        ctx->step = SEND_STEP_RECOVER_WAIT;
    } else {
        ctx->step = SEND_STEP_MARK; /* the last attempt failed: send the same object again */
    }
    send_step(task);
}

static void
create_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    SendContext *ctx = g_task_get_task_data(task);
    GError *error = NULL;

    ctx->sms = mm_modem_messaging_create_finish(MM_MODEM_MESSAGING(source), result, &error);
    if (!ctx->sms) {
        send_fail(task, error);
        return;
    }
    ctx->step++;
    send_step(task);
}

static void
send_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    SendContext *ctx = g_task_get_task_data(task);
    GError *error = NULL;

    if (!mm_sms_send_finish(MM_SMS(source), result, &error)) {
        send_fail(task, error);
        return;
    }
    ctx->step++;
    send_step(task);
}

static void
reference_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    SendContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
    g_autoptr(GVariant) value = NULL;

    /* Sent it is, whatever this says: without the reference the result just lacks it. */
    if (reply) {
        g_variant_get(reply, "(v)", &value);
        if (g_variant_is_of_type(value, G_VARIANT_TYPE_UINT32))
            ctx->reference = g_variant_get_uint32(value);
    } else {
        ca_debug("request %s: cannot read the message reference: %s", ctx->id, error->message);
        ctx->reference = mm_sms_get_message_reference(ctx->sms);
    }
    ctx->step++;
    send_step(task);
}

static void
send_step(GTask *task)
{
    CaSms *self = g_task_get_source_object(task);
    SendContext *ctx = g_task_get_task_data(task);
    GCancellable *cancellable = g_task_get_cancellable(task);
    const cJSON *path;

    if (g_cancellable_is_cancelled(cancellable)) {
        send_fail(task, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
        return;
    }
    switch (ctx->step) {
    case SEND_STEP_FIRST:
        ctx->step++;
        G_GNUC_FALLTHROUGH;
    case SEND_STEP_RECOVER:
        path = cJSON_GetObjectItemCaseSensitive(ctx->entry, "sms_path");
        if (cJSON_IsString(path) && g_variant_is_object_path(path->valuestring)) {
            g_async_initable_new_async(
                MM_TYPE_SMS, G_PRIORITY_DEFAULT, cancellable, recover_ready, task, "g-flags",
                G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START, "g-name", MM_DBUS_SERVICE, "g-connection",
                g_dbus_proxy_get_connection(G_DBUS_PROXY(ctx->messaging)), "g-object-path",
                path->valuestring, "g-interface-name", "org.freedesktop.ModemManager1.Sms", NULL);
            return;
        }
        ctx->step = SEND_STEP_CREATE;
        G_GNUC_FALLTHROUGH;
    case SEND_STEP_CREATE: {
        g_autoptr(MMSmsProperties) props = mm_sms_properties_new();

        arm_timeout(task);
        mm_sms_properties_set_number(props, ctx->to);
        mm_sms_properties_set_text(props, ctx->text);
        if (ctx->delivery_report)
            mm_sms_properties_set_delivery_report_request(props, TRUE);
        if (ctx->validity)
            mm_sms_properties_set_validity_relative(props, ctx->validity);
        mm_modem_messaging_create(ctx->messaging, props, cancellable, create_ready, task);
        return;
    }
    case SEND_STEP_RECOVER_WAIT:
        ca_info("request %s: an interrupted attempt may still be under way, waiting up to %u s",
                ctx->id, mm_send_limit_s(ctx->parts));
        ca_clear_source(&ctx->timeout);
        ctx->wait_state_id =
            g_signal_connect(ctx->sms, "notify::state", G_CALLBACK(recover_state_cb), task);
        ctx->wait_owner_id =
            g_signal_connect(ctx->sms, "notify::g-name-owner", G_CALLBACK(recover_owner_cb), task);
        ctx->wait_timer = g_timeout_source_new_seconds(mm_send_limit_s(ctx->parts));
        g_source_set_callback(ctx->wait_timer, recover_timer_cb, task, NULL);
        g_source_attach(ctx->wait_timer, NULL);
        ctx->wait_cancel_id =
            g_cancellable_connect(cancellable, G_CALLBACK(recover_cancelled_cb), task, NULL);
        return;
    case SEND_STEP_MARK: {
        g_autoptr(GError) error = NULL;
        g_autofree char *record = NULL;

        /* Persisted before sending, so a restart finds the object and does not send twice. */
        ca_sms_json_set(ctx->entry, "state", cJSON_CreateString("sending"));
        ca_sms_json_set(ctx->entry, "sms_path", cJSON_CreateString(mm_sms_get_path(ctx->sms)));
        {
            g_autofree char *owner = g_dbus_proxy_get_name_owner(G_DBUS_PROXY(ctx->messaging));
            ca_sms_json_set(ctx->entry, "mm_owner",
                            owner ? cJSON_CreateString(owner) : cJSON_CreateNull());
        }
        record = cJSON_PrintUnformatted(ctx->entry);
        if (!ca_spool_put(self->out, ctx->name, record, strlen(record), &error))
            ca_warn("request %s: cannot note the send in the spool: %s, sending anyway", ctx->id,
                    error->message);
        ctx->step++;
    }
        G_GNUC_FALLTHROUGH;
    case SEND_STEP_SEND:
        /* Not cut short by send-timeout: cancelling the call would not stop ModemManager,
         * only hide the outcome. ModemManager answers within its own limit, or the bus
         * says it left (NoReply). */
        ca_clear_source(&ctx->timeout);
        g_dbus_proxy_set_default_timeout(G_DBUS_PROXY(ctx->sms),
                                         (gint) mm_send_limit_s(ctx->parts) * 1000);
        ca_debug("request %s: sending %s", ctx->id, mm_sms_get_path(ctx->sms));
        mm_sms_send(ctx->sms, cancellable, send_ready, task);
        return;
    case SEND_STEP_REFERENCE:
        /* ModemManager sets the reference before replying but announces the change only
         * afterwards: ask for it. */
        g_dbus_connection_call(
            g_dbus_proxy_get_connection(G_DBUS_PROXY(ctx->sms)), MM_DBUS_SERVICE,
            mm_sms_get_path(ctx->sms), "org.freedesktop.DBus.Properties", "Get",
            g_variant_new("(ss)", "org.freedesktop.ModemManager1.Sms", "MessageReference"),
            G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NO_AUTO_START, -1, cancellable,
            reference_ready, task);
        return;
    case SEND_STEP_LAST:
        ca_clear_source(&ctx->timeout);
        g_task_return_boolean(task, TRUE);
        g_object_unref(task);
        return;
    }
    g_assert_not_reached();
}

/*****************************************************************************/
/* The sender */

static void sender_job_done(GObject *source, GAsyncResult *result, gpointer user_data);

static gboolean
retry_cb(gpointer user_data)
{
    CaSms *self = user_data;

    ca_clear_source(&self->send_retry);
    ca_sms_sender_kick(self);
    return G_SOURCE_REMOVE;
}

static gboolean
rate_cb(gpointer user_data)
{
    CaSms *self = user_data;

    ca_clear_source(&self->rate_timer);
    ca_sms_sender_kick(self);
    return G_SOURCE_REMOVE;
}

static GSource *
timer_new(guint ms, GSourceFunc func, gpointer data)
{
    GSource *source = g_timeout_source_new(ms);

    g_source_set_callback(source, func, data, NULL);
    g_source_attach(source, NULL);
    return source;
}

/* Seconds until the rate limit allows sending a message of PARTS segments (0: now). The
 * limit counts segments, as operators bill them: sent_times holds one entry per segment
 * sent in the last hour. A message of more segments than the limit waits for an empty
 * hour (it was accepted under max-parts). */
static gint64
rate_wait(CaSms *self, guint parts)
{
    gint64 now = now_s();
    guint need = MIN(MAX(parts, 1u), self->set.rate_limit);
    guint expire;

    while (self->sent_times.head && *(gint64 *) self->sent_times.head->data <= now - RATE_WINDOW_S)
        g_free(g_queue_pop_head(&self->sent_times));
    if (self->sent_times.length + need <= self->set.rate_limit)
        return 0;
    /* The oldest entries must age out first: the last of them decides. */
    expire = self->sent_times.length + need - self->set.rate_limit;
    return MAX(1,
               *(gint64 *) g_queue_peek_nth(&self->sent_times, expire - 1) + RATE_WINDOW_S - now);
}

static void
note_sent_time(CaSms *self, gint64 t, guint parts)
{
    for (guint i = 0; i < MAX(parts, 1u); i++) {
        gint64 *v = g_new(gint64, 1);

        *v = t;
        g_queue_push_tail(&self->sent_times, v);
    }
}

/* Finish a request for good: remove it from the spool and the index. */
static void
retire(CaSms *self, const char *name, const char *id)
{
    g_autoptr(GError) error = NULL;

    if (!ca_spool_remove(self->out, name, &error))
        ca_warn("request %s: cannot remove %s from the spool: %s", id, name, error->message);
    g_hash_table_remove(self->out_ids, id);
}

static void
delete_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;

    if (!mm_modem_messaging_delete_finish(MM_MODEM_MESSAGING(source), result, &error) &&
        !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        ca_debug("cannot delete a sent message from ModemManager's list: %s", error->message);
}

/* ModemManager keeps every created message in its list: drop ours once done. */
static void
forget_sms_object(CaSms *self, MMModemMessaging *messaging, MMSms *sms)
{
    if (messaging && sms)
        mm_modem_messaging_delete(messaging, mm_sms_get_path(sms), self->cancellable, delete_ready,
                                  NULL);
}

/* ModemManager's error with its D-Bus name, e.g. "Network timeout
 * (org.freedesktop.ModemManager1.Error.Message.NetworkTimeout)". */
static char *
describe_error(const GError *error)
{
    g_autofree char *name = NULL;

    if (error->domain == MM_CORE_ERROR || error->domain == MM_MESSAGE_ERROR ||
        error->domain == MM_MOBILE_EQUIPMENT_ERROR || error->domain == MM_CONNECTION_ERROR ||
        error->domain == MM_SERIAL_ERROR)
        name = g_dbus_error_encode_gerror(error);
    return name ? g_strdup_printf("%s (%s)", error->message, name) : g_strdup(error->message);
}

/* The error is ModemManager's own answer (not a timeout, a cancellation or a bus error). */
static gboolean
answered_by_modemmanager(const GError *error)
{
    return error->domain == MM_CORE_ERROR || error->domain == MM_MESSAGE_ERROR ||
           error->domain == MM_MOBILE_EQUIPMENT_ERROR || error->domain == MM_CONNECTION_ERROR ||
           error->domain == MM_SERIAL_ERROR;
}

static gboolean
error_is_permanent(const GError *error)
{
    /* ModemManager refused the message itself (number, text, validity): retrying cannot
     * help. Everything else (+CMS ERROR, timeouts, a vanished daemon) may pass. */
    return g_error_matches(error, MM_CORE_ERROR, MM_CORE_ERROR_INVALID_ARGS) ||
           g_error_matches(error, MM_CORE_ERROR, MM_CORE_ERROR_UNSUPPORTED) ||
           /* an attempt whose outcome is unknown: never sent twice (recover_ready) */
           g_error_matches(error, CA_ERROR, CA_ERROR_MODEM);
}

static void
sent(CaSms *self, SendContext *ctx)
{
    cJSON *extra = cJSON_CreateObject();
    gint64 t = now_s();

    ca_msg("request %s sent to %s: reference %u, %u part%s", ctx->id, ca_log_personal(ctx->to),
           ctx->reference, ctx->parts, ctx->parts == 1 ? "" : "s");
    cJSON_AddNumberToObject(extra, "sent_at", (double) t);
    if (ctx->delivery_report) {
        /* ModemManager asks for a report on the last part only (src/mm-sms-part-3gpp.c) and
         * gives the last part's reference: that one report decides. */
        cJSON *refs = cJSON_AddArrayToObject(extra, "pending_refs");
        cJSON_AddItemToArray(refs, cJSON_CreateNumber(ctx->reference));
        cJSON_AddStringToObject(extra, "to", ctx->to);
    }
    note_sent_time(self, t, ctx->parts);
    ca_sms_record_result(self, ctx->id,
                         ca_sms_result_new(ctx->id, CA_SMS_STATUS_SENT, g_get_real_time(),
                                           (gint) ctx->reference, ctx->parts, NULL),
                         extra);
    retire(self, ctx->name, ctx->id);
    forget_sms_object(self, ctx->messaging, ctx->sms);
}

static void
sender_job_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaSms *self = CA_SMS(source);
    GTask *task = G_TASK(result);
    SendContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    g_autofree char *record = NULL;
    g_autoptr(GError) werr = NULL;
    g_autofree char *why = NULL;
    const cJSON *attempts_item;
    guint attempts;
    guint delay;

    if (self->send_task == task) {
        g_clear_object(&self->send_task);
        ca_sms_receiver_sender_idle(self);
    }
    if (g_task_propagate_boolean(task, &error)) {
        ca_backoff_reset(&self->send_backoff);
        sent(self, ctx);
        ca_sms_sender_kick(self);
        return;
    }
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        /* The modem went away or we are stopping: not an attempt; the spool keeps it. */
        ca_debug("request %s: send interrupted", ctx->id);
        if (!g_cancellable_is_cancelled(self->cancellable))
            ca_sms_sender_kick(self);
        return;
    }
    if (g_error_matches(error, MM_MESSAGE_ERROR, MM_MESSAGE_ERROR_MEMORY_FULL)) {
        g_autoptr(cJSON) fields = cJSON_CreateObject();
        cJSON_AddStringToObject(fields, "error", error->message);
        ca_sms_emit_event(self, "sms-storage-full", fields);
    }
    attempts_item = cJSON_GetObjectItemCaseSensitive(ctx->entry, "attempts");
    attempts = (cJSON_IsNumber(attempts_item) ? (guint) attempts_item->valuedouble : 0) + 1;
    why = describe_error(error);
    if (error_is_permanent(error) || attempts > self->set.retries) {

        ca_warn("request %s failed after %u attempt%s: %s", ctx->id, attempts,
                attempts == 1 ? "" : "s", why);
        ca_sms_record_result(
            self, ctx->id,
            ca_sms_result_new(ctx->id, CA_SMS_STATUS_FAILED, g_get_real_time(), -1, 0, why), NULL);
        retire(self, ctx->name, ctx->id);
        forget_sms_object(self, ctx->messaging, ctx->sms);
        ca_sms_sender_kick(self);
        return;
    }
    delay = ca_backoff_next(&self->send_backoff);
    ca_warn("request %s: attempt %u failed: %s; will retry in %u s", ctx->id, attempts, why,
            (delay + 999) / 1000);
    ca_sms_json_set(ctx->entry, "attempts", cJSON_CreateNumber(attempts));
    ca_sms_json_set(ctx->entry, "last_error", cJSON_CreateString(why));
    /* ModemManager answered: nothing is in flight. After a timeout, or with ModemManager
     * gone from the bus, it may still be (or have been sent): recovery decides. */
    if (answered_by_modemmanager(error))
        cJSON_DeleteItemFromObjectCaseSensitive(ctx->entry, "state");
    record = cJSON_PrintUnformatted(ctx->entry);
    if (!ca_spool_put(self->out, ctx->name, record, strlen(record), &werr))
        ca_warn("request %s: cannot note the attempt in the spool: %s", ctx->id, werr->message);
    ca_clear_source(&self->send_retry);
    self->send_retry = timer_new(delay, retry_cb, self);
}

/* Load the head record into a new context; NULL (and the record set aside) when it is
 * unusable. */
static SendContext *
load_head(CaSms *self, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *data = ca_spool_get(self->out, name, NULL, &error);
    SendContext *ctx = g_new0(SendContext, 1);
    const cJSON *req, *item;

    ctx->name = g_strdup(name);
    ctx->entry = data ? cJSON_Parse(data) : NULL;
    req = cJSON_GetObjectItemCaseSensitive(ctx->entry, "request");
    item = cJSON_GetObjectItemCaseSensitive(req, "id");
    ctx->id = cJSON_IsString(item) ? item->valuestring : NULL;
    item = cJSON_GetObjectItemCaseSensitive(req, "to");
    ctx->to = cJSON_IsString(item) ? item->valuestring : NULL;
    item = cJSON_GetObjectItemCaseSensitive(req, "text");
    ctx->text = cJSON_IsString(item) ? item->valuestring : NULL;
    ctx->delivery_report = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "delivery_report"));
    item = cJSON_GetObjectItemCaseSensitive(req, "validity");
    ctx->validity = cJSON_IsNumber(item) ? (guint) item->valueint : 0;
    item = cJSON_GetObjectItemCaseSensitive(ctx->entry, "parts");
    ctx->parts = cJSON_IsNumber(item) ? (guint) item->valueint : 1;
    if (!ctx->id || !ctx->to || !ctx->text) {
        ca_warn("outgoing spool record %s is unreadable%s%s, set aside as %s.bad", name,
                error ? ": " : "", error ? error->message : "", name);
        g_clear_error(&error);
        if (!ca_spool_quarantine(self->out, name, &error))
            ca_warn("%s", error->message);
        /* Its final result: the id from the record, or from the index made at open. */
        if (!ctx->id) {
            GHashTableIter iter;
            gpointer key, value;

            g_hash_table_iter_init(&iter, self->out_ids);
            while (!ctx->id && g_hash_table_iter_next(&iter, &key, &value))
                if (g_str_equal(value, name))
                    ctx->id = key;
        }
        if (ctx->id) {
            g_autofree char *id = g_strdup(ctx->id);

            g_hash_table_remove(self->out_ids, id);
            ca_sms_record_result(
                self, id,
                ca_sms_result_new(id, CA_SMS_STATUS_FAILED, g_get_real_time(), -1, 0,
                                  "the queued request was damaged on disk (set aside as a "
                                  ".bad file); not sent"),
                NULL);
        }
        send_context_free(ctx);
        return NULL;
    }
    return ctx;
}

void
ca_sms_sender_kick(CaSms *self)
{
    g_autoptr(GCancellable) cancellable = NULL;
    SendContext *ctx;
    GTask *task;
    const char *head;
    gint64 wait;

    while (TRUE) {
        if (!self->out || !self->started || self->send_task || self->send_retry ||
            self->rate_timer || self->resync_task ||
            (self->ops && ca_modem_ops_is_busy(self->ops)) || !ca_sms_modem_ready(self))
            return;
        head = ca_spool_first(self->out);
        if (!head)
            return;
        ctx = load_head(self, head);
        if (!ctx)
            continue;
        wait = rate_wait(self, ctx->parts);
        if (wait > 0) {
            ca_msg("rate limit of %u SMS segments per hour reached (%u sent, %u to send): next "
                   "send in %" G_GINT64_FORMAT " s",
                   self->set.rate_limit, self->sent_times.length, ctx->parts, wait);
            send_context_free(ctx);
            self->rate_timer = timer_new((guint) wait * 1000, rate_cb, self);
            return;
        }
        break;
    }
    ctx->messaging = g_object_ref(self->messaging);
    ctx->timeout_s = self->set.send_timeout_s;
    /* Its own cancellable: a timeout cancels only this send. A result that arrived before
     * a cancellation stands (no check_cancellable). */
    cancellable = g_cancellable_new();
    task = g_task_new(self, cancellable, sender_job_done, NULL);
    g_task_set_check_cancellable(task, FALSE);
    g_task_set_source_tag(task, ca_sms_sender_kick);
    g_task_set_task_data(task, ctx, (GDestroyNotify) send_context_free);
    self->send_task = g_object_ref(task);
    send_step(task);
}

/*****************************************************************************/
/* Delivery reports */

typedef struct {
    guint reference;
    const char *number;
    char *match; /* id of the latest request waiting for that reference */
} ReportMatch;

/* Same number, allowing for national/international forms: the shorter is a suffix of the
 * longer (ignoring '+'). */
static gboolean
same_number(const char *a, const char *b)
{
    gsize la, lb;

    if (!a || !b || !*a || !*b)
        return TRUE;
    a += *a == '+';
    b += *b == '+';
    la = strlen(a);
    lb = strlen(b);
    return la >= lb ? strcmp(a + la - lb, b) == 0 : strcmp(b + lb - la, a) == 0;
}

static void
find_report_cb(const char *id, const cJSON *value, gint64 t, gpointer user_data)
{
    ReportMatch *m = user_data;
    const cJSON *refs = cJSON_GetObjectItemCaseSensitive(value, "pending_refs");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(value, "to");
    const cJSON *ref;

    if (!cJSON_IsArray(refs) ||
        !same_number(cJSON_IsString(to) ? to->valuestring : NULL, m->number))
        return;
    cJSON_ArrayForEach(ref, refs)
    {
        if (cJSON_IsNumber(ref) && (guint) ref->valueint == m->reference) {
            g_free(m->match); /* a later one wins: references wrap at 256 */
            m->match = g_strdup(id);
        }
    }
}

gboolean
ca_sms_sender_report(CaSms *self, guint reference, const char *number, guint delivery_state)
{
    ReportMatch m = {reference, number, NULL};
    g_autofree char *id = NULL;
    const cJSON *value;
    cJSON *extra;
    cJSON *pending;
    const cJSON *result, *parts, *ref;
    guint nparts;

    if (!self->results)
        return FALSE;
    ca_dedupe_foreach(self->results, find_report_cb, &m);
    id = m.match;
    if (!id)
        return FALSE;
    value = ca_dedupe_lookup(self->results, id);
    result = cJSON_GetObjectItemCaseSensitive(value, "result");
    parts = cJSON_GetObjectItemCaseSensitive(result, "parts");
    nparts = cJSON_IsNumber(parts) ? (guint) parts->valueint : 1;

    if (delivery_state >= 0x20 && delivery_state < 0x40) {
        ca_info("request %s: delivery pending (%s)", id,
                mm_sms_delivery_state_get_string(delivery_state));
        return TRUE;
    }
    extra = cJSON_CreateObject();
    if (delivery_state < 0x20) {
        pending = cJSON_AddArrayToObject(extra, "pending_refs");
        cJSON_ArrayForEach(ref, cJSON_GetObjectItemCaseSensitive(value, "pending_refs"))
        {
            if ((guint) ref->valueint != reference)
                cJSON_AddItemToArray(pending, cJSON_CreateNumber(ref->valueint));
        }
        if (cJSON_GetArraySize(pending) > 0) {
            /* Not every part reported yet: keep the progress, publish nothing. */
            g_autoptr(GError) error = NULL;
            g_autoptr(cJSON) updated = cJSON_Duplicate(value, TRUE);
            ca_sms_json_set(updated, "pending_refs",
                            cJSON_DetachItemFromObject(extra, "pending_refs"));
            cJSON_Delete(extra);
            if (!ca_dedupe_record(self->results, id, updated, now_s(), &error))
                ca_warn("request %s: %s", id, error->message);
            return TRUE;
        }
        ca_msg("request %s delivered", id);
        ca_sms_record_result(self, id,
                             ca_sms_result_new(id, CA_SMS_STATUS_DELIVERED, g_get_real_time(),
                                               (gint) reference, nparts, NULL),
                             extra);
        return TRUE;
    }
    {
        g_autofree char *why = g_strdup_printf("delivery failed: %s",
                                               mm_sms_delivery_state_get_string(delivery_state));
        ca_warn("request %s: %s", id, why);
        cJSON_AddArrayToObject(extra, "pending_refs");
        ca_sms_record_result(self, id,
                             ca_sms_result_new(id, CA_SMS_STATUS_FAILED, g_get_real_time(),
                                               (gint) reference, nparts, why),
                             extra);
    }
    return TRUE;
}

/*****************************************************************************/

static void
load_sent_times_cb(const char *id, const cJSON *value, gint64 t, gpointer user_data)
{
    GArray *times = user_data;
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(value, "sent_at");
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(value, "result");
    const cJSON *parts = cJSON_GetObjectItemCaseSensitive(result, "parts");
    guint n = cJSON_IsNumber(parts) && parts->valueint > 0 ? MIN((guint) parts->valueint, 255u) : 1;

    if (!cJSON_IsNumber(at))
        return;
    for (guint i = 0; i < n; i++)
        g_array_append_val(times, at->valuedouble);
}

static int
compare_doubles(gconstpointer a, gconstpointer b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

void
ca_sms_sender_init(CaSms *self)
{
    g_autoptr(GArray) times = g_array_new(FALSE, FALSE, sizeof(double));
    gint64 now = now_s();

    g_queue_init(&self->sent_times);
    ca_backoff_init(&self->send_backoff, RETRY_INITIAL_MS, RETRY_MAX_MS, 20, NULL);
    /* The rate limit survives restarts: sends of the last hour count. */
    if (self->results)
        ca_dedupe_foreach(self->results, load_sent_times_cb, times);
    g_array_sort(times, compare_doubles);
    for (guint i = 0; i < times->len; i++) {
        gint64 t = (gint64) g_array_index(times, double, i);
        if (t > now - RATE_WINDOW_S)
            note_sent_time(self, t, 1);
    }
}

void
ca_sms_sender_clear(CaSms *self)
{
    if (self->send_task)
        g_cancellable_cancel(g_task_get_cancellable(self->send_task));
    g_clear_object(&self->send_task);
    ca_clear_source(&self->send_retry);
    ca_clear_source(&self->rate_timer);
    g_queue_clear_full(&self->sent_times, g_free);
}
