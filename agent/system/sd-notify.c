/* sd-notify: thin wrapper around libsystemd's sd_notify with an owned watchdog timer. */
#define CA_LOG_MODULE "systemd"
#include "sd-notify.h"

#include "autocleanups.h"
#include "log.h"

#include <systemd/sd-daemon.h>

struct _CaNotify {
    GSource *watchdog; /* owned; NULL when systemd set no watchdog */
    char *status;      /* last STATUS= sent, to skip repeats */
};

CaNotify *
ca_notify_new(void)
{
    return g_new0(CaNotify, 1);
}

void
ca_notify_free(CaNotify *self)
{
    if (!self)
        return;
    ca_clear_source(&self->watchdog);
    g_free(self->status);
    g_free(self);
}

static gboolean
watchdog_cb(gpointer user_data)
{
    sd_notify(0, "WATCHDOG=1");
    return G_SOURCE_CONTINUE;
}

void
ca_notify_ready(CaNotify *self, const char *status)
{
    uint64_t usec = 0;

    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0 && !self->watchdog) {
        self->watchdog = g_timeout_source_new(MAX(usec / 2000, 1));
        g_source_set_callback(self->watchdog, watchdog_cb, self, NULL);
        g_source_attach(self->watchdog, NULL);
        ca_debug("feeding the systemd watchdog every %" G_GUINT64_FORMAT " ms", usec / 2000);
    }
    g_free(self->status);
    self->status = g_strdup(status);
    sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void
ca_notify_status(CaNotify *self, const char *status)
{
    if (g_strcmp0(self->status, status) == 0)
        return;
    g_free(self->status);
    self->status = g_strdup(status);
    sd_notifyf(0, "STATUS=%s", status);
}

void
ca_notify_reloading(CaNotify *self)
{
    sd_notify(0, "RELOADING=1");
}

void
ca_notify_stopping(CaNotify *self)
{
    ca_clear_source(&self->watchdog);
    sd_notify(0, "STOPPING=1");
}
