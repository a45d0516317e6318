/* Unit tests for the system actions (agent/system/actions.c) with harmless commands: the
 * outcome of a command's exit status, its timeout, a command line that does not parse, a
 * missing power-cycle command, and cancellation. logind is not called here (the lab's
 * reboot goes through reboot-command too). Paths: /system-actions/<case>. */
#include "actions.h"
#include "error.h"

#include <string.h>

typedef struct {
    GMainLoop *loop;
    gboolean ok;
    GError *error;
} Wait;

static void
run_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Wait *w = user_data;

    w->ok = ca_system_action_run_finish(result, &w->error);
    g_main_loop_quit(w->loop);
}

static gboolean
run(CaSystemAction action, const char *command, guint timeout_s, GCancellable *cancellable,
    GError **error)
{
    CaSystemSettings s = {
        .power_cycle_command = (char *) (action == CA_SYSTEM_ACTION_POWER_CYCLE ? command : ""),
        .reboot_command = (char *) (action == CA_SYSTEM_ACTION_REBOOT ? command : ""),
        .command_timeout_s = timeout_s,
    };
    Wait w = {.loop = g_main_loop_new(NULL, FALSE)};

    ca_system_action_run_async(action, &s, cancellable, run_ready, &w);
    g_main_loop_run(w.loop);
    g_main_loop_unref(w.loop);
    if (w.error)
        g_propagate_error(error, w.error);
    return w.ok;
}

static void
test_command_ok(void)
{
    g_autoptr(GError) error = NULL;

    g_assert_true(run(CA_SYSTEM_ACTION_POWER_CYCLE, "/bin/sh -c 'exit 0'", 5, NULL, &error));
    g_assert_no_error(error);
    g_assert_true(run(CA_SYSTEM_ACTION_REBOOT, "/bin/true", 5, NULL, &error));
    g_assert_no_error(error);
}

static void
test_command_fails(void)
{
    g_autoptr(GError) error = NULL;

    g_assert_false(run(CA_SYSTEM_ACTION_POWER_CYCLE, "/bin/sh -c 'exit 3'", 5, NULL, &error));
    g_assert_nonnull(error);
    g_assert_nonnull(strstr(error->message, "3"));
    g_clear_error(&error);
    g_assert_false(run(CA_SYSTEM_ACTION_REBOOT, "/nonexistent/reboot", 5, NULL, &error));
    g_assert_nonnull(error);
}

static void
test_command_timeout(void)
{
    g_autoptr(GError) error = NULL;
    gint64 t0 = g_get_monotonic_time();

    g_assert_false(run(CA_SYSTEM_ACTION_POWER_CYCLE, "/bin/sleep 30", 1, NULL, &error));
    g_assert_error(error, CA_ERROR, CA_ERROR_TIMEOUT);
    g_assert_cmpstr(error->message, ==, "command timed out and was killed");
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 10 * G_USEC_PER_SEC);
}

static void
test_bad_config(void)
{
    g_autoptr(GError) error = NULL;

    g_assert_false(run(CA_SYSTEM_ACTION_POWER_CYCLE, "/bin/echo 'unterminated", 5, NULL, &error));
    g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG);
    g_clear_error(&error);
    g_assert_false(run(CA_SYSTEM_ACTION_POWER_CYCLE, "", 5, NULL, &error));
    g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG);
}

static void
test_cancelled(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GCancellable) cancellable = g_cancellable_new();

    g_cancellable_cancel(cancellable);
    g_assert_false(run(CA_SYSTEM_ACTION_REBOOT, "/bin/true", 5, cancellable, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/system-actions/command-ok", test_command_ok);
    g_test_add_func("/system-actions/command-fails", test_command_fails);
    g_test_add_func("/system-actions/command-timeout", test_command_timeout);
    g_test_add_func("/system-actions/bad-config", test_bad_config);
    g_test_add_func("/system-actions/cancelled", test_cancelled);
    return g_test_run();
}
