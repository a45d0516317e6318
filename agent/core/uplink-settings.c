/* uplink-settings: the uplink module's typed settings (see uplink-settings.h). */
#include "uplink-settings.h"

#include <gio/gio.h>

CaUplinkSettings *
ca_uplink_settings_new(const CaConfig *config)
{
    CaUplinkSettings *s = g_new0(CaUplinkSettings, 1);

    s->policy = ca_fo_config_new(config);
    s->apn = g_strdup(ca_config_get_string(config, "cellular", "apn"));
    s->username = g_strdup(ca_config_get_string(config, "cellular", "username"));
    s->password_file = g_strdup(ca_config_get_string(config, "cellular", "password-file"));
    s->mqtt_host = g_strdup(ca_config_get_string(config, "mqtt", "host"));
    s->mqtt_port = (guint16) ca_config_get_int(config, "mqtt", "port");
    s->state_dir = g_strdup(ca_config_get_string(config, "agent", "state-dir"));
    return s;
}

void
ca_uplink_settings_free(CaUplinkSettings *s)
{
    if (!s)
        return;
    ca_fo_config_free(s->policy);
    g_free(s->apn);
    g_free(s->username);
    g_free(s->password_file);
    g_free(s->mqtt_host);
    g_free(s->state_dir);
    g_free(s);
}

CaUplinkSettingsChange
ca_uplink_settings_diff(const CaUplinkSettings *a, const CaUplinkSettings *b)
{
    CaUplinkSettingsChange change = CA_UPLINK_SETTINGS_SAME;

    if (!ca_fo_config_equal(a->policy, b->policy) || g_strcmp0(a->apn, b->apn) != 0 ||
        g_strcmp0(a->username, b->username) != 0 ||
        g_strcmp0(a->password_file, b->password_file) != 0 ||
        g_strcmp0(a->state_dir, b->state_dir) != 0)
        change |= CA_UPLINK_SETTINGS_POLICY;
    if (g_strcmp0(a->mqtt_host, b->mqtt_host) != 0 || a->mqtt_port != b->mqtt_port)
        change |= CA_UPLINK_SETTINGS_PROBES;
    return change;
}

gboolean
ca_uplink_settings_broker_is_local(const CaUplinkSettings *s)
{
    g_autoptr(GInetAddress) a = NULL;

    if (g_ascii_strcasecmp(s->mqtt_host, "localhost") == 0 ||
        g_str_has_suffix(s->mqtt_host, ".localhost"))
        return TRUE;
    a = g_inet_address_new_from_string(s->mqtt_host);
    return a && g_inet_address_get_is_loopback(a);
}
