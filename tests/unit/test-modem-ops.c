/* CaModemOps, the modem's one owner, against a fake ModemManager modem on a private bus:
 * reset and its fallback (Modem.Reset answered Unsupported: Disable then Enable), the
 * resync's cycle, the lease (one operation at a time, in order, a few waiting, more
 * refused), the outage signals around disruptive operations, cancellation of a waiting
 * operation, and "no modem". */
#include "error.h"
#include "modem-ops.h"

#include <gio/gio.h>
#include <libmm-glib.h>

#define MODEM_PATH "/org/freedesktop/ModemManager1/Modem/0"

static const char introspection[] =
    "<node><interface name='org.freedesktop.ModemManager1.Modem'>"
    "<method name='Reset'/>"
    "<method name='Enable'><arg name='enable' type='b' direction='in'/></method>"
    "</interface></node>";

typedef struct {
    GTestDBus *bus;
    GDBusConnection *server; /* owns the fake's name */
    GDBusConnection *client;
    guint registration;
    guint owner;
    GDBusNodeInfo *info;
    GString *calls; /* "R", "D", "E" in the order the fake saw them */
    gboolean reset_unsupported;
    guint delay_ms; /* every answer comes this late */
    MMModem *modem;
    CaModemOps *ops;
    GString *signals; /* "begin:cycle:90 end:cycle:1 idle" */
    guint pending;
    gboolean named; /* the fake owns ModemManager's name */
} Fixture;

static void
name_acquired_cb(GDBusConnection *connection, const char *name, gpointer user_data)
{
    ((Fixture *) user_data)->named = TRUE;
}

typedef struct {
    GDBusMethodInvocation *invocation;
    gboolean unsupported;
} Answer;

static gboolean
answer_cb(gpointer data)
{
    Answer *a = data;

    if (a->unsupported)
        g_dbus_method_invocation_return_dbus_error(
            a->invocation, "org.freedesktop.ModemManager1.Error.Core.Unsupported",
            "Cannot reset the modem");
    else
        g_dbus_method_invocation_return_value(a->invocation, NULL);
    g_free(a);
    return G_SOURCE_REMOVE;
}

static void
method_call(GDBusConnection *connection, const char *sender, const char *path,
            const char *interface, const char *method, GVariant *parameters,
            GDBusMethodInvocation *invocation, gpointer user_data)
{
    Fixture *f = user_data;
    Answer *a = g_new0(Answer, 1);

    a->invocation = invocation;
    if (g_str_equal(method, "Reset")) {
        g_string_append(f->calls, "R");
        a->unsupported = f->reset_unsupported;
    } else {
        gboolean enable;

        g_variant_get(parameters, "(b)", &enable);
        g_string_append(f->calls, enable ? "E" : "D");
    }
    g_timeout_add(f->delay_ms, answer_cb, a);
}

static const GDBusInterfaceVTable vtable = {method_call, NULL, NULL, {0}};

static void
outage_begin_cb(CaModemOps *ops, const char *op, guint max_s, gpointer user_data)
{
    Fixture *f = user_data;

    g_string_append_printf(f->signals, "begin:%s:%u ", op, max_s);
}

static void
outage_end_cb(CaModemOps *ops, const char *op, gboolean ok, gpointer user_data)
{
    Fixture *f = user_data;

    g_string_append_printf(f->signals, "end:%s:%d ", op, ok);
}

static void
idle_cb(CaModemOps *ops, gpointer user_data)
{
    Fixture *f = user_data;

    g_string_append(f->signals, "idle ");
}

static void
setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    const char *address;

    f->bus = g_test_dbus_new(G_TEST_DBUS_NONE);
    g_test_dbus_up(f->bus);
    address = g_test_dbus_get_bus_address(f->bus);
    f->server =
        g_dbus_connection_new_for_address_sync(address,
                                               G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                               NULL, NULL, &error);
    g_assert_no_error(error);
    f->client =
        g_dbus_connection_new_for_address_sync(address,
                                               G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                               NULL, NULL, &error);
    g_assert_no_error(error);
    f->info = g_dbus_node_info_new_for_xml(introspection, &error);
    g_assert_no_error(error);
    f->registration = g_dbus_connection_register_object(
        f->server, MODEM_PATH, f->info->interfaces[0], &vtable, f, NULL, &error);
    g_assert_no_error(error);
    f->owner = g_bus_own_name_on_connection(f->server, MM_DBUS_SERVICE, G_BUS_NAME_OWNER_FLAGS_NONE,
                                            name_acquired_cb, NULL, f, NULL);
    while (!f->named)
        g_main_context_iteration(NULL, TRUE);
    f->calls = g_string_new(NULL);
    f->signals = g_string_new(NULL);
    f->delay_ms = 20;
    (void) MM_CORE_ERROR; /* maps ModemManager's D-Bus error names */
    f->modem = g_initable_new(MM_TYPE_MODEM, NULL, &error, "g-connection", f->client, "g-name",
                              MM_DBUS_SERVICE, "g-object-path", MODEM_PATH, "g-interface-name",
                              "org.freedesktop.ModemManager1.Modem", "g-flags",
                              G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES |
                                  G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS |
                                  G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START,
                              NULL);
    g_assert_no_error(error);
    f->ops = ca_modem_ops_new();
    g_signal_connect(f->ops, "outage-begin", G_CALLBACK(outage_begin_cb), f);
    g_signal_connect(f->ops, "outage-end", G_CALLBACK(outage_end_cb), f);
    g_signal_connect(f->ops, "idle", G_CALLBACK(idle_cb), f);
    ca_modem_ops_set_modem(f->ops, f->modem);
}

static void
teardown(Fixture *f, gconstpointer data)
{
    g_clear_object(&f->ops);
    g_clear_object(&f->modem);
    g_bus_unown_name(f->owner);
    g_dbus_connection_unregister_object(f->server, f->registration);
    g_dbus_node_info_unref(f->info);
    g_dbus_connection_close_sync(f->client, NULL, NULL);
    g_dbus_connection_close_sync(f->server, NULL, NULL);
    g_clear_object(&f->client);
    g_clear_object(&f->server);
    g_test_dbus_down(f->bus);
    g_clear_object(&f->bus);
    g_string_free(f->calls, TRUE);
    g_string_free(f->signals, TRUE);
    /* Let GDBus finish its worker-side unrefs. */
    while (g_main_context_iteration(NULL, FALSE))
        ;
}

typedef struct {
    Fixture *f;
    GError *error;
    gboolean done;
    char tag;
} Call;

static void
run_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Call *c = user_data;

    ca_modem_ops_run_finish(CA_MODEM_OPS(source), result, &c->error);
    c->done = TRUE;
    g_string_append_printf(c->f->signals, "done:%c ", c->tag);
    c->f->pending--;
}

static void
run(Fixture *f, Call *c, char tag, CaModemOp op, GCancellable *cancellable)
{
    c->f = f;
    c->tag = tag;
    f->pending++;
    ca_modem_ops_run_async(f->ops, op, "test", cancellable, run_ready, c);
}

static void
wait_all(Fixture *f)
{
    while (f->pending > 0)
        g_main_context_iteration(NULL, TRUE);
}

static void
test_reset(Fixture *f, gconstpointer data)
{
    Call c = {0};

    run(f, &c, 'a', CA_MODEM_OP_RESET, NULL);
    g_assert_true(ca_modem_ops_is_busy(f->ops));
    wait_all(f);
    g_assert_no_error(c.error);
    g_assert_cmpstr(f->calls->str, ==, "R");
    g_assert_cmpstr(f->signals->str, ==, "begin:reset:180 end:reset:1 done:a idle ");
    g_assert_false(ca_modem_ops_is_busy(f->ops));
}

static void
test_reset_fallback(Fixture *f, gconstpointer data)
{
    Call c = {0};

    f->reset_unsupported = TRUE;
    run(f, &c, 'a', CA_MODEM_OP_RESET, NULL);
    wait_all(f);
    g_assert_no_error(c.error);
    g_assert_cmpstr(f->calls->str, ==, "RDE");
}

static void
test_lease_in_order(Fixture *f, gconstpointer data)
{
    Call a = {0}, b = {0}, e = {0};

    run(f, &a, 'a', CA_MODEM_OP_CYCLE, NULL);
    run(f, &b, 'b', CA_MODEM_OP_RESET, NULL);
    run(f, &e, 'e', CA_MODEM_OP_ENABLE, NULL);
    wait_all(f);
    g_assert_no_error(a.error);
    g_assert_no_error(b.error);
    g_assert_no_error(e.error);
    /* One at a time: the reset only after the cycle's Enable was answered. */
    g_assert_cmpstr(f->calls->str, ==, "DERE");
    /* Enabling a disabled modem is no outage; idle once, at the end. */
    g_assert_cmpstr(f->signals->str, ==,
                    "begin:cycle:90 end:cycle:1 done:a begin:reset:180 end:reset:1 done:b "
                    "done:e idle ");
}

static void
test_queue_limit(Fixture *f, gconstpointer data)
{
    Call c[6] = {{0}};

    for (guint i = 0; i < G_N_ELEMENTS(c); i++)
        run(f, &c[i], (char) ('a' + i), CA_MODEM_OP_CYCLE, NULL);
    wait_all(f);
    /* One in flight, four waiting: the sixth was refused, before the first one ended. */
    g_assert_error(c[5].error, CA_ERROR, CA_ERROR_LIMIT);
    g_assert_true(g_str_has_prefix(f->signals->str, "begin:cycle:90 done:f "));
    for (guint i = 0; i < 5; i++)
        g_assert_no_error(c[i].error);
    g_assert_cmpstr(f->calls->str, ==, "DEDEDEDEDE");
    for (guint i = 0; i < G_N_ELEMENTS(c); i++)
        g_clear_error(&c[i].error);
}

static void
test_cancel_waiting(Fixture *f, gconstpointer data)
{
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    Call a = {0}, b = {0};

    run(f, &a, 'a', CA_MODEM_OP_RESET, NULL);
    run(f, &b, 'b', CA_MODEM_OP_CYCLE, cancellable);
    g_cancellable_cancel(cancellable);
    wait_all(f);
    g_assert_no_error(a.error);
    g_assert_error(b.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_assert_cmpstr(f->calls->str, ==, "R");
    g_clear_error(&b.error);
}

static void
test_no_modem(Fixture *f, gconstpointer data)
{
    Call c = {0};

    ca_modem_ops_set_modem(f->ops, NULL);
    run(f, &c, 'a', CA_MODEM_OP_RESET, NULL);
    wait_all(f);
    g_assert_error(c.error, CA_ERROR, CA_ERROR_NOT_READY);
    g_assert_cmpstr(f->calls->str, ==, "");
    g_assert_cmpstr(f->signals->str, ==, "done:a ");
    g_clear_error(&c.error);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/modem-ops/reset", Fixture, NULL, setup, test_reset, teardown);
    g_test_add("/modem-ops/reset-fallback", Fixture, NULL, setup, test_reset_fallback, teardown);
    g_test_add("/modem-ops/lease-in-order", Fixture, NULL, setup, test_lease_in_order, teardown);
    g_test_add("/modem-ops/queue-limit", Fixture, NULL, setup, test_queue_limit, teardown);
    g_test_add("/modem-ops/cancel-waiting", Fixture, NULL, setup, test_cancel_waiting, teardown);
    g_test_add("/modem-ops/no-modem", Fixture, NULL, setup, test_no_modem, teardown);
    return g_test_run();
}
