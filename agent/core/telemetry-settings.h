/* telemetry-settings: CaTelemetrySettings, what the telemetry publisher reads from the
 * config ([telemetry] policy). The pattern is in settings.h. */
#pragma once
#include "config.h"
#include "settings.h"
#include "telemetry.h"

typedef struct {
    CaTelemetryPolicy policy;
} CaTelemetrySettings;

/* Fill out (zeroed or cleared first) from config. */
void ca_telemetry_settings_load(CaTelemetrySettings *out, const CaConfig *config);
/* Nothing is owned today; zeroes settings. NULL-safe. */
void ca_telemetry_settings_clear(CaTelemetrySettings *settings);
gboolean ca_telemetry_settings_equal(const CaTelemetrySettings *a, const CaTelemetrySettings *b);
