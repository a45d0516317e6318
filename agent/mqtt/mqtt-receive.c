/* mqtt-receive: what arrives from the broker on CaMqtt's subscriptions. Owns: which
 * messages are handed to the "message" signal (inside the base topic, not empty, not a
 * retained request), refusing and clearing retained requests, the SUBACK outcome. Does not
 * own: what a message means (callers), the subscriptions kept across reconnects
 * (mqtt-queue.c), the connection (mqtt.c). */
#define CA_LOG_MODULE "mqtt"
#include "mqtt-private.h"

#include "autocleanups.h"
#include "log.h"

#include <string.h>

/* The broker answered a SUBSCRIBE: a refused filter is tried again at the next connection. */
void
ca_mqtt_subscribed(CaMqtt *self, int mid, int granted)
{
    g_autofree char *filter = NULL;

    if (!g_hash_table_steal_extended(self->sub_mids, GINT_TO_POINTER(mid), NULL,
                                     (gpointer *) &filter))
        return;
    if (granted >= 0x80) {
        ca_warn("broker refused the subscription to \"%s/%s\": %s (%d)", self->base, filter,
                mosquitto_reason_string(granted), granted);
        g_hash_table_remove(self->subs_sent, filter);
    } else {
        ca_debug("subscribed to \"%s/%s\"", self->base, filter);
    }
}

/* A retained message on a request topic (cmd/+, sms/out) is a request from the past, a
 * backend's mistake or an attacker's: the broker hands it over again at every
 * subscription, so acting on it would repeat it at every start (a retained cmd/reboot is
 * an endless reboot loop). It is never acted on; it is reported (an event, at most
 * RETAINED_REPORTS_MAX per connection) and cleared with an empty retained publish, so the
 * broker drops it (where the broker's ACL refuses that, it stays and is refused again at
 * the next start). Every topic the agent subscribes to carries requests, except the state
 * topics of ca_mqtt_subscribe_state() (config/desired): their retained message is the
 * current state, delivered (flagged retained) to the caller, which acts on a change only. */
#define RETAINED_REPORTS_MAX 16

static void
refuse_retained(CaMqtt *self, const char *subtopic, GBytes *payload)
{
    gsize n = g_bytes_get_size(payload);
    g_autoptr(cJSON) fields = NULL;

    ca_mqtt_publish(self, subtopic, "", 1, TRUE, CA_MQTT_MSG_NORMAL);
    if (self->retained_refused++ >= RETAINED_REPORTS_MAX) {
        ca_debug("retained message on \"%s/%s\" ignored and cleared", self->base, subtopic);
        return;
    }
    ca_warn("ignoring the retained message on \"%s/%s\" (%zu bytes): a retained request is "
            "never run; clearing it",
            self->base, subtopic, n);
    fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "topic", subtopic);
    cJSON_AddNumberToObject(fields, "bytes", (double) n);
    ca_mqtt_publish_event(self, "retained-ignored", fields);
}

const char *
ca_mqtt_accept_message(CaMqtt *self, const char *topic, GBytes *payload, gboolean retain)
{
    const char *subtopic = ca_mqtt_subtopic(self->base, topic);

    if (!subtopic) {
        ca_debug("message on \"%s\" outside \"%s\", ignoring", topic, self->base);
        return NULL;
    }
    /* An empty message is how a retained one is cleared (ours, above, comes back to us):
     * it is no request. */
    if (g_bytes_get_size(payload) == 0) {
        ca_debug("empty message on \"%s\", ignoring", topic);
        return NULL;
    }
    if (retain && !g_hash_table_contains(self->state_subs, subtopic)) {
        refuse_retained(self, subtopic, payload);
        return NULL;
    }
    ca_debug("message on \"%s\" (%zu bytes)", topic, g_bytes_get_size(payload));
    return subtopic;
}
