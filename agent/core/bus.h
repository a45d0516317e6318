/* bus: a private connection to the system bus for one adapter.
 *
 * GLib's g_bus_get() shares one connection per process and replaces it only once every
 * reference to the closed one is gone. libnm and libmm-glib objects keep references long
 * after the bus closed, so after a system bus restart g_bus_get() kept handing back the
 * closed connection and the agent never came back on the bus. Each adapter (modem,
 * uplink) owns its own connection instead, watches its "closed" signal, drops everything
 * built on it, and asks for a new one. exit-on-close is off on the connection returned. */
#pragma once
#include <gio/gio.h>

void ca_bus_new_async(GCancellable *cancellable, GAsyncReadyCallback callback, gpointer user_data);
GDBusConnection *ca_bus_new_finish(GAsyncResult *result, GError **error);
