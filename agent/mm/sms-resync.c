/* sms-resync: re-reading the modem's message storage. ModemManager drops a new-message
 * notice that arrives while it holds the storage lock, and only enabling the modem makes it
 * read the whole storage again, so a resync is a Disable + Enable (through CaModemOps, the
 * modem's one owner, which announces the planned outage) followed by a listing.
 * When: on cmd/sms-resync at once; resync-delay after receptions and once for an incomplete
 * message, but while cellular carries the traffic at most once per resync-interval (each
 * one drops the data link for a moment); never while a send or another modem operation
 * runs. Owns: the resync step machine and its timers. */
#define CA_LOG_MODULE "sms"
#include "sms-private.h"

#include "autocleanups.h"
#include "error.h"
#include "log.h"

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

static GSource *
timer_new(guint ms, GSourceFunc func, gpointer data)
{
    GSource *source = g_timeout_source_new(ms);

    g_source_set_callback(source, func, data, NULL);
    g_source_attach(source, NULL);
    return source;
}

/*****************************************************************************/
/* When an automatic resync may run */

/* Seconds until an automatic resync is allowed, 0: now. While cellular carries the traffic
 * the storage is read at most once per resync-interval (the start-up and every enabling of
 * the modem read it too). */
static guint
wait_s(CaSms *self)
{
    gint64 next, now = g_get_monotonic_time();

    if (!self->cellular_in_use)
        return 0;
    next = self->storage_read_at + (gint64) self->set.resync_interval_s * G_USEC_PER_SEC;
    return next <= now ? 0 : (guint) ((next - now + G_USEC_PER_SEC - 1) / G_USEC_PER_SEC);
}

gboolean
ca_sms_resync_allowed(CaSms *self)
{
    return wait_s(self) == 0;
}

static void run_wanted(CaSms *self);

static gboolean
defer_cb(gpointer user_data)
{
    CaSms *self = user_data;

    ca_clear_source(&self->resync_defer);
    run_wanted(self);
    return G_SOURCE_REMOVE;
}

/* Start the automatic resync that waits, now when allowed, else when it will be. */
static void
run_wanted(CaSms *self)
{
    guint wait;
    ResyncReason reason;

    ca_clear_source(&self->resync_defer);
    if (!self->resync_wanted || self->resync_task || !self->started)
        return; /* (a resync that ends looks again) */
    wait = wait_s(self);
    if (wait > 0) {
        ca_info("re-reading the modem storage waits %u s: cellular carries the traffic "
                "(resync-interval %u s)",
                wait, self->set.resync_interval_s);
        self->resync_defer = timer_new(wait * 1000, defer_cb, self);
        return;
    }
    reason = self->resync_stuck ? RESYNC_REASON_STUCK : RESYNC_REASON_RECEIVE;
    self->resync_wanted = FALSE;
    self->resync_stuck = FALSE;
    start_resync(self, reason, NULL, NULL, NULL);
}

void
ca_sms_resync_request(CaSms *self, gboolean stuck)
{
    self->resync_wanted = TRUE;
    self->resync_stuck = self->resync_stuck || stuck;
    run_wanted(self);
}

static gboolean
resync_delay_cb(gpointer user_data)
{
    CaSms *self = user_data;

    ca_clear_source(&self->resync_timer);
    ca_sms_resync_request(self, FALSE);
    return G_SOURCE_REMOVE;
}

void
ca_sms_resync_after_receive(CaSms *self)
{
    if (self->set.resync_delay_s == 0 || self->resync_task || self->resync_wanted)
        return; /* off, running, or already waiting for its turn */
    ca_clear_source(&self->resync_timer);
    self->resync_timer = timer_new(self->set.resync_delay_s * 1000, resync_delay_cb, self);
}

void
ca_sms_set_cellular_in_use(CaSms *self, gboolean in_use)
{
    g_return_if_fail(CA_IS_SMS(self));

    if (self->cellular_in_use == in_use)
        return;
    self->cellular_in_use = in_use;
    ca_debug("cellular %s the traffic", in_use ? "carries" : "no longer carries");
    /* A resync that waited for cellular to be idle may run now; one due now waits. */
    run_wanted(self);
    ca_sms_receiver_check_partial(self);
}

/*****************************************************************************/
/* The resync (GTask step machine) */

typedef enum {
    RESYNC_STEP_FIRST,
    RESYNC_STEP_WAIT_SENDER, /* a send in flight finishes first */
    RESYNC_STEP_CYCLE,       /* Disable + Enable through the modem's owner */
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
cycle_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    ResyncContext *ctx = g_task_get_task_data(task);
    GError *error = NULL;

    if (!ca_modem_ops_run_finish(CA_MODEM_OPS(source), result, &error)) {
        resync_fail(task, error);
        return;
    }
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
    for (GList *l = list; l; l = l->next)
        if (mm_sms_get_pdu_type(l->data) == MM_SMS_PDU_TYPE_DELIVER)
            ctx->messages++;
    ca_sms_receiver_relisted(self, list);
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
    case RESYNC_STEP_CYCLE: {
        g_autofree char *why = NULL;

        if (ctx->modem != self->modem || !self->ops) {
            resync_fail(task,
                        g_error_new_literal(CA_ERROR, CA_ERROR_NOT_READY, "the modem changed"));
            return;
        }
        why =
            g_strdup_printf("re-reading the SMS storage, %s", resync_reason_to_string(ctx->reason));
        ca_msg("re-reading the modem's message storage (%s): disabling and enabling the modem",
               resync_reason_to_string(ctx->reason));
        /* Waits behind another modem operation if one runs (the lease). */
        ca_modem_ops_run_async(self->ops, CA_MODEM_OP_CYCLE, why, cancellable, cycle_ready, task);
        return;
    }
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
        self->storage_read_at = g_get_monotonic_time();
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
    ca_sms_receiver_check_partial(self);
    run_wanted(self);
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
    if (!self->modem || !self->ops || mm_modem_get_state(self->modem) < MM_MODEM_STATE_ENABLED) {
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

void
ca_sms_resync_satisfied(CaSms *self)
{
    if (self->resync_wanted)
        ca_debug("the modem was enabled (its storage read): the waiting resync is not needed");
    self->resync_wanted = FALSE;
    self->resync_stuck = FALSE;
    ca_clear_source(&self->resync_defer);
}

void
ca_sms_resync_clear(CaSms *self)
{
    ca_clear_source(&self->resync_timer);
    ca_clear_source(&self->resync_defer);
    self->resync_wanted = FALSE;
    self->resync_stuck = FALSE;
    g_clear_object(&self->resync_task); /* cancelled with self->cancellable */
}
