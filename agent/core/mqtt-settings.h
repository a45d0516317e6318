/* mqtt-settings: CaMqttSettings, what the MQTT module (agent/mqtt) reads from the config:
 * [mqtt] and the device id of its base topic. The pattern is in settings.h. */
#pragma once
#include "config.h"
#include "settings.h"

typedef struct {
    char *host;
    int port;
    int keepalive; /* seconds */
    gboolean v5;   /* protocol=5, else 3.1.1 */
    char *client_id;
    guint32 session_expiry; /* seconds; 0 = clean session */
    char *username;         /* "" = none */
    char *password_file;    /* "" = none; read at every connection attempt */
    gboolean tls;
    char *ca_file;   /* "" = the system's CA certificates */
    char *cert_file; /* "" = no client certificate */
    char *key_file;
    char *tls_version; /* the minimum: "tlsv1.2" or "tlsv1.3" */
    char *topic_prefix;
    char *device_id; /* [agent] device-id: <base> = <topic-prefix>/<device-id> */
    guint queue_limit;
    gsize queue_limit_bytes;
} CaMqttSettings;

/* What changed between two settings (ca_mqtt_settings_diff); 0 = nothing. */
typedef enum {
    CA_MQTT_SETTINGS_CONNECTION = 1 << 0, /* anything the connection or <base> uses: reconnect */
    CA_MQTT_SETTINGS_QUEUE = 1 << 1,      /* queue-limit, queue-limit-bytes: applied in place */
} CaMqttSettingsChange;

/* Fill out (cleared first with ca_mqtt_settings_clear, or zeroed) from config. */
void ca_mqtt_settings_load(CaMqttSettings *out, const CaConfig *config);
/* Free what settings owns and zero it; NULL-safe. */
void ca_mqtt_settings_clear(CaMqttSettings *settings);
CaMqttSettingsChange ca_mqtt_settings_diff(const CaMqttSettings *a, const CaMqttSettings *b);
gboolean ca_mqtt_settings_equal(const CaMqttSettings *a, const CaMqttSettings *b);
