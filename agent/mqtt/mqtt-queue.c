/* mqtt-queue: CaMqtt's outbound side. Owns: the bounded queue of messages not yet handed
 * to libmosquitto (limits, telemetry dropped first, the drop report), the messages handed
 * over and waiting for their PUBACK, cancellation, the publish and subscribe API and the
 * subscriptions kept across reconnects. Does not own: the connection (mqtt.c), the handle
 * (mqtt-handle.c). */
#define CA_LOG_MODULE "mqtt"
#include "mqtt-private.h"

#include "autocleanups.h"
#include "error.h"
#include "log.h"
#include "timestamp.h"

#include <string.h>

/*****************************************************************************/
/* Messages */

static void msg_cancelled_cb(GCancellable *cancellable, gpointer user_data);

static void
msg_free(Msg *m)
{
    if (m->cancel_id)
        g_cancellable_disconnect(m->cancellable, m->cancel_id);
    g_clear_object(&m->cancellable);
    g_free(m->subtopic);
    g_bytes_unref(m->payload);
    g_clear_object(&m->task);
    g_free(m);
}

/* Complete m (already detached from every list) and free it; error NULL = success. */
void
ca_mqtt_msg_complete(Msg *m, GError *error)
{
    GTask *task = g_steal_pointer(&m->task);

    msg_free(m);
    if (!task) {
        if (error)
            g_error_free(error);
        return;
    }
    if (error)
        g_task_return_error(task, error);
    else
        g_task_return_boolean(task, TRUE);
    g_object_unref(task);
}

static void
fail_queue(GQueue *q, const char *message)
{
    GQueue stolen = *q;
    Msg *m;

    g_queue_init(q);
    while ((m = g_queue_pop_head(&stolen)))
        ca_mqtt_msg_complete(m, g_error_new_literal(CA_ERROR, CA_ERROR_NOT_READY, message));
}

/* Every message not acknowledged yet, queued or handed over, fails with message. */
void
ca_mqtt_fail_all(CaMqtt *self, const char *message)
{
    fail_queue(&self->queue, message);
    self->queue_bytes = 0;
    self->queue_telemetry = 0;
    fail_queue(&self->handed, message);
}

Msg *
ca_mqtt_find_handed(CaMqtt *self, int mid)
{
    for (GList *l = self->handed.head; l; l = l->next) {
        Msg *m = l->data;
        if (m->mid == mid) {
            g_queue_delete_link(&self->handed, l);
            return m;
        }
    }
    return NULL;
}

static void
queue_remove(CaMqtt *self, GList *link)
{
    Msg *m = link->data;

    self->queue_bytes -= g_bytes_get_size(m->payload);
    if (m->klass == CA_MQTT_MSG_TELEMETRY)
        self->queue_telemetry--;
    g_queue_delete_link(&self->queue, link);
}

/* Give the messages libmosquitto holds back to our queue (front, in order), before the
 * handle is destroyed: a new handle (new settings) sends them again. */
void
ca_mqtt_requeue_handed(CaMqtt *self)
{
    Msg *m;

    while ((m = g_queue_pop_tail(&self->handed))) {
        m->mid = 0;
        g_queue_push_head(&self->queue, m);
        self->queue_bytes += g_bytes_get_size(m->payload);
        if (m->klass == CA_MQTT_MSG_TELEMETRY)
            self->queue_telemetry++;
        if (m->cancellable && !m->cancel_id)
            m->cancel_id =
                g_cancellable_connect(m->cancellable, G_CALLBACK(msg_cancelled_cb), self, NULL);
    }
}

/*****************************************************************************/
/* Subscriptions and handing over */

void
ca_mqtt_subscribe_missing(CaMqtt *self)
{
    for (guint i = 0; i < self->subs->len; i++) {
        const char *filter = self->subs->pdata[i];
        g_autofree char *topic = NULL;
        int mid = 0;
        int rc;

        if (g_hash_table_contains(self->subs_sent, filter))
            continue;
        topic = g_strconcat(self->base, "/", filter, NULL);
        rc = mosquitto_subscribe(self->mosq, &mid, topic, 1);
        if (rc != MOSQ_ERR_SUCCESS) {
            ca_warn("cannot subscribe to \"%s\": %s", topic, mosquitto_strerror(rc));
            continue;
        }
        g_hash_table_add(self->subs_sent, g_strdup(filter));
        g_hash_table_insert(self->sub_mids, GINT_TO_POINTER(mid), g_strdup(filter));
        ca_debug("subscribing to \"%s\"", topic);
    }
}

/* Hand m to libmosquitto. FALSE when the library refused it (m completed). */
char *
ca_mqtt_msg_topic(CaMqtt *self, const Msg *m)
{
    return m->absolute ? g_strdup(m->subtopic) : g_strconcat(self->base, "/", m->subtopic, NULL);
}

gboolean
ca_mqtt_hand_over(CaMqtt *self, Msg *m)
{
    g_autofree char *topic = ca_mqtt_msg_topic(self, m);
    int mid = 0;
    int rc = ca_mqtt_alias_publish(self, m, topic, &mid);

    /* QoS 1: after NO_CONN/ERRNO/CONN_LOST the library has queued the message and sends
     * it after reconnecting; publishing it again would duplicate it (docs/mqtt.md). */
    if (rc == MOSQ_ERR_SUCCESS || (m->qos > 0 && (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_ERRNO ||
                                                  rc == MOSQ_ERR_CONN_LOST))) {
        m->mid = mid;
        g_queue_push_tail(&self->handed, m);
        return TRUE;
    }
    ca_warn("publish on \"%s\" failed: %s", topic, mosquitto_strerror(rc));
    ca_mqtt_msg_complete(m, g_error_new(CA_ERROR, CA_ERROR_MQTT, "publish on \"%s\" failed: %s",
                                        topic, mosquitto_strerror(rc)));
    return FALSE;
}

void
ca_mqtt_flush_queue(CaMqtt *self, gboolean all)
{
    while (self->queue.length > 0 &&
           (self->state == STATE_CONNECTED || self->state == STATE_STOPPING) &&
           (all || self->handed.length < MAX_HANDED)) {
        GList *link = self->queue.head;
        Msg *m = link->data;

        queue_remove(self, link);
        if (m->cancel_id) {
            g_cancellable_disconnect(m->cancellable, m->cancel_id);
            m->cancel_id = 0;
        }
        ca_mqtt_hand_over(self, m);
    }
}

Msg *
ca_mqtt_msg_new(const char *subtopic, GBytes *payload, int qos, gboolean retain,
                CaMqttMsgClass klass)
{
    Msg *m = g_new0(Msg, 1);

    m->subtopic = g_strdup(subtopic);
    m->payload = payload;
    m->qos = CLAMP(qos, 0, 1);
    m->retain = retain;
    m->klass = klass;
    return m;
}

void
ca_mqtt_report_drops(CaMqtt *self)
{
    g_autoptr(cJSON) fields = NULL;
    g_autofree char *first = NULL;
    g_autofree char *last = NULL;
    guint total = self->dropped_telemetry + self->dropped_other;
    char *text;

    if (total == 0)
        return;
    first = ca_timestamp_format(self->first_drop_us);
    last = ca_timestamp_format(self->last_drop_us);
    fields = cJSON_CreateObject();
    cJSON_AddNumberToObject(fields, "dropped", total);
    cJSON_AddNumberToObject(fields, "dropped_telemetry", self->dropped_telemetry);
    cJSON_AddNumberToObject(fields, "dropped_other", self->dropped_other);
    cJSON_AddNumberToObject(fields, "queue_limit", self->set.queue_limit);
    cJSON_AddStringToObject(fields, "first_drop", first);
    cJSON_AddStringToObject(fields, "last_drop", last);
    ca_msg("outbound queue dropped %u messages while the broker was unreachable (%u telemetry)",
           total, self->dropped_telemetry);
    self->dropped_telemetry = self->dropped_other = 0;
    /* Straight to the connection, ahead of the backlog (it must not cost a queued message). */
    text = ca_mqtt_event_payload("mqtt-queue-overflow", fields);
    ca_mqtt_hand_over(self, ca_mqtt_msg_new("events", g_bytes_new(text, strlen(text)), 1, FALSE,
                                            CA_MQTT_MSG_NORMAL));
    cJSON_free(text);
}

/*****************************************************************************/
/* Outbound queue */

void
ca_mqtt_enforce_limits(CaMqtt *self)
{
    while (self->queue.length > self->set.queue_limit ||
           (self->queue_bytes > self->set.queue_limit_bytes && self->queue.length > 0)) {
        GList *victim = NULL;
        Msg *m;

        if (self->queue_telemetry > 0) {
            for (GList *l = self->queue.head; l && !victim; l = l->next) {
                if (((Msg *) l->data)->klass == CA_MQTT_MSG_TELEMETRY)
                    victim = l;
            }
        }
        if (!victim)
            victim = self->queue.head;
        m = victim->data;
        queue_remove(self, victim);
        if (self->dropped_telemetry + self->dropped_other == 0) {
            self->first_drop_us = g_get_real_time();
            ca_warn("outbound queue full (%u messages, %zu bytes): dropping the oldest "
                    "messages, telemetry first",
                    self->set.queue_limit, self->queue_bytes);
        }
        self->last_drop_us = g_get_real_time();
        if (m->klass == CA_MQTT_MSG_TELEMETRY)
            self->dropped_telemetry++;
        else
            self->dropped_other++;
        self->dropped_total++;
        ca_mqtt_msg_complete(m, g_error_new(CA_ERROR, CA_ERROR_LIMIT,
                                            "dropped: the outbound queue is full (queue-limit %u)",
                                            self->set.queue_limit));
    }
}

static gboolean
cancel_idle_cb(gpointer user_data)
{
    CaMqtt *self = user_data;
    GQueue cancelled = G_QUEUE_INIT;
    Msg *m;

    ca_clear_source(&self->cancel_idle);
    for (GList *l = self->queue.head, *next; l; l = next) {
        next = l->next;
        m = l->data;
        if (m->cancellable && g_cancellable_is_cancelled(m->cancellable)) {
            queue_remove(self, l);
            g_queue_push_tail(&cancelled, m);
        }
    }
    while ((m = g_queue_pop_head(&cancelled)))
        ca_mqtt_msg_complete(m, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                                    "cancelled before it was sent"));
    return G_SOURCE_REMOVE;
}

/* GCancellable::cancelled: never complete from here (g_cancellable_disconnect inside
 * its own handler deadlocks); sweep from an idle. */
static void
msg_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
    CaMqtt *self = user_data;

    if (!self->cancel_idle) {
        self->cancel_idle = g_idle_source_new();
        g_source_set_callback(self->cancel_idle, cancel_idle_cb, self, NULL);
        g_source_attach(self->cancel_idle, NULL);
    }
}

static void
enqueue(CaMqtt *self, Msg *m)
{
    gsize size = g_bytes_get_size(m->payload);

    if (size > CA_MQTT_MAX_PAYLOAD) {
        ca_mqtt_msg_complete(m, g_error_new(CA_ERROR, CA_ERROR_LIMIT,
                                            "payload of %zu bytes is larger than %d", size,
                                            CA_MQTT_MAX_PAYLOAD));
        return;
    }
    if (self->stopped) {
        ca_mqtt_msg_complete(
            m, g_error_new_literal(CA_ERROR, CA_ERROR_NOT_READY, "MQTT client stopped"));
        return;
    }
    if (self->state == STATE_CONNECTED && self->queue.length == 0 &&
        self->handed.length < MAX_HANDED) {
        ca_mqtt_hand_over(self, m);
        ca_mqtt_process_events(self);
        return;
    }
    g_queue_push_tail(&self->queue, m);
    self->queue_bytes += size;
    if (m->klass == CA_MQTT_MSG_TELEMETRY)
        self->queue_telemetry++;
    if (m->cancellable)
        m->cancel_id =
            g_cancellable_connect(m->cancellable, G_CALLBACK(msg_cancelled_cb), self, NULL);
    ca_mqtt_enforce_limits(self);
}

/*****************************************************************************/
/* Publish and subscribe API */

static gboolean
subtopic_valid(const char *subtopic)
{
    return subtopic && *subtopic && !strpbrk(subtopic, "+#") && subtopic[0] != '/';
}

void
ca_mqtt_publish(CaMqtt *self, const char *subtopic, const char *payload, int qos, gboolean retain,
                CaMqttMsgClass klass)
{
    g_return_if_fail(CA_IS_MQTT(self));
    g_return_if_fail(subtopic_valid(subtopic));
    g_return_if_fail(payload != NULL);

    enqueue(self,
            ca_mqtt_msg_new(subtopic, g_bytes_new(payload, strlen(payload)), qos, retain, klass));
}

void
ca_mqtt_publish_to_topic(CaMqtt *self, const char *topic, const char *payload, int qos,
                         gboolean retain, CaMqttMsgClass klass)
{
    Msg *m;

    g_return_if_fail(CA_IS_MQTT(self));
    g_return_if_fail(topic && *topic && !strpbrk(topic, "+#"));
    g_return_if_fail(payload != NULL);

    m = ca_mqtt_msg_new(topic, g_bytes_new(payload, strlen(payload)), qos, retain, klass);
    m->absolute = TRUE;
    enqueue(self, m);
}

void
ca_mqtt_publish_json(CaMqtt *self, const char *subtopic, const cJSON *json, int qos,
                     gboolean retain, CaMqttMsgClass klass)
{
    char *text;

    g_return_if_fail(json != NULL);
    text = cJSON_PrintUnformatted(json);
    if (!text) {
        ca_err("cannot serialise the message for \"%s\" (out of memory), dropped", subtopic);
        return;
    }
    ca_mqtt_publish(self, subtopic, text, qos, retain, klass);
    cJSON_free(text);
}

void
ca_mqtt_publish_async(CaMqtt *self, const char *subtopic, const char *payload, int qos,
                      gboolean retain, CaMqttMsgClass klass, GCancellable *cancellable,
                      GAsyncReadyCallback callback, gpointer user_data)
{
    /* No source object: queued tasks must not keep the client alive (dispose fails them). */
    GTask *task = g_task_new(NULL, cancellable, callback, user_data);
    Msg *m;

    g_task_set_source_tag(task, ca_mqtt_publish_async);
    /* Report what happened to the message, even if cancelled after it was handed over. */
    g_task_set_check_cancellable(task, FALSE);
    if (!CA_IS_MQTT(self) || !subtopic_valid(subtopic) || !payload) {
        g_task_return_new_error(task, CA_ERROR, CA_ERROR_INVALID_INPUT,
                                "invalid publish arguments");
        g_object_unref(task);
        return;
    }
    m = ca_mqtt_msg_new(subtopic, g_bytes_new(payload, strlen(payload)), qos, retain, klass);
    m->task = task;
    if (cancellable)
        m->cancellable = g_object_ref(cancellable);
    enqueue(self, m);
}

gboolean
ca_mqtt_publish_finish(CaMqtt *self, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}

void
ca_mqtt_publish_event(CaMqtt *self, const char *type, const cJSON *fields)
{
    char *text;

    g_return_if_fail(type != NULL);
    text = ca_mqtt_event_payload(type, fields);
    ca_mqtt_publish(self, "events", text, 1, FALSE, CA_MQTT_MSG_NORMAL);
    cJSON_free(text);
}

void
ca_mqtt_subscribe(CaMqtt *self, const char *subtopic_filter)
{
    g_return_if_fail(CA_IS_MQTT(self));
    g_return_if_fail(subtopic_filter && *subtopic_filter);

    for (guint i = 0; i < self->subs->len; i++) {
        if (g_str_equal(self->subs->pdata[i], subtopic_filter))
            return;
    }
    g_ptr_array_add(self->subs, g_strdup(subtopic_filter));
    if (self->state == STATE_CONNECTED) {
        ca_mqtt_subscribe_missing(self);
        ca_mqtt_process_events(self);
    }
}

void
ca_mqtt_subscribe_state(CaMqtt *self, const char *subtopic)
{
    g_return_if_fail(CA_IS_MQTT(self));
    g_return_if_fail(subtopic && *subtopic && !strpbrk(subtopic, "+#"));

    g_hash_table_add(self->state_subs, g_strdup(subtopic));
    ca_mqtt_subscribe(self, subtopic);
}

void
ca_mqtt_unsubscribe(CaMqtt *self, const char *subtopic_filter)
{
    g_return_if_fail(CA_IS_MQTT(self));
    g_return_if_fail(subtopic_filter != NULL);

    g_hash_table_remove(self->state_subs, subtopic_filter);
    for (guint i = 0; i < self->subs->len; i++) {
        if (g_str_equal(self->subs->pdata[i], subtopic_filter)) {
            g_ptr_array_remove_index(self->subs, i);
            break;
        }
    }
    if (g_hash_table_remove(self->subs_sent, subtopic_filter) && self->mosq &&
        self->state == STATE_CONNECTED) {
        g_autofree char *topic = g_strconcat(self->base, "/", subtopic_filter, NULL);
        mosquitto_unsubscribe(self->mosq, NULL, topic);
        ca_mqtt_process_events(self);
    }
}
