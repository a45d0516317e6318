/* mqtt-settings: the MQTT module's typed settings (mqtt-settings.h), loaded from a config
 * snapshot. Pure: no I/O (the password file is read by the MQTT module per attempt). */
#include "mqtt-settings.h"

#include <string.h>

void
ca_mqtt_settings_load(CaMqttSettings *out, const CaConfig *config)
{
    memset(out, 0, sizeof *out);
    out->host = g_strdup(ca_config_get_string(config, "mqtt", "host"));
    out->port = (int) ca_config_get_int(config, "mqtt", "port");
    out->keepalive = (int) ca_config_get_int(config, "mqtt", "keepalive");
    out->v5 = g_str_equal(ca_config_get_string(config, "mqtt", "protocol"), "5");
    out->client_id = g_strdup(ca_config_get_string(config, "mqtt", "client-id"));
    out->session_expiry = (guint32) ca_config_get_int(config, "mqtt", "session-expiry");
    out->username = g_strdup(ca_config_get_string(config, "mqtt", "username"));
    out->password_file = g_strdup(ca_config_get_string(config, "mqtt", "password-file"));
    out->tls = ca_config_get_bool(config, "mqtt", "tls");
    out->ca_file = g_strdup(ca_config_get_string(config, "mqtt", "ca-file"));
    out->cert_file = g_strdup(ca_config_get_string(config, "mqtt", "cert-file"));
    out->key_file = g_strdup(ca_config_get_string(config, "mqtt", "key-file"));
    out->tls_version = g_strdup(ca_config_get_string(config, "mqtt", "tls-version"));
    out->topic_prefix = g_strdup(ca_config_get_string(config, "mqtt", "topic-prefix"));
    out->device_id = g_strdup(ca_config_get_string(config, "agent", "device-id"));
    out->queue_limit = (guint) ca_config_get_int(config, "mqtt", "queue-limit");
    out->queue_limit_bytes = (gsize) ca_config_get_int(config, "mqtt", "queue-limit-bytes");
}

void
ca_mqtt_settings_clear(CaMqttSettings *settings)
{
    if (!settings)
        return;
    g_free(settings->host);
    g_free(settings->client_id);
    g_free(settings->username);
    g_free(settings->password_file);
    g_free(settings->ca_file);
    g_free(settings->cert_file);
    g_free(settings->key_file);
    g_free(settings->tls_version);
    g_free(settings->topic_prefix);
    g_free(settings->device_id);
    memset(settings, 0, sizeof *settings);
}

CaMqttSettingsChange
ca_mqtt_settings_diff(const CaMqttSettings *a, const CaMqttSettings *b)
{
    CaMqttSettingsChange changed = 0;

    if (!ca_settings_str_equal(a->host, b->host) || a->port != b->port ||
        a->keepalive != b->keepalive || a->v5 != b->v5 ||
        !ca_settings_str_equal(a->client_id, b->client_id) ||
        a->session_expiry != b->session_expiry ||
        !ca_settings_str_equal(a->username, b->username) ||
        !ca_settings_str_equal(a->password_file, b->password_file) || a->tls != b->tls ||
        !ca_settings_str_equal(a->ca_file, b->ca_file) ||
        !ca_settings_str_equal(a->cert_file, b->cert_file) ||
        !ca_settings_str_equal(a->key_file, b->key_file) ||
        !ca_settings_str_equal(a->tls_version, b->tls_version) ||
        !ca_settings_str_equal(a->topic_prefix, b->topic_prefix) ||
        !ca_settings_str_equal(a->device_id, b->device_id))
        changed |= CA_MQTT_SETTINGS_CONNECTION;
    if (a->queue_limit != b->queue_limit || a->queue_limit_bytes != b->queue_limit_bytes)
        changed |= CA_MQTT_SETTINGS_QUEUE;
    return changed;
}

gboolean
ca_mqtt_settings_equal(const CaMqttSettings *a, const CaMqttSettings *b)
{
    return ca_mqtt_settings_diff(a, b) == 0;
}
