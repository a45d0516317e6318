/* actions: power-cycle and reboot, one GTask step machine (see actions.h). */
#define CA_LOG_MODULE "system"
#include "actions.h"

#include "autocleanups.h"
#include "bus.h"
#include "error.h"
#include "log.h"

#define LOGIND_SERVICE   "org.freedesktop.login1"
#define LOGIND_PATH      "/org/freedesktop/login1"
#define LOGIND_INTERFACE "org.freedesktop.login1.Manager"
#define LOGIND_TIMEOUT   60000 /* ms */

typedef enum {
    ACTION_STEP_START,        /* choose: a command or systemd-logind */
    ACTION_STEP_COMMAND,      /* spawn the command, arm its timeout */
    ACTION_STEP_COMMAND_WAIT, /* wait for it to exit (or be killed) */
    ACTION_STEP_BUS,          /* connect to the system bus */
    ACTION_STEP_LOGIND,       /* Manager.Reboot(false) */
    ACTION_STEP_DONE,
} ActionStep;

typedef struct {
    CaSystemAction action;
    ActionStep step;
    CaSystemSettings *settings;
    GSubprocess *proc;
    GSource *timeout; /* owned: kills the command */
    gboolean timed_out;
    GDBusConnection *bus;
} ActionCtx;

static void action_step(GTask *task);

const char *
ca_system_action_to_string(CaSystemAction action)
{
    switch (action) {
    case CA_SYSTEM_ACTION_POWER_CYCLE:
        return "power-cycle";
    case CA_SYSTEM_ACTION_REBOOT:
        return "reboot";
    }
    g_assert_not_reached();
}

static void
action_ctx_free(ActionCtx *c)
{
    ca_clear_source(&c->timeout);
    g_clear_object(&c->proc);
    if (c->bus)
        g_dbus_connection_close(c->bus, NULL, NULL, NULL);
    g_clear_object(&c->bus);
    ca_system_settings_free(c->settings);
    g_free(c);
}

static const char *
command_of(const ActionCtx *c)
{
    switch (c->action) {
    case CA_SYSTEM_ACTION_POWER_CYCLE:
        return c->settings->power_cycle_command;
    case CA_SYSTEM_ACTION_REBOOT:
        return c->settings->reboot_command;
    }
    g_assert_not_reached();
}

static gboolean
command_timeout_cb(gpointer user_data)
{
    ActionCtx *c = user_data;

    ca_clear_source(&c->timeout);
    c->timed_out = TRUE;
    g_subprocess_force_exit(c->proc);
    return G_SOURCE_REMOVE;
}

static void
command_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GTask) task = user_data;
    ActionCtx *c = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;

    if (!g_subprocess_wait_check_finish(G_SUBPROCESS(source), result, &error) &&
        g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        g_task_return_error(task, g_steal_pointer(&error));
        return;
    }
    ca_clear_source(&c->timeout);
    if (c->timed_out) {
        g_task_return_new_error(task, CA_ERROR, CA_ERROR_TIMEOUT,
                                "command timed out and was killed");
        return;
    }
    if (error) {
        g_task_return_error(task, g_steal_pointer(&error));
        return;
    }
    c->step = ACTION_STEP_DONE;
    action_step(g_steal_pointer(&task));
}

static void
bus_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GTask) task = user_data;
    ActionCtx *c = g_task_get_task_data(task);
    GError *error = NULL;

    c->bus = ca_bus_new_finish(result, &error);
    if (!c->bus) {
        g_task_return_error(task, error);
        return;
    }
    c->step = ACTION_STEP_LOGIND;
    action_step(g_steal_pointer(&task));
}

static void
logind_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GTask) task = user_data;
    ActionCtx *c = g_task_get_task_data(task);
    GError *error = NULL;
    g_autoptr(GVariant) ret =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

    if (!ret) {
        g_dbus_error_strip_remote_error(error);
        g_task_return_error(task, error);
        return;
    }
    c->step = ACTION_STEP_DONE;
    action_step(g_steal_pointer(&task));
}

static void
action_step(GTask *task)
{
    ActionCtx *c = g_task_get_task_data(task);
    GError *error = NULL;

    if (g_task_return_error_if_cancelled(task)) {
        g_object_unref(task);
        return;
    }
    switch (c->step) {
    case ACTION_STEP_START:
        if (*command_of(c))
            c->step = ACTION_STEP_COMMAND;
        else if (c->action == CA_SYSTEM_ACTION_REBOOT)
            c->step = ACTION_STEP_BUS;
        else {
            g_task_return_new_error(task, CA_ERROR, CA_ERROR_INVALID_CONFIG, "no %s-command is set",
                                    ca_system_action_to_string(c->action));
            g_object_unref(task);
            return;
        }
        action_step(task);
        return;
    case ACTION_STEP_COMMAND: {
        g_auto(GStrv) argv = NULL;

        if (!g_shell_parse_argv(command_of(c), NULL, &argv, &error)) {
            g_task_return_new_error(task, CA_ERROR, CA_ERROR_INVALID_CONFIG, "%s", error->message);
            g_error_free(error);
            g_object_unref(task);
            return;
        }
        c->proc =
            g_subprocess_newv((const char *const *) argv, G_SUBPROCESS_FLAGS_STDIN_INHERIT, &error);
        if (!c->proc) {
            g_task_return_error(task, error);
            g_object_unref(task);
            return;
        }
        c->timeout = g_timeout_source_new_seconds(c->settings->command_timeout_s);
        g_source_set_callback(c->timeout, command_timeout_cb, c, NULL);
        g_source_attach(c->timeout, g_main_context_get_thread_default());
        c->step = ACTION_STEP_COMMAND_WAIT;
        action_step(task);
        return;
    }
    case ACTION_STEP_COMMAND_WAIT:
        g_subprocess_wait_check_async(c->proc, g_task_get_cancellable(task), command_ready, task);
        return;
    case ACTION_STEP_BUS:
        ca_bus_new_async(g_task_get_cancellable(task), bus_ready, task);
        return;
    case ACTION_STEP_LOGIND:
        g_dbus_connection_call(c->bus, LOGIND_SERVICE, LOGIND_PATH, LOGIND_INTERFACE, "Reboot",
                               g_variant_new("(b)", FALSE), NULL, G_DBUS_CALL_FLAGS_NONE,
                               LOGIND_TIMEOUT, g_task_get_cancellable(task), logind_ready, task);
        return;
    case ACTION_STEP_DONE:
        g_task_return_boolean(task, TRUE);
        g_object_unref(task);
        return;
    }
    g_assert_not_reached();
}

void
ca_system_action_run_async(CaSystemAction action, const CaSystemSettings *settings,
                           GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data)
{
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    ActionCtx *c = g_new0(ActionCtx, 1);

    g_task_set_source_tag(task, ca_system_action_run_async);
    c->action = action;
    c->step = ACTION_STEP_START;
    c->settings = ca_system_settings_copy(settings);
    g_task_set_task_data(task, c, (GDestroyNotify) action_ctx_free);
    action_step(task);
}

gboolean
ca_system_action_run_finish(GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}
