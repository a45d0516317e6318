/* mqtt-economy: the MQTT module in economy mode (docs/economy.md): the longer keepalive,
 * and MQTT 5 topic aliases for the agent's fixed topics. A topic's first publish on a connection carries the topic and an
 * alias; later ones carry the alias alone, saving the topic's bytes in every message.
 * Aliases live as long as the connection; only the broker's CONNACK Topic Alias Maximum
 * is used (0 or absent: none), and never under MQTT 3.1.1.
 * libmosquitto 2.0 sends a QoS 1 message again after a reconnect exactly as it was first
 * sent: one sent by alias alone would reach a broker that no longer knows the alias (a
 * protocol error, and the same message again after every reconnect). So before any
 * reconnect with such a message still unacknowledged, mqtt.c requeues the messages it
 * handed over and starts from a new libmosquitto handle (ca_mqtt_alias_in_flight). */
#define CA_LOG_MODULE "mqtt"
#include "mqtt-private.h"

#include "mqtt.h"

#include "log.h"

#include <mqtt_protocol.h>

/* The agent's own topics that recur (below <base>). */
static const char *const fixed_topics[] = {"status", "telemetry", "link", "usage", "events", NULL};

static gboolean
is_fixed(const Msg *m)
{
    return !m->absolute && g_strv_contains(fixed_topics, m->subtopic);
}

void
ca_mqtt_alias_reset(CaMqtt *self, guint broker_max)
{
    self->alias_max = broker_max;
    g_hash_table_remove_all(self->aliases);
}

gboolean
ca_mqtt_alias_in_flight(CaMqtt *self)
{
    for (GList *l = self->handed.head; l; l = l->next)
        if (((Msg *) l->data)->alias_only)
            return TRUE;
    return FALSE;
}

int
ca_mqtt_alias_publish(CaMqtt *self, Msg *m, const char *topic, int *mid)
{
    gsize len = 0;
    const void *data = g_bytes_get_data(m->payload, &len);
    mosquitto_property *props = NULL;
    gpointer value = NULL;
    gboolean established;
    guint alias;
    int rc;

    m->alias_only = FALSE;
    if (!self->set.v5 || !self->economy_aliases || self->alias_max == 0 ||
        self->state != STATE_CONNECTED || !is_fixed(m))
        return mosquitto_publish(self->mosq, mid, topic, (int) len, data, m->qos, m->retain);
    established = g_hash_table_lookup_extended(self->aliases, m->subtopic, NULL, &value);
    if (established) {
        alias = GPOINTER_TO_UINT(value);
    } else {
        alias = g_hash_table_size(self->aliases) + 1;
        if (alias > self->alias_max)
            return mosquitto_publish(self->mosq, mid, topic, (int) len, data, m->qos, m->retain);
    }
    mosquitto_property_add_int16(&props, MQTT_PROP_TOPIC_ALIAS, (uint16_t) alias);
    rc = mosquitto_publish_v5(self->mosq, mid, established ? NULL : topic, (int) len, data, m->qos,
                              m->retain, props);
    mosquitto_property_free_all(&props);
    if (rc != MOSQ_ERR_SUCCESS)
        return rc; /* not sent now: nothing established (a reconnect resets them anyway) */
    if (established) {
        m->alias_only = TRUE;
        ca_debug("publish on \"%s\" by topic alias %u", topic, alias);
    } else {
        g_hash_table_insert(self->aliases, g_strdup(m->subtopic), GUINT_TO_POINTER(alias));
        ca_debug("topic alias %u for \"%s\"", alias, topic);
    }
    return rc;
}

gboolean
ca_mqtt_set_economy(CaMqtt *self, guint keepalive_s, gboolean topic_aliases)
{
    guint want;

    g_return_val_if_fail(CA_IS_MQTT(self), FALSE);
    self->economy_keepalive = keepalive_s;
    self->economy_aliases = topic_aliases;
    want = MAX((guint) self->set.keepalive, keepalive_s);
    if ((self->state != STATE_CONNECTED && self->state != STATE_CONNECTING) ||
        want == self->keepalive)
        return FALSE; /* the next connection uses it */
    ca_info("keepalive %u s instead of %u s (%s): reconnecting", want, self->keepalive,
            keepalive_s ? "economy mode" : "economy mode ended");
    ca_mqtt_reconnect_now(self);
    return TRUE;
}

guint
ca_mqtt_get_keepalive(CaMqtt *self)
{
    g_return_val_if_fail(CA_IS_MQTT(self), 0);
    if (self->keepalive && (self->state == STATE_CONNECTED || self->state == STATE_CONNECTING))
        return self->keepalive;
    return MAX((guint) self->set.keepalive, self->economy_keepalive);
}
