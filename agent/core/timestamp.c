/* timestamp: payload timestamps (timestamp.h). */
#include "timestamp.h"

char *
ca_timestamp_format(gint64 real_time_us)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(real_time_us / G_USEC_PER_SEC);

    return dt ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%SZ") : g_strdup("1970-01-01T00:00:00Z");
}
