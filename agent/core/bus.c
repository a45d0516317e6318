/* bus: a private connection to the system bus for one adapter (see bus.h). */
#include "bus.h"

static void
connection_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    GError *error = NULL;
    GDBusConnection *bus = g_dbus_connection_new_for_address_finish(result, &error);

    if (bus) {
        g_dbus_connection_set_exit_on_close(bus, FALSE);
        g_task_return_pointer(task, bus, g_object_unref);
    } else {
        g_task_return_error(task, error);
    }
    g_object_unref(task);
}

void
ca_bus_new_async(GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    GError *error = NULL;
    /* For the system bus this reads DBUS_SYSTEM_BUS_ADDRESS or returns the well-known
     * socket path: no I/O, nothing that blocks the main loop. */
    char *address = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SYSTEM, cancellable, &error);

    g_task_set_source_tag(task, ca_bus_new_async);
    if (!address) {
        g_task_return_error(task, error);
        g_object_unref(task);
        return;
    }
    g_dbus_connection_new_for_address(address,
                                      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                          G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                      NULL, cancellable, connection_ready, task);
    g_free(address);
}

GDBusConnection *
ca_bus_new_finish(GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}
