/* modem-settings: the ModemManager adapter's settings from the key table (see the header).
 * Every key name the adapter uses is spelled here once; the unit test loads the defaults,
 * so a name missing from the table fails there, not on a device. */
#include "modem-settings.h"

#include "settings.h"

#include <string.h>

void
ca_modem_settings_load(CaModemSettings *out, const CaConfig *config)
{
    out->match = g_strdup(ca_config_get_string(config, "modem", "match"));
    out->enable = ca_config_get_bool(config, "modem", "enable");
    out->pin_file = g_strdup(ca_config_get_string(config, "modem", "pin-file"));
    out->signal_rate = (guint) ca_config_get_int(config, "telemetry", "signal-rate");
    out->state_dir = g_strdup(ca_config_get_string(config, "agent", "state-dir"));
}

void
ca_modem_settings_clear(CaModemSettings *settings)
{
    g_clear_pointer(&settings->match, g_free);
    g_clear_pointer(&settings->pin_file, g_free);
    g_clear_pointer(&settings->state_dir, g_free);
}

gboolean
ca_modem_settings_equal(const CaModemSettings *a, const CaModemSettings *b)
{
    return g_strcmp0(a->match, b->match) == 0 && a->enable == b->enable &&
           g_strcmp0(a->pin_file, b->pin_file) == 0 && a->signal_rate == b->signal_rate &&
           g_strcmp0(a->state_dir, b->state_dir) == 0;
}

void
ca_sms_settings_load(CaSmsSettings *out, const CaConfig *config)
{
    out->enabled = ca_config_get_bool(config, "sms", "enabled");
    out->keep_on_modem = ca_config_get_bool(config, "sms", "keep-on-modem");
    out->max_parts = (guint) ca_config_get_int(config, "sms", "max-parts");
    out->send_timeout_s = (guint) ca_config_get_int(config, "sms", "send-timeout");
    out->rate_limit = (guint) ca_config_get_int(config, "sms", "rate-limit");
    out->retries = (guint) ca_config_get_int(config, "sms", "retries");
    out->spool_limit = (guint) ca_config_get_int(config, "sms", "spool-limit");
    out->dedupe_limit = (guint) ca_config_get_int(config, "sms", "dedupe-limit");
    out->dedupe_days = (guint) ca_config_get_int(config, "sms", "dedupe-days");
    out->receive_timeout_s = (guint) ca_config_get_int(config, "sms", "receive-timeout");
    out->resync_delay_s = (guint) ca_config_get_int(config, "sms", "resync-delay");
    out->resync_interval_s = (guint) ca_config_get_int(config, "sms", "resync-interval");
    out->partial_after_s = (guint) ca_config_get_int(config, "sms", "partial-after");
    out->storage_warn = (guint) ca_config_get_int(config, "sms", "storage-warn");
    out->allowed_destinations =
        g_strdupv((char **) ca_config_get_list(config, "sms", "allowed-destinations"));
    out->state_dir = g_strdup(ca_config_get_string(config, "agent", "state-dir"));
}

void
ca_sms_settings_clear(CaSmsSettings *settings)
{
    g_clear_pointer(&settings->allowed_destinations, g_strfreev);
    g_clear_pointer(&settings->state_dir, g_free);
}

gboolean
ca_sms_settings_equal(const CaSmsSettings *a, const CaSmsSettings *b)
{
    return a->enabled == b->enabled && a->keep_on_modem == b->keep_on_modem &&
           a->max_parts == b->max_parts && a->send_timeout_s == b->send_timeout_s &&
           a->rate_limit == b->rate_limit && a->retries == b->retries &&
           a->spool_limit == b->spool_limit && a->dedupe_limit == b->dedupe_limit &&
           a->dedupe_days == b->dedupe_days && a->receive_timeout_s == b->receive_timeout_s &&
           a->resync_delay_s == b->resync_delay_s && a->resync_interval_s == b->resync_interval_s &&
           a->partial_after_s == b->partial_after_s && a->storage_warn == b->storage_warn &&
           ca_settings_strv_equal((const char *const *) a->allowed_destinations,
                                  (const char *const *) b->allowed_destinations) &&
           g_strcmp0(a->state_dir, b->state_dir) == 0;
}
