/* mqtt-private: CaMqtt's state, shared by mqtt.c (lifecycle, state machine), mqtt-handle.c
 * (the libmosquitto handle, TLS, credentials, callbacks), mqtt-queue.c (outbound queue,
 * publish and subscribe API) and mqtt-format.c (topics and payloads). Nothing outside
 * agent/mqtt includes it. */
#pragma once
#include "backoff.h"
#include "error.h"
#include "mqtt-settings.h"
#include "mqtt.h"

#include <mosquitto.h>

#define MAX_HANDED 32 /* messages handed to libmosquitto at once (its queue is unbounded) */

typedef enum {
    STATE_STOPPED,        /* not started, or stopped */
    STATE_WAIT_LINK,      /* started; the uplink has no path, no attempts */
    STATE_RESOLVING,      /* resolving the broker name off the main loop, then racing
                           * connects when it has several addresses (address-race.c) */
    STATE_CONNECTING,     /* TCP/TLS/CONNECT under way, waiting for CONNACK */
    STATE_CONNECTED,      /* CONNACK accepted */
    STATE_RECONNECT_WAIT, /* backoff timer running */
    STATE_STOPPING,       /* offline published; waiting for its PUBACK, then DISCONNECT */
} State;

typedef struct {
    char *subtopic; /* relative to the base at the time it is handed over */
    GBytes *payload;
    int qos;
    gboolean retain;
    CaMqttMsgClass klass;
    GTask *task; /* NULL for fire and forget */
    GCancellable *cancellable;
    gulong cancel_id;
    int mid;             /* once handed to libmosquitto */
    gboolean absolute;   /* subtopic is a whole topic (ca_mqtt_publish_to_topic) */
    gboolean alias_only; /* sent by topic alias alone (mqtt-economy.c) */
} Msg;

typedef enum {
    EV_CONNECT,
    EV_DISCONNECT,
    EV_PUBLISH,
    EV_MESSAGE,
    EV_SUBSCRIBE,
} EventType;

typedef struct {
    EventType type;
    int rc;  /* CONNACK reason, disconnect rc, PUBACK reason */
    int arg; /* CONNACK flags, mid */
    int granted;
    int alias_max; /* EV_CONNECT: the broker's Topic Alias Maximum (0: none) */
    char *topic;
    GBytes *payload;
    gboolean retain; /* EV_MESSAGE: the broker's retain flag */
} Event;

struct _CaMqtt {
    GObject parent;

    /* Settings (from the config snapshot) */
    CaMqttSettings set;
    char *base; /* <topic-prefix>/<device-id> */
    gint64 started_at_us;

    /* Connection */
    State state;
    gboolean started;
    gboolean link_available;
    struct mosquitto *mosq;
    GSource *source;     /* owned: mqtt-source for mosq */
    GSource *misc_timer; /* owned: loop_misc when the keepalive is due, only while connected */
    /* Monotonic us no later than libmosquitto's last in/out times: the connect call, or
     * the last PINGREQ it logged (misc_delay_ms). */
    gint64 keepalive_ref_us;
    guint keepalive;          /* of the connection (attempt): the longer of set and economy */
    guint economy_keepalive;  /* economy mode's keepalive, 0: not economising */
    guint64 reads;            /* the source's reads at the last look ("received" signal) */
    gboolean economy_aliases; /* economy mode: topic aliases for the fixed topics */
    guint alias_max;          /* the broker's Topic Alias Maximum on this connection */
    GHashTable *aliases;      /* subtopic -> alias established on this connection */
    GSource *retry_timer;     /* owned: backoff wait */
    GSource *connect_timer;   /* owned: CONNECTING deadline */
    GSource *cancel_idle;     /* owned: sweeps cancelled queued messages */
    GCancellable *resolve_cancellable;
    CaBackoff backoff;
    gint64 connected_at;       /* monotonic us */
    char *last_lib_error;      /* last error line libmosquitto logged (OpenSSL detail) */
    gboolean lib_connected;    /* libmosquitto holds an open connection attempt/socket */
    gboolean inbound_checked;  /* ca_mqtt_inbound_install() was asked (and said so) */
    guint oversized;           /* connections closed on a too large packet, not reported */
    guint64 oversized_largest; /* the largest of them, bytes */
    gboolean clean_next;       /* the next connection starts a clean session */
    gboolean handle_clean;     /* mosq was made for a clean session by clean_next */

    /* Events recorded by libmosquitto callbacks, processed after the call returns */
    GQueue events;
    gboolean processing;

    /* Outbound */
    GQueue queue; /* Msg*, not yet handed over, oldest first */
    gsize queue_bytes;
    guint queue_telemetry;
    GQueue handed; /* Msg*, handed to libmosquitto, waiting for on_publish */
    guint64 dropped_total;
    guint dropped_telemetry; /* since the last report */
    guint dropped_other;
    gint64 first_drop_us;
    gint64 last_drop_us;

    /* Subscriptions */
    GPtrArray *subs;        /* char* subtopic filters */
    GHashTable *subs_sent;  /* filters subscribed in the broker's current session */
    GHashTable *sub_mids;   /* mid -> filter (for SUBACK refusals) */
    GHashTable *state_subs; /* subtopics whose retained message is a state, delivered */
    guint retained_refused; /* retained requests refused since the last connection */

    /* Stopping */
    gboolean stopped; /* stop requested or done: no more attempts, publishes fail */
    GTask *stop_task;
    gulong stop_cancel_id;
    GSource *stop_idle; /* owned: forced close after the stop was cancelled */
    int offline_mid;
    gboolean stop_acked;
};

/* mqtt.c */
/* Act on what the libmosquitto callbacks recorded; called after every library call. */
void ca_mqtt_process_events(CaMqtt *self);
/* The connection ended or could not be made: record, then back off (or finish a stop). */
void ca_mqtt_connection_lost(CaMqtt *self, int rc, int err, const char *why);

/* mqtt-economy.c */
/* A new connection: no alias established; broker_max from its CONNACK. */
void ca_mqtt_alias_reset(CaMqtt *self, guint broker_max);
/* Publish m on topic, by topic alias where economy mode and the broker allow it; the
 * libmosquitto return code. */
int ca_mqtt_alias_publish(CaMqtt *self, Msg *m, const char *topic, int *mid);
/* TRUE when a message sent by alias alone is handed over and not acknowledged. */
gboolean ca_mqtt_alias_in_flight(CaMqtt *self);

/* mqtt-handle.c */
/* A handle for the current settings; FALSE (logged) when the settings cannot work. */
gboolean ca_mqtt_create_handle(CaMqtt *self);
/* Destroy the handle (if any) with its source, events and per-session subscriptions. */
void ca_mqtt_destroy_handle(CaMqtt *self);
/* Username and password for the next attempt; FALSE (logged) when they cannot be set. */
gboolean ca_mqtt_set_credentials(CaMqtt *self);
/* TCP keepalive and user timeout on the connection's socket, from the keepalive. */
void ca_mqtt_set_socket_options(CaMqtt *self);
void ca_mqtt_event_free(Event *e);

/* mqtt-queue.c */
Msg *ca_mqtt_msg_new(const char *subtopic, GBytes *payload, int qos, gboolean retain,
                     CaMqttMsgClass klass);
/* Complete m (already detached from every list) and free it; error NULL = success. */
void ca_mqtt_msg_complete(Msg *m, GError *error);
/* The whole topic m goes to (owned). */
char *ca_mqtt_msg_topic(CaMqtt *self, const Msg *m);
/* Fail every message not acknowledged yet (queued or handed over): CA_ERROR_NOT_READY. */
void ca_mqtt_fail_all(CaMqtt *self, const char *message);
/* Take the handed-over message with that mid off the list; NULL when unknown. */
Msg *ca_mqtt_find_handed(CaMqtt *self, int mid);
/* Hand m to libmosquitto. FALSE when the library refused it (m completed). */
gboolean ca_mqtt_hand_over(CaMqtt *self, Msg *m);
/* Hand queued messages over while connected, at most MAX_HANDED in flight unless all. */
void ca_mqtt_flush_queue(CaMqtt *self, gboolean all);
/* Give the messages libmosquitto holds back to our queue (front, in order). */
void ca_mqtt_requeue_handed(CaMqtt *self);
/* Drop the oldest messages (telemetry first) while the queue is over its limits. */
void ca_mqtt_enforce_limits(CaMqtt *self);
/* Publish the mqtt-queue-overflow event ahead of the backlog, when anything was dropped. */
void ca_mqtt_report_drops(CaMqtt *self);
/* Publish the mqtt-packet-too-large event when connections were closed on a too large
 * packet since the last report; session_dropped: this connection started a clean session
 * to be rid of it (mqtt-handle.c). */
void ca_mqtt_report_oversize(CaMqtt *self, gboolean session_dropped);
/* Why the connection failed when the framer refused the broker's stream (and counted for
 * the report), else NULL (mqtt-handle.c). */
char *ca_mqtt_inbound_failure(CaMqtt *self);
/* Subscribe to every filter not yet subscribed in the broker's current session. */
void ca_mqtt_subscribe_missing(CaMqtt *self);

/* mqtt-receive.c */
/* The broker's SUBACK for mid: granted is the QoS or a refusal (>= 0x80). */
void ca_mqtt_subscribed(CaMqtt *self, int mid, int granted);
/* The subtopic (inside topic) a message arriving on topic is handed over as, or NULL when
 * it is ignored: outside the base, empty, or a retained request (refused and cleared). */
const char *ca_mqtt_accept_message(CaMqtt *self, const char *topic, GBytes *payload,
                                   gboolean retain);

/* mqtt-format.c */
/* {"ts":now,"type":type,...fields} as text (cJSON_free it). */
char *ca_mqtt_event_payload(const char *type, const cJSON *fields);
