/* modem-ops: the lease over the modem's disruptive operations and their step machine.
 * One operation runs at a time; the others wait in a short queue in the order they came.
 * Reset and cycle (Disable + Enable) announce a planned outage around themselves.
 * Owns: the queue, the operation in flight. Does not own: the modem (CaModem selects it). */
#define CA_LOG_MODULE "modem"
#include "modem-ops.h"

#include "autocleanups.h"
#include "error.h"
#include "log.h"

#include <string.h>

#define MAX_WAITING 4 /* operations queued behind the one in flight */

struct _CaModemOps {
    GObject parent;
    MMModem *modem;
    GTask *current; /* the operation holding the lease, or NULL */
    GQueue waiting; /* GTask*, in order */
};

G_DEFINE_FINAL_TYPE(CaModemOps, ca_modem_ops, G_TYPE_OBJECT)

enum { SIGNAL_OUTAGE_BEGIN, SIGNAL_OUTAGE_END, SIGNAL_IDLE, N_SIGNALS };
static guint signals[N_SIGNALS];

const char *
ca_modem_op_to_string(CaModemOp op)
{
    switch (op) {
    case CA_MODEM_OP_RESET:
        return "reset";
    case CA_MODEM_OP_CYCLE:
        return "cycle";
    case CA_MODEM_OP_ENABLE:
        return "enable";
    }
    g_assert_not_reached();
}

/* Operations that take a working modem (and its data link) down. */
static gboolean
op_is_outage(CaModemOp op, guint *out_max_s)
{
    switch (op) {
    case CA_MODEM_OP_RESET:
        *out_max_s = CA_MODEM_OPS_RESET_OUTAGE_S;
        return TRUE;
    case CA_MODEM_OP_CYCLE:
        *out_max_s = CA_MODEM_OPS_CYCLE_OUTAGE_S;
        return TRUE;
    case CA_MODEM_OP_ENABLE:
        return FALSE;
    }
    g_assert_not_reached();
}

/*****************************************************************************/
/* One operation (GTask step machine) */

typedef enum {
    OP_STEP_FIRST,
    OP_STEP_RESET,   /* Modem.Reset (reset only) */
    OP_STEP_DISABLE, /* cycle, or reset's fallback */
    OP_STEP_ENABLE,
    OP_STEP_LAST,
} OpStep;

typedef struct {
    OpStep step;
    CaModemOp op;
    char *reason;
    MMModem *modem;            /* the modem it runs on, taken when the lease is granted */
    gboolean outage;           /* "outage-begin" was emitted */
    GCancellable *cancellable; /* the operation's own: stop() and the caller's cancel it */
    gulong cancel_id;          /* on the caller's cancellable */
} OpContext;

static void op_step(GTask *task);
static void pump(CaModemOps *self);

static void
op_context_free(OpContext *ctx)
{
    g_free(ctx->reason);
    g_clear_object(&ctx->modem);
    g_clear_object(&ctx->cancellable);
    g_free(ctx);
}

/* "Modem/3", what a person recognises from mmcli. */
static const char *
modem_name(MMModem *modem)
{
    const char *path = mm_modem_get_path(modem);
    const char *prefix = MM_DBUS_PATH "/";

    if (!path)
        return "?";
    return g_str_has_prefix(path, prefix) ? path + strlen(prefix) : path;
}

/* Hand the result back, release the lease, tell who listens, start the next one. */
static void
op_finish(GTask *task, GError *error /* consumed, NULL: success */)
{
    CaModemOps *self = g_task_get_source_object(task);
    OpContext *ctx = g_task_get_task_data(task);
    g_autoptr(CaModemOps) keep = g_object_ref(self); /* the signals may drop the last ref */

    (void) keep;
    if (ctx->cancel_id)
        g_cancellable_disconnect(g_task_get_cancellable(task), ctx->cancel_id);
    ctx->cancel_id = 0;
    if (self->current == task)
        self->current = NULL;
    if (ctx->outage)
        g_signal_emit(self, signals[SIGNAL_OUTAGE_END], 0, ca_modem_op_to_string(ctx->op),
                      error == NULL);
    if (error)
        g_task_return_error(task, error);
    else
        g_task_return_boolean(task, TRUE);
    g_object_unref(task);
    pump(self);
}

static void
reset_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    OpContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;

    if (mm_modem_reset_finish(MM_MODEM(source), result, &error)) {
        ca_msg("modem %s reset", modem_name(ctx->modem));
        ctx->step = OP_STEP_LAST;
    } else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        op_finish(task, g_steal_pointer(&error));
        return;
    } else if (g_error_matches(error, MM_CORE_ERROR, MM_CORE_ERROR_UNSUPPORTED)) {
        /* The plugin cannot reset this modem: restart its radio stack instead (Disable then
         * Enable: detach, power the radio down and up, attach again). */
        ca_msg("modem %s cannot be reset (%s); disabling and enabling it instead",
               modem_name(ctx->modem), error->message);
        ctx->step = OP_STEP_DISABLE;
    } else {
        op_finish(task,
                  g_error_new(CA_ERROR, CA_ERROR_MODEM, "modem reset failed: %s", error->message));
        return;
    }
    op_step(task);
}

static void
disable_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    OpContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;

    if (!mm_modem_disable_finish(MM_MODEM(source), result, &error)) {
        op_finish(task, g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                            ? g_steal_pointer(&error)
                            : g_error_new(CA_ERROR, CA_ERROR_MODEM, "Disable failed: %s",
                                          error->message));
        return;
    }
    ctx->step = OP_STEP_ENABLE;
    op_step(task);
}

static void
enable_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    OpContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;

    if (!mm_modem_enable_finish(MM_MODEM(source), result, &error) &&
        !g_error_matches(error, MM_CORE_ERROR, MM_CORE_ERROR_IN_PROGRESS)) {
        op_finish(task,
                  g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                      ? g_steal_pointer(&error)
                      : g_error_new(CA_ERROR, CA_ERROR_MODEM, "Enable failed: %s", error->message));
        return;
    }
    ca_msg("modem %s enabled", modem_name(ctx->modem));
    ctx->step = OP_STEP_LAST;
    op_step(task);
}

static void
op_step(GTask *task)
{
    OpContext *ctx = g_task_get_task_data(task);
    GCancellable *cancellable = ctx->cancellable;
    GError *error = NULL;

    if (g_cancellable_set_error_if_cancelled(cancellable, &error)) {
        op_finish(task, error);
        return;
    }
    switch (ctx->step) {
    case OP_STEP_FIRST:
        ca_msg("modem %s: %s (%s)", modem_name(ctx->modem), ca_modem_op_to_string(ctx->op),
               ctx->reason);
        ctx->step = ctx->op == CA_MODEM_OP_RESET   ? OP_STEP_RESET
                    : ctx->op == CA_MODEM_OP_CYCLE ? OP_STEP_DISABLE
                                                   : OP_STEP_ENABLE;
        op_step(task);
        return;
    case OP_STEP_RESET:
        mm_modem_reset(ctx->modem, cancellable, reset_ready, task);
        return;
    case OP_STEP_DISABLE:
        mm_modem_disable(ctx->modem, cancellable, disable_ready, task);
        return;
    case OP_STEP_ENABLE:
        mm_modem_enable(ctx->modem, cancellable, enable_ready, task);
        return;
    case OP_STEP_LAST:
        op_finish(task, NULL);
        return;
    }
    g_assert_not_reached();
}

/* A caller cancelled an operation that still waits for the lease: drop it now. */
static gboolean
cancel_waiting_idle_cb(gpointer user_data)
{
    GTask *task = user_data;
    CaModemOps *self = g_task_get_source_object(task);

    if (g_queue_remove(&self->waiting, task))
        op_finish(task, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
    return G_SOURCE_REMOVE;
}

static void
cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
    GTask *task = user_data;
    OpContext *ctx = g_task_get_task_data(task);
    GSource *idle = g_idle_source_new();

    g_cancellable_cancel(ctx->cancellable);
    /* Not from inside the cancellable's handler (g_cancellable_disconnect would deadlock). */
    g_source_set_callback(idle, cancel_waiting_idle_cb, g_object_ref(task), g_object_unref);
    g_source_attach(idle, NULL);
    g_source_unref(idle);
}

/* Grant the lease to the next waiting operation. */
static void
pump(CaModemOps *self)
{
    GTask *task;
    OpContext *ctx;
    guint max_s = 0;

    if (self->current)
        return;
    task = g_queue_pop_head(&self->waiting);
    if (!task) {
        g_signal_emit(self, signals[SIGNAL_IDLE], 0);
        return;
    }
    ctx = g_task_get_task_data(task);
    self->current = task;
    if (!self->modem) {
        op_finish(task, g_error_new_literal(CA_ERROR, CA_ERROR_NOT_READY, "no modem"));
        return;
    }
    ctx->modem = g_object_ref(self->modem);
    if (op_is_outage(ctx->op, &max_s)) {
        ctx->outage = TRUE;
        g_signal_emit(self, signals[SIGNAL_OUTAGE_BEGIN], 0, ca_modem_op_to_string(ctx->op), max_s);
    }
    op_step(task);
}

/*****************************************************************************/
/* Public API */

CaModemOps *
ca_modem_ops_new(void)
{
    return g_object_new(CA_TYPE_MODEM_OPS, NULL);
}

void
ca_modem_ops_set_modem(CaModemOps *self, MMModem *modem)
{
    g_return_if_fail(CA_IS_MODEM_OPS(self));
    g_set_object(&self->modem, modem);
}

void
ca_modem_ops_run_async(CaModemOps *self, CaModemOp op, const char *reason,
                       GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task;
    OpContext *ctx;

    g_return_if_fail(CA_IS_MODEM_OPS(self));

    task = g_task_new(self, cancellable, callback, user_data);
    g_task_set_source_tag(task, ca_modem_ops_run_async);
    if (!self->modem) {
        g_task_return_new_error(task, CA_ERROR, CA_ERROR_NOT_READY, "no modem");
        g_object_unref(task);
        return;
    }
    if (g_queue_get_length(&self->waiting) >= MAX_WAITING) {
        g_task_return_new_error(
            task, CA_ERROR, CA_ERROR_LIMIT, "the modem is busy (%s running, %u waiting)",
            ca_modem_op_to_string(((OpContext *) g_task_get_task_data(self->current))->op),
            g_queue_get_length(&self->waiting));
        g_object_unref(task);
        return;
    }
    ctx = g_new0(OpContext, 1);
    ctx->op = op;
    ctx->reason = g_strdup(reason ? reason : "asked");
    ctx->cancellable = g_cancellable_new();
    g_task_set_task_data(task, ctx, (GDestroyNotify) op_context_free);
    if (self->current)
        ca_info("modem %s waits for the %s in progress", ca_modem_op_to_string(op),
                ca_modem_op_to_string(((OpContext *) g_task_get_task_data(self->current))->op));
    if (cancellable)
        ctx->cancel_id = g_cancellable_connect(cancellable, G_CALLBACK(cancelled_cb), task, NULL);
    g_queue_push_tail(&self->waiting, task);
    pump(self);
}

gboolean
ca_modem_ops_run_finish(CaModemOps *self, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}

gboolean
ca_modem_ops_is_busy(CaModemOps *self)
{
    g_return_val_if_fail(CA_IS_MODEM_OPS(self), FALSE);
    return self->current || !g_queue_is_empty(&self->waiting);
}

void
ca_modem_ops_stop(CaModemOps *self)
{
    GQueue waiting = G_QUEUE_INIT;
    GTask *task;

    g_return_if_fail(CA_IS_MODEM_OPS(self));

    /* The one in flight ends through its callback with G_IO_ERROR_CANCELLED. */
    if (self->current)
        g_cancellable_cancel(((OpContext *) g_task_get_task_data(self->current))->cancellable);
    waiting = self->waiting;
    g_queue_init(&self->waiting);
    while ((task = g_queue_pop_head(&waiting)))
        op_finish(task, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED, "stopped"));
}

/*****************************************************************************/
/* GObject */

static void
ca_modem_ops_init(CaModemOps *self)
{
    g_queue_init(&self->waiting);
}

static void
ca_modem_ops_dispose(GObject *object)
{
    CaModemOps *self = CA_MODEM_OPS(object);

    ca_modem_ops_stop(self);
    g_clear_object(&self->modem);
    G_OBJECT_CLASS(ca_modem_ops_parent_class)->dispose(object);
}

static void
ca_modem_ops_finalize(GObject *object)
{
    G_OBJECT_CLASS(ca_modem_ops_parent_class)->finalize(object);
}

static void
ca_modem_ops_class_init(CaModemOpsClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);

    object_class->dispose = ca_modem_ops_dispose;
    object_class->finalize = ca_modem_ops_finalize;
    (void) MM_CORE_ERROR;
    signals[SIGNAL_OUTAGE_BEGIN] =
        g_signal_new("outage-begin", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_UINT);
    signals[SIGNAL_OUTAGE_END] =
        g_signal_new("outage-end", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_BOOLEAN);
    signals[SIGNAL_IDLE] = g_signal_new("idle", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, NULL, G_TYPE_NONE, 0);
}
