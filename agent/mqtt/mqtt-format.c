/* mqtt-format: the MQTT module's topics and payloads, pure (unit-tested): topic names under
 * <base>, the retained status, the events envelope, PUBACK reason codes. Does not own:
 * sending them (mqtt-queue.c). */
#include "mqtt-private.h"

#include "autocleanups.h"
#include "timestamp.h"

#include <errno.h>
#include <mosquitto.h>
#include <string.h>

char *
ca_mqtt_build_topic(const char *prefix, const char *device_id, const char *subtopic)
{
    if (!subtopic || !*subtopic)
        return g_strconcat(prefix, "/", device_id, NULL);
    return g_strconcat(prefix, "/", device_id, "/", subtopic, NULL);
}

const char *
ca_mqtt_subtopic(const char *base, const char *topic)
{
    gsize n = strlen(base);

    if (strncmp(topic, base, n) != 0 || topic[n] != '/' || topic[n + 1] == '\0')
        return NULL;
    return topic + n + 1;
}

char *
ca_mqtt_status_payload(gboolean online, const char *version, gint64 started_at_us)
{
    g_autoptr(cJSON) root = cJSON_CreateObject();
    g_autofree char *ts = NULL;

    if (!online) {
        cJSON_AddStringToObject(root, "state", "offline");
    } else {
        ts = ca_timestamp_format(started_at_us);
        cJSON_AddStringToObject(root, "state", "online");
        cJSON_AddStringToObject(root, "version", version);
        cJSON_AddStringToObject(root, "started_at", ts);
    }
    return cJSON_PrintUnformatted(root);
}

gboolean
ca_mqtt_reason_is_refusal(int reason_code)
{
    return reason_code >= 128;
}

gboolean
ca_mqtt_loss_is_peer_close(int rc, int err)
{
    if (rc >= 128)
        return TRUE; /* the broker sent DISCONNECT, e.g. 0x8B server shutting down */
    if (rc == MOSQ_ERR_CONN_LOST)
        return TRUE; /* EOF: the broker closed the socket */
    if (rc == MOSQ_ERR_ERRNO)
        return err == ECONNRESET || err == EPIPE;
    return FALSE; /* MOSQ_ERR_KEEPALIVE, a timeout, ENETUNREACH, ...: the path */
}

/* {"ts":now,"type":type,...fields} as text (cJSON_free it). */
char *
ca_mqtt_event_payload(const char *type, const cJSON *fields)
{
    g_autoptr(cJSON) root = cJSON_CreateObject();
    g_autofree char *ts = ca_timestamp_format(g_get_real_time());
    const cJSON *child;

    cJSON_AddStringToObject(root, "ts", ts);
    cJSON_AddStringToObject(root, "type", type);
    cJSON_ArrayForEach(child, fields)
    {
        if (!child->string || g_str_equal(child->string, "ts") ||
            g_str_equal(child->string, "type"))
            continue;
        cJSON_AddItemToObject(root, child->string, cJSON_Duplicate(child, TRUE));
    }
    return cJSON_PrintUnformatted(root);
}
