/* economy-settings: the [economy] keys, typed (economy-settings.h). */
#include "economy-settings.h"

#include <string.h>

void
ca_economy_settings_load(CaEconomySettings *out, const CaConfig *config)
{
    const char *mode = ca_config_get_string(config, "economy", "mode");
    CaEconomyPolicy *p = &out->policy;

    memset(out, 0, sizeof *out);
    if (g_strcmp0(mode, "on") == 0)
        p->mode = CA_ECONOMY_MODE_ON;
    else if (g_strcmp0(mode, "off") == 0)
        p->mode = CA_ECONOMY_MODE_OFF;
    else
        p->mode = CA_ECONOMY_MODE_AUTO;
    p->telemetry.interval_s = (guint) ca_config_get_int(config, "economy", "telemetry-interval");
    p->telemetry.min_spacing_s = (guint) ca_config_get_int(config, "economy", "min-spacing");
    p->telemetry.quality_deadband =
        (guint) ca_config_get_int(config, "economy", "quality-deadband");
    p->telemetry.signal_deadband = (double) ca_config_get_int(config, "economy", "signal-deadband");
    p->keepalive_s = (guint) ca_config_get_int(config, "economy", "keepalive");
    p->probe_interval_ms = ca_config_get_int(config, "economy", "probe-interval") * 1000;
    p->report_interval_ms = ca_config_get_int(config, "economy", "link-interval") * 1000;
    p->usage_interval_s = (guint) ca_config_get_int(config, "economy", "usage-interval");
    p->topic_aliases = ca_config_get_bool(config, "economy", "topic-aliases");
}

void
ca_economy_settings_clear(CaEconomySettings *settings)
{
    if (settings)
        memset(settings, 0, sizeof *settings);
}

gboolean
ca_economy_settings_equal(const CaEconomySettings *a, const CaEconomySettings *b)
{
    const CaEconomyPolicy *x = &a->policy, *y = &b->policy;

    return x->mode == y->mode && x->telemetry.interval_s == y->telemetry.interval_s &&
           x->telemetry.min_spacing_s == y->telemetry.min_spacing_s &&
           x->telemetry.quality_deadband == y->telemetry.quality_deadband &&
           x->telemetry.signal_deadband == y->telemetry.signal_deadband &&
           x->keepalive_s == y->keepalive_s && x->probe_interval_ms == y->probe_interval_ms &&
           x->report_interval_ms == y->report_interval_ms &&
           x->usage_interval_s == y->usage_interval_s && x->topic_aliases == y->topic_aliases;
}
