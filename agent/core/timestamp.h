/* timestamp: the one wall-clock format of every payload: RFC 3339 UTC, whole seconds, with Z
 * ("2026-12-05T08:04:25Z"). */
#pragma once
#include <glib.h>

/* real_time_us (g_get_real_time()) as "YYYY-MM-DDTHH:MM:SSZ"; the epoch for an unrepresentable
 * time. Never NULL. */
char *ca_timestamp_format(gint64 real_time_us);
