/* modem-time: the selected modem's network time (ModemManager's Modem.Time, which the
 * modem answers from the network's time, AT+CCLK? on most), for the clock choice of
 * clock-source.h. Owns: the read while it runs. Does not own: deciding what to trust. */
#include "modem-private.h"

#include "error.h"

static void
network_time_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GTask) task = user_data;
    g_autoptr(GError) error = NULL;
    g_autofree char *text =
        mm_modem_time_get_network_time_finish(MM_MODEM_TIME(source), result, &error);
    gint64 mono = g_get_monotonic_time();
    g_autoptr(GDateTime) when = NULL;
    gint64 *out;

    if (!text) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            g_task_return_error(task, g_steal_pointer(&error));
            return;
        }
        g_dbus_error_strip_remote_error(error);
        g_task_return_new_error(task, CA_ERROR, CA_ERROR_MODEM, "network time: %s",
                                error ? error->message : "none");
        return;
    }
    /* ISO 8601 with its offset, e.g. "2026-12-06T04:08:27Z" or "...+03:00". */
    when = g_date_time_new_from_iso8601(text, NULL);
    if (!when) {
        g_task_return_new_error(task, CA_ERROR, CA_ERROR_MODEM, "network time: cannot parse \"%s\"",
                                text);
        return;
    }
    out = g_new(gint64, 2);
    out[0] = g_date_time_to_unix(when) * G_USEC_PER_SEC + g_date_time_get_microsecond(when);
    out[1] = mono;
    g_task_return_pointer(task, out, g_free);
}

void
ca_modem_get_network_time_async(CaModem *self, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task = g_task_new(self, cancellable, callback, user_data);
    MMModemTime *time = self->object ? mm_object_peek_modem_time(self->object) : NULL;

    g_task_set_source_tag(task, ca_modem_get_network_time_async);
    if (!time) {
        g_task_return_new_error(task, CA_ERROR, CA_ERROR_NOT_READY,
                                self->object ? "the modem has no network time (Modem.Time)"
                                             : "no modem");
        g_object_unref(task);
        return;
    }
    mm_modem_time_get_network_time(time, cancellable, network_time_ready, task);
}

gboolean
ca_modem_get_network_time_finish(CaModem *self, GAsyncResult *result, gint64 *out_unix_us,
                                 gint64 *out_mono_us, GError **error)
{
    g_autofree gint64 *got = g_task_propagate_pointer(G_TASK(result), error);

    if (!got)
        return FALSE;
    *out_unix_us = got[0];
    *out_mono_us = got[1];
    return TRUE;
}
