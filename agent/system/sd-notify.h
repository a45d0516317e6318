/* sd-notify: READY, STATUS, WATCHDOG and STOPPING for systemd (Type=notify).
 * The watchdog is fed from a main-loop timer at half of WATCHDOG_USEC, so a stalled
 * loop is what systemd catches. Outside systemd every call is a no-op. */
#pragma once
#include <glib.h>

typedef struct _CaNotify CaNotify;

CaNotify *ca_notify_new(void);
void ca_notify_free(CaNotify *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaNotify, ca_notify_free)

/* Start feeding the watchdog (if systemd asked for one) and send READY=1. */
void ca_notify_ready(CaNotify *self, const char *status);
/* One-line summary shown by systemctl status. */
void ca_notify_status(CaNotify *self, const char *status);
void ca_notify_reloading(CaNotify *self);
void ca_notify_stopping(CaNotify *self);
