/* telemetry-settings: the telemetry publisher's typed settings (telemetry-settings.h). */
#include "telemetry-settings.h"

#include <string.h>

void
ca_telemetry_settings_load(CaTelemetrySettings *out, const CaConfig *config)
{
    memset(out, 0, sizeof *out);
    out->policy.interval_s = (guint) ca_config_get_int(config, "telemetry", "interval");
    out->policy.min_spacing_s = (guint) ca_config_get_int(config, "telemetry", "min-spacing");
    out->policy.quality_deadband =
        (guint) ca_config_get_int(config, "telemetry", "quality-deadband");
    out->policy.signal_deadband =
        (double) ca_config_get_int(config, "telemetry", "signal-deadband");
}

void
ca_telemetry_settings_clear(CaTelemetrySettings *settings)
{
    if (settings)
        memset(settings, 0, sizeof *settings);
}

gboolean
ca_telemetry_settings_equal(const CaTelemetrySettings *a, const CaTelemetrySettings *b)
{
    return a->policy.interval_s == b->policy.interval_s &&
           a->policy.min_spacing_s == b->policy.min_spacing_s &&
           a->policy.quality_deadband == b->policy.quality_deadband &&
           a->policy.signal_deadband == b->policy.signal_deadband;
}
