/* mqtt: cellagent's link to its users. CaMqtt drives libmosquitto from the GLib main
 * loop (mqtt-source.c), connects and reconnects forever with backoff, keeps the retained
 * status (online / Last Will offline), resubscribes, holds a bounded outbound queue while
 * the broker is unreachable and reports PUBACK completion to callers.
 * Owns: the broker connection and topic names under <base> = <topic-prefix>/<device-id>.
 * Does not own: what is published (agent.c wires the modules), command handling
 * (commands.c). Subtopics are relative to <base>: "telemetry", "cmd/reboot", "sms/in". */
#pragma once
#include "config.h"

#include <cjson/cJSON.h>
#include <gio/gio.h>

G_BEGIN_DECLS

#define CA_TYPE_MQTT (ca_mqtt_get_type())
G_DECLARE_FINAL_TYPE(CaMqtt, ca_mqtt, CA, MQTT, GObject)

/* How a message is treated when the outbound queue is full (queue-limit). (Not named
 * CaMqttClass: G_DECLARE_FINAL_TYPE already defines that as the GObject class struct.) */
typedef enum {
    CA_MQTT_MSG_TELEMETRY, /* periodic/replaceable: the oldest of these is dropped first */
    CA_MQTT_MSG_NORMAL,    /* events, results, status: dropped only when no telemetry is left */
} CaMqttMsgClass;

/* Largest payload accepted for publishing (bytes); larger ones fail with CA_ERROR_LIMIT. */
#define CA_MQTT_MAX_PAYLOAD (256 * 1024)

/*****************************************************************************/
/* Lifecycle */

/* New client for config's [mqtt] and [agent] groups; does nothing until ca_mqtt_start(). */
CaMqtt *ca_mqtt_new(CaConfig *config);
/* Begin connecting (asynchronously); reconnects forever with backoff until stopped. */
void ca_mqtt_start(CaMqtt *self);
/* Clean stop: publish retained offline, wait for its PUBACK, disconnect. Pending publishes
 * fail with CA_ERROR_NOT_READY. The caller bounds the wait (cancellable or its deadline);
 * cancelling disconnects at once. Completes at once when not connected. */
void ca_mqtt_stop_async(CaMqtt *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                        gpointer user_data);
/* TRUE when the broker acknowledged the offline status before the disconnect. */
gboolean ca_mqtt_stop_finish(CaMqtt *self, GAsyncResult *result, GError **error);
/* Apply a reloaded config: reconnects with the new settings when the connection's [mqtt]
 * keys or the device id changed; new queue limits apply in place, without a reconnect. */
void ca_mqtt_set_config(CaMqtt *self, CaConfig *config);
/* Drop the current connection (if any) and connect again now, backoff reset
 * (e.g. the uplink switched, so the old TCP path is dead). */
void ca_mqtt_reconnect_now(CaMqtt *self);
/* Gate connection attempts on the uplink (default TRUE): while FALSE no attempt is made
 * (no DNS, no SYNs over a dead link); going TRUE connects at once. */
void ca_mqtt_set_link_available(CaMqtt *self, gboolean available);

/* Economy mode: keepalive_s (0: none) makes connections use the longer of it and [mqtt]
 * keepalive (a connection or attempt with another one is made again now); topic_aliases
 * sends the agent's fixed topics (status, telemetry, link, usage, events) by MQTT 5 topic
 * alias where the broker's CONNACK allows them. TRUE when it reconnected (the
 * "disconnected" signal was emitted inside the call). */
gboolean ca_mqtt_set_economy(CaMqtt *self, guint keepalive_s, gboolean topic_aliases);

/*****************************************************************************/
/* State */

/* The keepalive (s) of the current connection (attempt), else of the next one. */
guint ca_mqtt_get_keepalive(CaMqtt *self);

/* "<topic-prefix>/<device-id>", owned by self (changes only on ca_mqtt_set_config). */
const char *ca_mqtt_get_base(CaMqtt *self);
/* TRUE between CONNACK (accepted) and the next disconnect. */
gboolean ca_mqtt_is_connected(CaMqtt *self);
/* Messages waiting in the outbound queue (not yet handed to the broker connection). */
guint ca_mqtt_get_queue_length(CaMqtt *self);
/* Messages dropped from the outbound queue since start (all classes). */
guint64 ca_mqtt_get_dropped_total(CaMqtt *self);

/*****************************************************************************/
/* Publishing (every call returns at once; nothing blocks) */

/* Fire and forget: publish payload (UTF-8 JSON text, NUL-terminated) on <base>/subtopic.
 * Queued (bounded) while disconnected; never published twice by this module. */
void ca_mqtt_publish(CaMqtt *self, const char *subtopic, const char *payload, int qos,
                     gboolean retain, CaMqttMsgClass klass);
/* Same on a whole topic outside <base> (e.g. Home Assistant discovery config topics);
 * topic must not contain wildcards. */
void ca_mqtt_publish_to_topic(CaMqtt *self, const char *topic, const char *payload, int qos,
                              gboolean retain, CaMqttMsgClass klass);
/* Same as ca_mqtt_publish, serialising json (not consumed). */
void ca_mqtt_publish_json(CaMqtt *self, const char *subtopic, const cJSON *json, int qos,
                          gboolean retain, CaMqttMsgClass klass);
/* Publish and report completion: QoS 1 completes on PUBACK (MQTT 5 reason < 128), QoS 0
 * when written to the socket. Errors: CA_ERROR_MQTT (broker refused: message names the
 * reason code, e.g. 135 not authorized), CA_ERROR_LIMIT (dropped from the full queue or
 * too large), CA_ERROR_NOT_READY (client stopped), G_IO_ERROR_CANCELLED (cancelled while
 * still queued; once handed to the connection it cannot be taken back). */
void ca_mqtt_publish_async(CaMqtt *self, const char *subtopic, const char *payload, int qos,
                           gboolean retain, CaMqttMsgClass klass, GCancellable *cancellable,
                           GAsyncReadyCallback callback, gpointer user_data);
/* TRUE once the broker has the message (see ca_mqtt_publish_async). */
gboolean ca_mqtt_publish_finish(CaMqtt *self, GAsyncResult *result, GError **error);
/* Publish one event on <base>/events (QoS 1, not retained): {"ts":TS,"type":type,...fields}.
 * fields: a JSON object whose members are copied in, or NULL; not consumed. */
void ca_mqtt_publish_event(CaMqtt *self, const char *type, const cJSON *fields);

/*****************************************************************************/
/* Subscribing */

/* Subscribe (QoS 1) to <base>/subtopic_filter (may contain + and #); kept across reconnects
 * and resubscribed when the broker has no session. Subscribing twice is harmless. */
void ca_mqtt_subscribe(CaMqtt *self, const char *subtopic_filter);
/* Subscribe to a state topic (no wildcards): like ca_mqtt_subscribe, but its retained message
 * is delivered instead of refused and cleared; it is the current state (config/desired),
 * not a request from the past, and arrives again at every (re)subscription. */
void ca_mqtt_subscribe_state(CaMqtt *self, const char *subtopic);
/* Forget a subscription made with ca_mqtt_subscribe or ca_mqtt_subscribe_state. */
void ca_mqtt_unsubscribe(CaMqtt *self, const char *subtopic_filter);

/* Signals:
 *   "message"      (const char *subtopic, GBytes *payload): a message on a subscribed
 *                  topic under <base>; QoS 1 was already acknowledged to the broker
 *                  (libmosquitto acks before delivery), so persist before returning.
 *   "connected"    (): CONNACK accepted, online published, subscriptions in place.
 *   "disconnected" (): the connection was lost or closed.
 *   "received"     (): data from the broker arrived on the connection (any packet: a
 *                  PINGRESP, a PUBACK, a message): the path to the broker works. */

/*****************************************************************************/
/* Pure helpers (unit-tested) */

/* "<prefix>/<device_id>/<subtopic>" (subtopic NULL or "": the base). */
char *ca_mqtt_build_topic(const char *prefix, const char *device_id, const char *subtopic);
/* The part of topic after "<base>/", or NULL when topic is not below base. */
const char *ca_mqtt_subtopic(const char *base, const char *topic);
/* The status payload: {"state":"online","version":V,"started_at":TS} or {"state":"offline"}. */
char *ca_mqtt_status_payload(gboolean online, const char *version, gint64 started_at_us);
/* TRUE when an MQTT 5 PUBACK reason code means the broker refused the message (>= 128). */
gboolean ca_mqtt_reason_is_refusal(int reason_code);
/* TRUE when a connection that was up ended because the broker closed it (EOF, reset, an
 * MQTT 5 DISCONNECT): what a broker restart does to a whole fleet at once. FALSE for a path
 * that went quiet (keepalive timeout, unreachable network), which one device meets alone.
 * rc is a libmosquitto code (MOSQ_ERR_ERRNO: err is the errno) or a DISCONNECT reason. */
gboolean ca_mqtt_loss_is_peer_close(int rc, int err);

G_END_DECLS
