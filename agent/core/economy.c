/* economy: the pure economy-mode policy (see economy.h). */
#include "economy.h"

const char *
ca_metered_to_string(CaMetered metered)
{
    switch (metered) {
    case CA_METERED_UNKNOWN:
        return "unknown";
    case CA_METERED_YES:
        return "yes";
    case CA_METERED_NO:
        return "no";
    case CA_METERED_GUESS_YES:
        return "guess-yes";
    case CA_METERED_GUESS_NO:
        return "guess-no";
    }
    return "unknown";
}

gboolean
ca_metered_is_metered(CaMetered metered)
{
    switch (metered) {
    case CA_METERED_YES:
    case CA_METERED_GUESS_YES:
        return TRUE;
    case CA_METERED_UNKNOWN:
    case CA_METERED_NO:
    case CA_METERED_GUESS_NO:
        return FALSE;
    }
    return FALSE;
}

const char *
ca_economy_mode_to_string(CaEconomyMode mode)
{
    switch (mode) {
    case CA_ECONOMY_MODE_AUTO:
        return "auto";
    case CA_ECONOMY_MODE_ON:
        return "on";
    case CA_ECONOMY_MODE_OFF:
        return "off";
    }
    return "auto";
}

gboolean
ca_economy_decide(CaEconomyMode mode, gboolean have_uplink, CaMetered metered,
                  const char **out_reason)
{
    const char *why = NULL;
    gboolean on = FALSE;

    switch (mode) {
    case CA_ECONOMY_MODE_ON:
        on = TRUE;
        why = "[economy] mode=on";
        break;
    case CA_ECONOMY_MODE_OFF:
        why = "[economy] mode=off";
        break;
    case CA_ECONOMY_MODE_AUTO:
        if (!have_uplink) {
            why = "no uplink in use";
        } else {
            on = ca_metered_is_metered(metered);
            why = on ? "the uplink in use is metered" : "the uplink in use is not metered";
        }
        break;
    }
    if (out_reason)
        *out_reason = why;
    return on;
}

guint64
ca_economy_longer(guint64 normal, guint64 economy)
{
    return normal == 0 ? 0 : MAX(normal, economy);
}

void
ca_economy_telemetry_policy(const CaTelemetryPolicy *normal, const CaEconomyPolicy *economy,
                            CaTelemetryPolicy *out)
{
    const CaTelemetryPolicy *e = &economy->telemetry;

    out->interval_s = (guint) ca_economy_longer(normal->interval_s, e->interval_s);
    out->min_spacing_s = MAX(normal->min_spacing_s, e->min_spacing_s);
    out->quality_deadband = MAX(normal->quality_deadband, e->quality_deadband);
    out->signal_deadband = MAX(normal->signal_deadband, e->signal_deadband);
}
