/* timedate: NTPSynchronized and SetTime of systemd-timedated, one GTask step machine
 * (see timedate.h). */
#include "timedate.h"

#include "bus.h"
#include "error.h"

#define TIMEDATE_SERVICE   "org.freedesktop.timedate1"
#define TIMEDATE_PATH      "/org/freedesktop/timedate1"
#define TIMEDATE_INTERFACE "org.freedesktop.timedate1"
#define TIMEDATE_TIMEOUT   25000 /* ms: timedated may have to be started, polkit asked */

typedef enum {
    TIMEDATE_OP_GET_NTP,
    TIMEDATE_OP_SET_TIME,
} TimedateOp;

typedef enum {
    TIMEDATE_STEP_BUS,  /* connect to the system bus */
    TIMEDATE_STEP_CALL, /* Properties.Get or SetTime */
    TIMEDATE_STEP_DONE,
} TimedateStep;

typedef struct {
    TimedateOp op;
    TimedateStep step;
    gint64 unix_us;
    gboolean synced;
    GDBusConnection *bus;
} TimedateCtx;

static void timedate_step(GTask *task);

static void
timedate_ctx_free(TimedateCtx *c)
{
    if (c->bus)
        g_dbus_connection_close(c->bus, NULL, NULL, NULL);
    g_clear_object(&c->bus);
    g_free(c);
}

/* timedated's D-Bus error as ours (C10), its name kept in the message for operators. */
static GError *
translate_error(GError *error)
{
    g_autofree char *name = g_dbus_error_get_remote_error(error);
    gboolean absent = g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
                      g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER);
    GError *ours;

    g_dbus_error_strip_remote_error(error);
    ours = g_error_new(CA_ERROR, absent ? CA_ERROR_NOT_READY : CA_ERROR_FAILED, "%s%s%s%s",
                       error->message, name ? " (" : "", name ? name : "", name ? ")" : "");
    g_error_free(error);
    return ours;
}

static void
bus_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GTask) task = user_data;
    TimedateCtx *c = g_task_get_task_data(task);
    GError *error = NULL;

    c->bus = ca_bus_new_finish(result, &error);
    if (!c->bus) {
        g_task_return_error(task, error);
        return;
    }
    c->step = TIMEDATE_STEP_CALL;
    timedate_step(g_steal_pointer(&task));
}

static void
call_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GTask) task = user_data;
    TimedateCtx *c = g_task_get_task_data(task);
    GError *error = NULL;
    g_autoptr(GVariant) ret =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

    if (!ret) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            g_task_return_error(task, error);
        else
            g_task_return_error(task, translate_error(error));
        return;
    }
    if (c->op == TIMEDATE_OP_GET_NTP) {
        g_autoptr(GVariant) value = NULL;

        g_variant_get(ret, "(v)", &value);
        if (!g_variant_is_of_type(value, G_VARIANT_TYPE_BOOLEAN)) {
            g_task_return_new_error(task, CA_ERROR, CA_ERROR_FAILED,
                                    "timedated: NTPSynchronized is of type %s, not b",
                                    g_variant_get_type_string(value));
            return;
        }
        c->synced = g_variant_get_boolean(value);
    }
    c->step = TIMEDATE_STEP_DONE;
    timedate_step(g_steal_pointer(&task));
}

static void
timedate_step(GTask *task)
{
    TimedateCtx *c = g_task_get_task_data(task);

    if (g_task_return_error_if_cancelled(task)) {
        g_object_unref(task);
        return;
    }
    switch (c->step) {
    case TIMEDATE_STEP_BUS:
        ca_bus_new_async(g_task_get_cancellable(task), bus_ready, task);
        return;
    case TIMEDATE_STEP_CALL:
        switch (c->op) {
        case TIMEDATE_OP_GET_NTP:
            g_dbus_connection_call(c->bus, TIMEDATE_SERVICE, TIMEDATE_PATH,
                                   "org.freedesktop.DBus.Properties", "Get",
                                   g_variant_new("(ss)", TIMEDATE_INTERFACE, "NTPSynchronized"),
                                   G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, TIMEDATE_TIMEOUT,
                                   g_task_get_cancellable(task), call_ready, task);
            return;
        case TIMEDATE_OP_SET_TIME:
            g_dbus_connection_call(c->bus, TIMEDATE_SERVICE, TIMEDATE_PATH, TIMEDATE_INTERFACE,
                                   "SetTime", g_variant_new("(xbb)", c->unix_us, FALSE, FALSE),
                                   G_VARIANT_TYPE_UNIT, G_DBUS_CALL_FLAGS_NONE, TIMEDATE_TIMEOUT,
                                   g_task_get_cancellable(task), call_ready, task);
            return;
        }
        g_assert_not_reached();
    case TIMEDATE_STEP_DONE:
        g_task_return_boolean(task, TRUE);
        g_object_unref(task);
        return;
    }
    g_assert_not_reached();
}

static void
timedate_start(TimedateOp op, gint64 unix_us, GCancellable *cancellable,
               GAsyncReadyCallback callback, gpointer user_data, gpointer tag)
{
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    TimedateCtx *c = g_new0(TimedateCtx, 1);

    g_task_set_source_tag(task, tag);
    c->op = op;
    c->unix_us = unix_us;
    g_task_set_task_data(task, c, (GDestroyNotify) timedate_ctx_free);
    timedate_step(task);
}

void
ca_timedate_get_ntp_async(GCancellable *cancellable, GAsyncReadyCallback callback,
                          gpointer user_data)
{
    timedate_start(TIMEDATE_OP_GET_NTP, 0, cancellable, callback, user_data,
                   ca_timedate_get_ntp_async);
}

gboolean
ca_timedate_get_ntp_finish(GAsyncResult *result, gboolean *out_synced, GError **error)
{
    TimedateCtx *c = g_task_get_task_data(G_TASK(result));

    if (!g_task_propagate_boolean(G_TASK(result), error))
        return FALSE;
    *out_synced = c->synced;
    return TRUE;
}

void
ca_timedate_set_time_async(gint64 unix_us, GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data)
{
    timedate_start(TIMEDATE_OP_SET_TIME, unix_us, cancellable, callback, user_data,
                   ca_timedate_set_time_async);
}

gboolean
ca_timedate_set_time_finish(GAsyncResult *result, GError **error)
{
    return g_task_propagate_boolean(G_TASK(result), error);
}
