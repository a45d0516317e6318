/* timedate: systemd-timedated on the system bus (org.freedesktop.timedate1), for the clock
 * choice of clock-source.h: whether NTP has synchronised the clock (NTPSynchronized) and
 * setting the system clock (SetTime, polkit action org.freedesktop.timedate1.set-time).
 * Setting the clock is timedated's privilege, not the agent's: the service keeps
 * ProtectClock=yes and no capability. Each call opens its own short-lived bus connection
 * (ca_bus_new_async): they are rare (start, a command SMS while NTP has not answered).
 * Owns: the call while it runs. Does not own: deciding (clock-source.c), reporting. */
#pragma once
#include <gio/gio.h>

/* Read NTPSynchronized (timedated is started by the bus when needed). */
void ca_timedate_get_ntp_async(GCancellable *cancellable, GAsyncReadyCallback callback,
                               gpointer user_data);
/* FALSE with error (CA_ERROR_NOT_READY: no timedated; CA_ERROR_FAILED: its error, with the
 * D-Bus error name) when it could not be read; otherwise *out_synced is set. */
gboolean ca_timedate_get_ntp_finish(GAsyncResult *result, gboolean *out_synced, GError **error);

/* SetTime(unix_us, relative=false, interactive=false). */
void ca_timedate_set_time_async(gint64 unix_us, GCancellable *cancellable,
                                GAsyncReadyCallback callback, gpointer user_data);
/* FALSE with error when refused: polkit (AccessDenied, InteractiveAuthorizationRequired),
 * automatic time synchronisation enabled (timedated refuses SetTime while NTP=yes), no
 * timedated (CA_ERROR_NOT_READY). The message names timedated's error. */
gboolean ca_timedate_set_time_finish(GAsyncResult *result, GError **error);
