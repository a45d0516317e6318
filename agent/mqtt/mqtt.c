/* mqtt: CaMqtt, the broker connection.
 * Owns: one libmosquitto handle driven by mqtt-source.c, the connect/reconnect state
 * machine with backoff, TLS and credentials, the retained status and Last Will, the
 * subscriptions, the bounded outbound queue and publish completion.
 * Does not own: message contents (callers), commands (commands.c), when the uplink is up
 * (agent.c tells us). libmosquitto callbacks only record events; they are processed after
 * the library call returns (process_events), so nothing re-enters the library. */
#define CA_LOG_MODULE "mqtt"
#include "mqtt.h"

#include "autocleanups.h"
#include "backoff.h"
#include "error.h"
#include "log.h"
#include "mqtt-source.h"
#include "version.h"
#include "timestamp.h"

#include <errno.h>
#include <mqtt_protocol.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

#define BACKOFF_INITIAL_MS 1000
#define BACKOFF_MAX_MS     (5 * 60 * 1000)
#define BACKOFF_JITTER_PCT 25
#define STABLE_MS          30000 /* a connection up this long resets the backoff */
#define CONNECT_TIMEOUT_MS 30000 /* TCP + TLS + CONNACK */
#define MAX_HANDED         32 /* messages handed to libmosquitto at once (its queue is unbounded) */
#define MAX_INCOMING       (1024 * 1024) /* MQTT 5 Maximum Packet Size we announce */
#define SLOW_CONNECT_MS    200 /* warn when connect_async (blocking getaddrinfo) took longer */

/*****************************************************************************/
/* Types */

typedef enum {
    STATE_STOPPED,        /* not started, or stopped */
    STATE_WAIT_LINK,      /* started; the uplink has no path, no attempts */
    STATE_RESOLVING,      /* resolving the broker name off the main loop */
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
    int mid;           /* once handed to libmosquitto */
    gboolean absolute; /* subtopic is a whole topic (ca_mqtt_publish_to_topic) */
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
    char *topic;
    GBytes *payload;
} Event;

struct _CaMqtt {
    GObject parent;

    /* Settings (from the config snapshot) */
    CaConfig *config;
    char *base;
    char *host;
    int port;
    int keepalive;
    gboolean v5;
    guint queue_limit;
    gsize queue_limit_bytes;
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
    GSource *retry_timer;   /* owned: backoff wait */
    GSource *connect_timer; /* owned: CONNECTING deadline */
    GSource *cancel_idle;   /* owned: sweeps cancelled queued messages */
    GCancellable *resolve_cancellable;
    CaBackoff backoff;
    gint64 connected_at;    /* monotonic us */
    char *last_lib_error;   /* last error line libmosquitto logged (OpenSSL detail) */
    gboolean lib_connected; /* libmosquitto holds an open connection attempt/socket */

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
    GPtrArray *subs;       /* char* subtopic filters */
    GHashTable *subs_sent; /* filters subscribed in the broker's current session */
    GHashTable *sub_mids;  /* mid -> filter (for SUBACK refusals) */

    /* Stopping */
    gboolean stopped; /* stop requested or done: no more attempts, publishes fail */
    GTask *stop_task;
    gulong stop_cancel_id;
    GSource *stop_idle; /* owned: forced close after the stop was cancelled */
    int offline_mid;
    gboolean stop_acked;
};

G_DEFINE_FINAL_TYPE(CaMqtt, ca_mqtt, G_TYPE_OBJECT)

enum { SIGNAL_MESSAGE, SIGNAL_CONNECTED, SIGNAL_DISCONNECTED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void begin_connect(CaMqtt *self);
static void finish_stop(CaMqtt *self, gboolean acked);
static void connection_lost(CaMqtt *self, int rc, int err, const char *why);
static void process_events(CaMqtt *self);
static void flush_queue(CaMqtt *self, gboolean all);
static void msg_cancelled_cb(GCancellable *cancellable, gpointer user_data);
static void enforce_limits(CaMqtt *self);

/*****************************************************************************/
/* Pure helpers */

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

/*****************************************************************************/
/* Messages */

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
static void
msg_complete(Msg *m, GError *error)
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
fail_all(GQueue *q, CaError code, const char *message)
{
    GQueue stolen = *q;
    Msg *m;

    g_queue_init(q);
    while ((m = g_queue_pop_head(&stolen)))
        msg_complete(m, g_error_new_literal(CA_ERROR, code, message));
}

static Msg *
find_handed(CaMqtt *self, int mid)
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

/*****************************************************************************/
/* libmosquitto callbacks: record only */

static void
push_event(CaMqtt *self, EventType type, int rc, int arg)
{
    Event *e = g_new0(Event, 1);

    e->type = type;
    e->rc = rc;
    e->arg = arg;
    g_queue_push_tail(&self->events, e);
}

static void
on_connect_cb(struct mosquitto *mosq, void *obj, int rc, int flags, const mosquitto_property *p)
{
    push_event(obj, EV_CONNECT, rc, flags);
}

static void
on_disconnect_cb(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *p)
{
    push_event(obj, EV_DISCONNECT, rc, errno);
}

static void
on_publish_cb(struct mosquitto *mosq, void *obj, int mid, int reason, const mosquitto_property *p)
{
    push_event(obj, EV_PUBLISH, reason, mid);
}

static void
on_subscribe_cb(struct mosquitto *mosq, void *obj, int mid, int count, const int *granted,
                const mosquitto_property *p)
{
    CaMqtt *self = obj;

    push_event(self, EV_SUBSCRIBE, 0, mid);
    ((Event *) self->events.tail->data)->granted = count > 0 ? granted[0] : 0x80;
}

static void
on_message_cb(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
              const mosquitto_property *p)
{
    CaMqtt *self = obj;
    Event *e;

    push_event(self, EV_MESSAGE, 0, msg->qos);
    e = self->events.tail->data;
    e->topic = g_strdup(msg->topic);
    e->payload = g_bytes_new(msg->payload, msg->payloadlen > 0 ? (gsize) msg->payloadlen : 0);
}

static void
on_log_cb(struct mosquitto *mosq, void *obj, int level, const char *str)
{
    CaMqtt *self = obj;

    /* libmosquitto's lines carry no secrets (it never logs the password). */
    /* Keep this attempt's error lines (cleared per attempt, bounded) for the failure log. */
    if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) {
        if (!self->last_lib_error) {
            self->last_lib_error = g_strdup(str);
        } else if (strlen(self->last_lib_error) < 512) {
            char *joined = g_strconcat(self->last_lib_error, "; ", str, NULL);
            g_free(self->last_lib_error);
            self->last_lib_error = joined;
        }
    }
    if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING | MOSQ_LOG_NOTICE))
        ca_debug("libmosquitto: %s", str);
    /* "Client <id> sending PINGREQ" (libmosquitto 2.0): times the next keepalive check. */
    if ((level & MOSQ_LOG_DEBUG) && g_str_has_suffix(str, " sending PINGREQ"))
        self->keepalive_ref_us = g_get_monotonic_time();
}

static void
event_free(Event *e)
{
    g_free(e->topic);
    if (e->payload)
        g_bytes_unref(e->payload);
    g_free(e);
}

/*****************************************************************************/
/* Timers */

static GSource *
timer_new(guint ms, GSourceFunc func, gpointer data)
{
    GSource *s = g_timeout_source_new(ms);

    g_source_set_callback(s, func, data, NULL);
    g_source_attach(s, NULL);
    return s;
}

/* When mosquitto_loop_misc() runs next. In libmosquitto 2.0 it only does the keepalive: a
 * PINGREQ once nothing was sent or received for a keepalive period (whole seconds of its own
 * CLOCK_MONOTONIC), and dropping the connection once a PINGREQ went unanswered for another.
 *
 * Right after the connect call and right after a PINGREQ, both of its times are "now"
 * (keepalive_ref_us), so nothing falls due before one keepalive has passed: the timer waits
 * until keepalive + 1 s after that moment. When a call sends no PINGREQ (packets came and went
 * meanwhile) it is not known when the keepalive falls due, and the timer polls every
 * keepalive/4: the PINGREQ then leaves by 1.25 x keepalive, inside the 1.5 x the broker
 * allows. Firing early is harmless, late never happens. The PINGREQ is seen through
 * libmosquitto's debug log line; should its text ever change, the timer just keeps polling.
 * Idle, that is 2 wakeups per keepalive + 1 s (the timer and the PINGRESP), not 1 per second
 * as HACKING.md C17 has it (the idle target is under 0.2 wakeups/s, docs/benchmarks.md). A dead path is also caught
 * by TCP_USER_TIMEOUT. */
static guint
misc_delay_ms(CaMqtt *self, gboolean from_ref)
{
    gint64 now = g_get_monotonic_time();
    gint64 due = self->keepalive_ref_us + ((gint64) self->keepalive + 1) * G_USEC_PER_SEC;

    if (from_ref)
        return (guint) CLAMP((due - now) / 1000, 0, G_MAXUINT32 / 2);
    return (guint) MAX(self->keepalive * 1000 / 4, 1000);
}

static gboolean
misc_timer_cb(gpointer user_data)
{
    CaMqtt *self = user_data;
    gint64 ref_before = self->keepalive_ref_us;
    int rc, err;

    /* A new timer each time: a timeout source re-arms itself with its own interval. */
    ca_clear_source(&self->misc_timer);
    rc = mosquitto_loop_misc(self->mosq);
    err = errno;
    g_object_ref(self);
    if (rc == MOSQ_ERR_SUCCESS)
        self->misc_timer = timer_new(misc_delay_ms(self, self->keepalive_ref_us != ref_before),
                                     misc_timer_cb, self);
    process_events(self);
    if (rc != MOSQ_ERR_SUCCESS)
        connection_lost(self, rc, err, NULL);
    g_object_unref(self);
    return G_SOURCE_REMOVE;
}

static gboolean
retry_timer_cb(gpointer user_data)
{
    CaMqtt *self = user_data;

    ca_clear_source(&self->retry_timer);
    begin_connect(self);
    return G_SOURCE_REMOVE;
}

static gboolean
connect_timer_cb(gpointer user_data)
{
    CaMqtt *self = user_data;

    ca_clear_source(&self->connect_timer);
    connection_lost(self, MOSQ_ERR_TIMEOUT, 0, "no answer from the broker within 30 s");
    return G_SOURCE_REMOVE;
}

/*****************************************************************************/
/* The libmosquitto handle */

static void
set_socket_options(CaMqtt *self)
{
    int fd = mosquitto_socket(self->mosq);
    int on = 1;
    int idle = self->keepalive;
    int intvl = MAX(self->keepalive / 4, 1);
    int cnt = 4;
    /* Unacknowledged data for two keepalive periods means the path is dead (without
     * this, retransmissions go on for ~15 min). */
    unsigned int user_timeout = (unsigned int) self->keepalive * 2 * 1000;

    if (fd < 0)
        return;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout) < 0)
        ca_warn("cannot set TCP keepalive/user timeout on the broker socket: %s, ignoring",
                g_strerror(errno));
}

static gboolean
source_cb(int rc, gpointer user_data)
{
    CaMqtt *self = user_data;
    int err = errno; /* from the loop_* call, before anything else runs */

    g_object_ref(self);
    process_events(self);
    if (rc != MOSQ_ERR_SUCCESS)
        connection_lost(self, rc, err, NULL);
    g_object_unref(self);
    return G_SOURCE_CONTINUE;
}

/* Read the first line of path; NULL with error when unreadable. The value is a secret. */
static char *
read_password(const char *path, GError **error)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    char *nl;

    if (!g_file_get_contents(path, &data, &len, error))
        return NULL;
    if (len > 4096) {
        g_set_error(error, CA_ERROR, CA_ERROR_LIMIT, "longer than 4096 bytes");
        return NULL;
    }
    nl = strpbrk(data, "\r\n");
    if (nl)
        *nl = '\0';
    return g_steal_pointer(&data);
}

static void
destroy_handle(CaMqtt *self)
{
    ca_clear_source(&self->source);
    /* Events of the old handle (mids) mean nothing to a new one. */
    g_queue_clear_full(&self->events, (GDestroyNotify) event_free);
    if (self->mosq)
        mosquitto_destroy(self->mosq);
    self->mosq = NULL;
    self->lib_connected = FALSE;
    g_hash_table_remove_all(self->subs_sent);
    g_hash_table_remove_all(self->sub_mids);
}

/* A handle for the current settings; FALSE (logged) when the settings cannot work. */
static gboolean
create_handle(CaMqtt *self)
{
    CaConfig *c = self->config;
    const char *client_id = ca_config_get_string(c, "mqtt", "client-id");
    gint64 expiry = ca_config_get_int(c, "mqtt", "session-expiry");
    g_autofree char *will_topic = g_strconcat(self->base, "/status", NULL);
    g_autofree char *offline = ca_mqtt_status_payload(FALSE, NULL, 0);
    g_autoptr(CaMosquitto) mosq = NULL;
    int rc;

    mosq = mosquitto_new(client_id, expiry == 0, self);
    if (!mosq) {
        ca_err("cannot create the MQTT client: %s", g_strerror(errno));
        return FALSE;
    }
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION,
                         self->v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    rc = mosquitto_will_set(mosq, will_topic, (int) strlen(offline), offline, 1, true);
    if (rc != MOSQ_ERR_SUCCESS) {
        ca_err("cannot set the Last Will: %s", mosquitto_strerror(rc));
        return FALSE;
    }
    if (ca_config_get_bool(c, "mqtt", "tls")) {
        const char *ca = ca_config_get_string(c, "mqtt", "ca-file");
        const char *cert = ca_config_get_string(c, "mqtt", "cert-file");
        const char *key = ca_config_get_string(c, "mqtt", "key-file");

        if (!*ca)
            mosquitto_int_option(mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
        rc = mosquitto_tls_set(mosq, *ca ? ca : NULL, *ca ? NULL : "/etc/ssl/certs",
                               *cert ? cert : NULL, *key ? key : NULL, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            ca_err("TLS setup failed (ca-file \"%s\", cert-file \"%s\", key-file \"%s\"): %s", ca,
                   cert, key,
                   rc == MOSQ_ERR_INVAL ? "a file is missing or unreadable"
                                        : mosquitto_strerror(rc));
            return FALSE;
        }
        /* cert_reqs 1 = SSL_VERIFY_PEER; tls_version is the minimum. Hostname
         * verification stays on (mosquitto_tls_insecure_set is never called). */
        rc = mosquitto_tls_opts_set(mosq, 1, ca_config_get_string(c, "mqtt", "tls-version"), NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            ca_err("TLS options rejected: %s", mosquitto_strerror(rc));
            return FALSE;
        }
    }
    if (self->v5) {
        mosquitto_property *props = NULL;

        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, (uint32_t) expiry);
        mosquitto_property_add_int32(&props, MQTT_PROP_MAXIMUM_PACKET_SIZE, MAX_INCOMING);
        /* libmosquitto 2.0 has no asynchronous connect that takes CONNECT properties, but
         * mosquitto_connect_bind_v5 stores them before it validates its arguments: with an
         * invalid port it stores them and returns MOSQ_ERR_INVAL without connecting, and
         * connect_async then sends them. test_mqtt_session covers this. */
        rc = mosquitto_connect_bind_v5(mosq, self->host, -1, self->keepalive, NULL, props);
        mosquitto_property_free_all(&props);
        if (rc != MOSQ_ERR_INVAL)
            ca_warn("storing MQTT 5 CONNECT properties returned \"%s\", ignoring",
                    mosquitto_strerror(rc));
    }
    mosquitto_connect_v5_callback_set(mosq, on_connect_cb);
    mosquitto_disconnect_v5_callback_set(mosq, on_disconnect_cb);
    mosquitto_publish_v5_callback_set(mosq, on_publish_cb);
    mosquitto_subscribe_v5_callback_set(mosq, on_subscribe_cb);
    mosquitto_message_v5_callback_set(mosq, on_message_cb);
    mosquitto_log_callback_set(mosq, on_log_cb);

    self->mosq = g_steal_pointer(&mosq);
    self->source = ca_mqtt_source_new(self->mosq);
    g_source_set_callback(self->source, (GSourceFunc) source_cb, self, NULL);
    ca_mqtt_source_set_watching(self->source, FALSE);
    g_source_attach(self->source, NULL);
    return TRUE;
}

/* Give the messages libmosquitto holds back to our queue (front, in order), before the
 * handle is destroyed: a new handle (new settings) sends them again. */
static void
requeue_handed(CaMqtt *self)
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
/* State machine */

static const char *
state_name(State s)
{
    switch (s) {
    case STATE_STOPPED:
        return "stopped";
    case STATE_WAIT_LINK:
        return "waiting for the uplink";
    case STATE_RESOLVING:
        return "resolving";
    case STATE_CONNECTING:
        return "connecting";
    case STATE_CONNECTED:
        return "connected";
    case STATE_RECONNECT_WAIT:
        return "waiting to reconnect";
    case STATE_STOPPING:
        return "stopping";
    }
    return "?";
}

static void
enter_state(CaMqtt *self, State state)
{
    if (self->state == state)
        return;
    ca_debug("state: %s -> %s", state_name(self->state), state_name(state));
    if (self->state == STATE_CONNECTING)
        ca_clear_source(&self->connect_timer);
    if (self->state == STATE_RESOLVING && self->resolve_cancellable) {
        g_cancellable_cancel(self->resolve_cancellable);
        g_clear_object(&self->resolve_cancellable);
    }
    if (self->state == STATE_RECONNECT_WAIT)
        ca_clear_source(&self->retry_timer);
    if ((self->state == STATE_CONNECTED || self->state == STATE_STOPPING) &&
        state != STATE_CONNECTED && state != STATE_STOPPING)
        ca_clear_source(&self->misc_timer);
    self->state = state;
    switch (state) {
    case STATE_CONNECTING:
        self->connect_timer = timer_new(CONNECT_TIMEOUT_MS, connect_timer_cb, self);
        break;
    case STATE_CONNECTED:
        if (!self->misc_timer)
            self->misc_timer = timer_new(misc_delay_ms(self, TRUE), misc_timer_cb, self);
        break;
    case STATE_STOPPED:
    case STATE_WAIT_LINK:
    case STATE_RESOLVING:
    case STATE_RECONNECT_WAIT:
    case STATE_STOPPING:
        break;
    }
}

static void
schedule_reconnect(CaMqtt *self)
{
    guint delay = ca_backoff_next(&self->backoff);

    ca_msg("reconnecting to %s:%d in %.1f s", self->host, self->port, delay / 1000.0);
    enter_state(self, STATE_RECONNECT_WAIT);
    self->retry_timer = timer_new(delay, retry_timer_cb, self);
}

static void
do_connect(CaMqtt *self)
{
    const char *pwfile = ca_config_get_string(self->config, "mqtt", "password-file");
    const char *user = ca_config_get_string(self->config, "mqtt", "username");
    g_autofree char *password = NULL;
    gint64 t0;
    gint64 took_ms;
    int rc;
    int err;

    if (!self->mosq && !create_handle(self)) {
        schedule_reconnect(self);
        return;
    }
    if (*pwfile) {
        g_autoptr(GError) error = NULL;

        password = read_password(pwfile, &error);
        if (!password) {
            ca_err("cannot read password-file \"%s\": %s", pwfile, error->message);
            schedule_reconnect(self);
            return;
        }
    }
    rc = mosquitto_username_pw_set(self->mosq, *user ? user : NULL, *user ? password : NULL);
    if (password)
        memset(password, 0, strlen(password));
    if (rc != MOSQ_ERR_SUCCESS) {
        ca_err("cannot set the MQTT credentials: %s", mosquitto_strerror(rc));
        schedule_reconnect(self);
        return;
    }
    ca_info("connecting to %s:%d (MQTT %s%s)", self->host, self->port, self->v5 ? "5" : "3.1.1",
            ca_config_get_bool(self->config, "mqtt", "tls") ? ", TLS" : "");
    g_clear_pointer(&self->last_lib_error, g_free);
    /* Fail QoS 0 messages libmosquitto still holds: a new connect discards them. */
    for (GList *l = self->handed.head, *next; l; l = next) {
        Msg *m = l->data;
        next = l->next;
        if (m->qos == 0) {
            g_queue_delete_link(&self->handed, l);
            msg_complete(m, g_error_new_literal(CA_ERROR, CA_ERROR_MQTT,
                                                "connection lost before the message was sent"));
        }
    }
    enter_state(self, STATE_CONNECTING);
    t0 = g_get_monotonic_time();
    self->keepalive_ref_us = t0;
    /* Non-blocking TCP connect; CONNECT is queued and goes out once the socket is
     * writable. getaddrinfo inside is blocking (docs/mqtt.md: bounded by resolving
     * asynchronously first). */
    rc = mosquitto_connect_async(self->mosq, self->host, self->port, self->keepalive);
    err = errno;
    took_ms = (g_get_monotonic_time() - t0) / 1000;
    if (took_ms >= SLOW_CONNECT_MS)
        ca_warn("starting the connection to %s blocked the main loop for %" G_GINT64_FORMAT
                " ms (name resolution)",
                self->host, took_ms);
    self->lib_connected = TRUE;
    if (rc != MOSQ_ERR_SUCCESS) {
        /* e.g. refused at once on loopback, or the name did not resolve */
        connection_lost(self, rc, err, NULL);
        return;
    }
    set_socket_options(self);
    ca_mqtt_source_set_watching(self->source, TRUE);
    process_events(self);
}

static void
resolve_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaMqtt *self = user_data;
    g_autoptr(GError) error = NULL;
    g_autolist(GInetAddress) addrs =
        g_resolver_lookup_by_name_finish(G_RESOLVER(source), result, &error);

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    g_clear_object(&self->resolve_cancellable);
    if (!addrs) {
        ca_warn("cannot resolve broker host \"%s\": %s", self->host, error->message);
        schedule_reconnect(self);
        return;
    }
    do_connect(self);
}

/* Resolve first on GResolver's thread: a name that does not resolve then never reaches
 * libmosquitto's blocking getaddrinfo, and one that does is usually answered from a warm
 * cache. (Passing the address instead would break TLS hostname verification.) */
static void
begin_connect(CaMqtt *self)
{
    g_autoptr(GInetAddress) literal = NULL;

    if (!self->started || self->stopped)
        return;
    if (!self->link_available) {
        enter_state(self, STATE_WAIT_LINK);
        return;
    }
    literal = g_inet_address_new_from_string(self->host);
    if (literal) {
        do_connect(self);
        return;
    }
    enter_state(self, STATE_RESOLVING);
    self->resolve_cancellable = g_cancellable_new();
    g_resolver_lookup_by_name_async(g_resolver_get_default(), self->host, self->resolve_cancellable,
                                    resolve_ready, self);
    /* g_resolver_get_default returned a new reference: drop it (the task holds its own). */
    g_object_unref(g_resolver_get_default());
}

static void
finish_stop(CaMqtt *self, gboolean acked)
{
    GTask *task = g_steal_pointer(&self->stop_task);

    if (self->stop_cancel_id) {
        g_cancellable_disconnect(g_task_get_cancellable(task), self->stop_cancel_id);
        self->stop_cancel_id = 0;
    }
    enter_state(self, STATE_STOPPED);
    if (self->source)
        ca_mqtt_source_set_watching(self->source, FALSE);
    fail_all(&self->queue, CA_ERROR_NOT_READY, "MQTT client stopped");
    self->queue_bytes = 0;
    self->queue_telemetry = 0;
    fail_all(&self->handed, CA_ERROR_NOT_READY, "MQTT client stopped");
    ca_msg("disconnected from the broker (stopped%s)", acked ? ", offline acknowledged" : "");
    if (task) {
        g_task_return_boolean(task, acked);
        g_object_unref(task);
    }
}

/* The connection ended or could not be made: record, then back off (or finish a stop). */
static void
connection_lost(CaMqtt *self, int rc, int err, const char *why)
{
    gboolean was_connected = self->state == STATE_CONNECTED;
    g_autofree char *reason = NULL;

    switch (self->state) {
    case STATE_STOPPING:
        finish_stop(self, self->stop_acked);
        return;
    case STATE_STOPPED:
    case STATE_WAIT_LINK:
    case STATE_RECONNECT_WAIT:
        return; /* already handled (on_disconnect and the loop rc both report it) */
    case STATE_RESOLVING:
    case STATE_CONNECTING:
    case STATE_CONNECTED:
        break;
    }
    if (self->source)
        ca_mqtt_source_set_watching(self->source, FALSE);
    if (why)
        reason = g_strdup(why);
    else if (rc == MOSQ_ERR_ERRNO)
        reason = g_strdup(g_strerror(err));
    else if (rc >= 128) /* MQTT 5 DISCONNECT from the broker carries a reason code */
        reason = g_strdup_printf("the broker disconnected us: %s (reason code %d)",
                                 mosquitto_reason_string(rc), rc);
    else if (rc == MOSQ_ERR_EAI)
        reason = g_strdup_printf("cannot resolve \"%s\"", self->host);
    else
        reason = g_strdup(mosquitto_strerror(rc));
    if (self->last_lib_error && (rc == MOSQ_ERR_TLS || !was_connected)) {
        char *full = g_strdup_printf("%s (%s)", reason, self->last_lib_error);
        g_free(reason);
        reason = full;
    }
    if (was_connected) {
        gint64 up_ms = (g_get_monotonic_time() - self->connected_at) / 1000;

        ca_msg("disconnected from %s:%d after %" G_GINT64_FORMAT " s: %s", self->host, self->port,
               up_ms / 1000, reason);
        if (up_ms >= STABLE_MS)
            ca_backoff_reset(&self->backoff);
    } else {
        ca_warn("connection to %s:%d failed: %s", self->host, self->port, reason);
    }
    /* Arm the retry first: a "disconnected" handler may change it (reconnect_now, stop). */
    schedule_reconnect(self);
    if (was_connected)
        g_signal_emit(self, signals[SIGNAL_DISCONNECTED], 0);
}

static void
subscribe_missing(CaMqtt *self)
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
static char *
msg_topic(CaMqtt *self, const Msg *m)
{
    return m->absolute ? g_strdup(m->subtopic) : g_strconcat(self->base, "/", m->subtopic, NULL);
}

static gboolean
hand_over(CaMqtt *self, Msg *m)
{
    g_autofree char *topic = msg_topic(self, m);
    gsize len = 0;
    const void *data = g_bytes_get_data(m->payload, &len);
    int mid = 0;
    int rc = mosquitto_publish(self->mosq, &mid, topic, (int) len, data, m->qos, m->retain);

    /* QoS 1: after NO_CONN/ERRNO/CONN_LOST the library has queued the message and sends
     * it after reconnecting; publishing it again would duplicate it (docs/mqtt.md). */
    if (rc == MOSQ_ERR_SUCCESS || (m->qos > 0 && (rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_ERRNO ||
                                                  rc == MOSQ_ERR_CONN_LOST))) {
        m->mid = mid;
        g_queue_push_tail(&self->handed, m);
        return TRUE;
    }
    ca_warn("publish on \"%s\" failed: %s", topic, mosquitto_strerror(rc));
    msg_complete(m, g_error_new(CA_ERROR, CA_ERROR_MQTT, "publish on \"%s\" failed: %s", topic,
                                mosquitto_strerror(rc)));
    return FALSE;
}

static void
flush_queue(CaMqtt *self, gboolean all)
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
        hand_over(self, m);
    }
}

static Msg *
msg_new(const char *subtopic, GBytes *payload, int qos, gboolean retain, CaMqttMsgClass klass)
{
    Msg *m = g_new0(Msg, 1);

    m->subtopic = g_strdup(subtopic);
    m->payload = payload;
    m->qos = CLAMP(qos, 0, 1);
    m->retain = retain;
    m->klass = klass;
    return m;
}

/* {"ts":now,"type":type,...fields} as text (cJSON_free it). */
static char *
event_text(const char *type, const cJSON *fields)
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

static void
report_drops(CaMqtt *self)
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
    cJSON_AddNumberToObject(fields, "queue_limit", self->queue_limit);
    cJSON_AddStringToObject(fields, "first_drop", first);
    cJSON_AddStringToObject(fields, "last_drop", last);
    ca_msg("outbound queue dropped %u messages while the broker was unreachable (%u telemetry)",
           total, self->dropped_telemetry);
    self->dropped_telemetry = self->dropped_other = 0;
    /* Straight to the connection, ahead of the backlog (it must not cost a queued message). */
    text = event_text("mqtt-queue-overflow", fields);
    hand_over(self,
              msg_new("events", g_bytes_new(text, strlen(text)), 1, FALSE, CA_MQTT_MSG_NORMAL));
    cJSON_free(text);
}

static void
handle_connack(CaMqtt *self, int rc, int flags)
{
    g_autofree char *online = NULL;
    gboolean session_present = (flags & 1) != 0;
    gsize n;

    if (rc != 0) {
        g_autofree char *why = g_strdup_printf(
            "broker refused the connection: %s (%d)",
            self->v5 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc), rc);
        connection_lost(self, MOSQ_ERR_CONN_REFUSED, 0, why);
        return;
    }
    if (self->state != STATE_CONNECTING)
        return;
    self->connected_at = g_get_monotonic_time();
    enter_state(self, STATE_CONNECTED);
    ca_msg("connected to %s:%d as \"%s\" (MQTT %s%s, session %s)", self->host, self->port,
           ca_config_get_string(self->config, "mqtt", "client-id"), self->v5 ? "5" : "3.1.1",
           ca_config_get_bool(self->config, "mqtt", "tls") ? ", TLS" : "",
           session_present ? "resumed" : "new");
    if (!session_present)
        g_hash_table_remove_all(self->subs_sent);
    subscribe_missing(self);
    /* Status first, then the drop report, then the backlog. */
    online = ca_mqtt_status_payload(TRUE, CA_VERSION, self->started_at_us);
    n = strlen(online);
    hand_over(self, msg_new("status", g_bytes_new_take(g_steal_pointer(&online), n), 1, TRUE,
                            CA_MQTT_MSG_NORMAL));
    report_drops(self);
    flush_queue(self, FALSE);
    g_signal_emit(self, signals[SIGNAL_CONNECTED], 0);
}

static void
handle_puback(CaMqtt *self, int mid, int reason)
{
    gboolean offline = self->state == STATE_STOPPING && mid == self->offline_mid;
    Msg *m = find_handed(self, mid);

    if (!m) {
        ca_debug("acknowledgement for unknown message id %d, ignoring", mid);
    } else if (ca_mqtt_reason_is_refusal(reason)) {
        g_autofree char *topic = msg_topic(self, m);
        const char *what = mosquitto_reason_string(reason);

        ca_warn("broker refused the message on \"%s\": %s (reason code %d)", topic, what, reason);
        /* Report it, except a refused event (that would loop). */
        if (m->absolute || strcmp(m->subtopic, "events") != 0) {
            g_autoptr(cJSON) fields = cJSON_CreateObject();

            cJSON_AddStringToObject(fields, "topic", topic);
            cJSON_AddNumberToObject(fields, "reason_code", reason);
            cJSON_AddStringToObject(fields, "reason", what);
            ca_mqtt_publish_event(self, "mqtt-publish-refused", fields);
        }
        msg_complete(m, g_error_new(CA_ERROR, CA_ERROR_MQTT,
                                    "broker refused the message on \"%s\": %s (reason code %d)",
                                    topic, what, reason));
    } else {
        msg_complete(m, NULL);
    }
    if (offline && self->state == STATE_STOPPING) {
        int rc;

        self->offline_mid = -1;
        self->stop_acked = TRUE;
        rc = self->v5 ? mosquitto_disconnect_v5(self->mosq, MQTT_RC_NORMAL_DISCONNECTION, NULL)
                      : mosquitto_disconnect(self->mosq);
        if (rc != MOSQ_ERR_SUCCESS)
            finish_stop(self, TRUE);
        return;
    }
    flush_queue(self, self->state == STATE_STOPPING);
}

static void
handle_suback(CaMqtt *self, int mid, int granted)
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

static void
handle_message(CaMqtt *self, const char *topic, GBytes *payload)
{
    const char *subtopic = ca_mqtt_subtopic(self->base, topic);

    if (!subtopic) {
        ca_debug("message on \"%s\" outside \"%s\", ignoring", topic, self->base);
        return;
    }
    ca_debug("message on \"%s\" (%zu bytes)", topic, g_bytes_get_size(payload));
    g_signal_emit(self, signals[SIGNAL_MESSAGE], 0, subtopic, payload);
}

/* Act on what the libmosquitto callbacks recorded; called after every library call. */
static void
process_events(CaMqtt *self)
{
    Event *e;

    if (self->processing)
        return; /* the outer call picks up what a nested one added */
    self->processing = TRUE;
    g_object_ref(self);
    while ((e = g_queue_pop_head(&self->events))) {
        switch (e->type) {
        case EV_CONNECT:
            handle_connack(self, e->rc, e->arg);
            break;
        case EV_DISCONNECT:
            connection_lost(self, e->rc == MOSQ_ERR_SUCCESS ? MOSQ_ERR_CONN_LOST : e->rc, e->arg,
                            e->rc == MOSQ_ERR_SUCCESS ? "closed by the broker" : NULL);
            break;
        case EV_PUBLISH:
            handle_puback(self, e->arg, e->rc);
            break;
        case EV_SUBSCRIBE:
            handle_suback(self, e->arg, e->granted);
            break;
        case EV_MESSAGE:
            handle_message(self, e->topic, e->payload);
            break;
        }
        event_free(e);
    }
    self->processing = FALSE;
    g_object_unref(self);
}

/*****************************************************************************/
/* Outbound queue */

static void
enforce_limits(CaMqtt *self)
{
    while (self->queue.length > self->queue_limit ||
           (self->queue_bytes > self->queue_limit_bytes && self->queue.length > 0)) {
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
                    self->queue_limit, self->queue_bytes);
        }
        self->last_drop_us = g_get_real_time();
        if (m->klass == CA_MQTT_MSG_TELEMETRY)
            self->dropped_telemetry++;
        else
            self->dropped_other++;
        self->dropped_total++;
        msg_complete(m, g_error_new(CA_ERROR, CA_ERROR_LIMIT,
                                    "dropped: the outbound queue is full (queue-limit %u)",
                                    self->queue_limit));
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
        msg_complete(m, g_error_new_literal(G_IO_ERROR, G_IO_ERROR_CANCELLED,
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
        msg_complete(m,
                     g_error_new(CA_ERROR, CA_ERROR_LIMIT, "payload of %zu bytes is larger than %d",
                                 size, CA_MQTT_MAX_PAYLOAD));
        return;
    }
    if (self->stopped) {
        msg_complete(m, g_error_new_literal(CA_ERROR, CA_ERROR_NOT_READY, "MQTT client stopped"));
        return;
    }
    if (self->state == STATE_CONNECTED && self->queue.length == 0 &&
        self->handed.length < MAX_HANDED) {
        hand_over(self, m);
        process_events(self);
        return;
    }
    g_queue_push_tail(&self->queue, m);
    self->queue_bytes += size;
    if (m->klass == CA_MQTT_MSG_TELEMETRY)
        self->queue_telemetry++;
    if (m->cancellable)
        m->cancel_id =
            g_cancellable_connect(m->cancellable, G_CALLBACK(msg_cancelled_cb), self, NULL);
    enforce_limits(self);
}

/*****************************************************************************/
/* Public API */

static void
apply_settings(CaMqtt *self, CaConfig *config)
{
    CaConfig *old = self->config;

    self->config = ca_config_ref(config);
    if (old)
        ca_config_unref(old);
    g_free(self->base);
    self->base = ca_mqtt_build_topic(ca_config_get_string(config, "mqtt", "topic-prefix"),
                                     ca_config_get_string(config, "agent", "device-id"), NULL);
    g_free(self->host);
    self->host = g_strdup(ca_config_get_string(config, "mqtt", "host"));
    self->port = (int) ca_config_get_int(config, "mqtt", "port");
    self->keepalive = (int) ca_config_get_int(config, "mqtt", "keepalive");
    self->v5 = g_str_equal(ca_config_get_string(config, "mqtt", "protocol"), "5");
    self->queue_limit = (guint) ca_config_get_int(config, "mqtt", "queue-limit");
    self->queue_limit_bytes = (gsize) ca_config_get_int(config, "mqtt", "queue-limit-bytes");
}

CaMqtt *
ca_mqtt_new(CaConfig *config)
{
    CaMqtt *self = g_object_new(CA_TYPE_MQTT, NULL);

    apply_settings(self, config);
    return self;
}

void
ca_mqtt_start(CaMqtt *self)
{
    g_return_if_fail(CA_IS_MQTT(self));

    if (self->started)
        return;
    self->started = TRUE;
    ca_msg("broker %s:%d, base topic \"%s\"", self->host, self->port, self->base);
    begin_connect(self);
}

static gboolean
stop_idle_cb(gpointer user_data)
{
    CaMqtt *self = user_data;

    ca_clear_source(&self->stop_idle);
    if (self->state != STATE_STOPPING)
        return G_SOURCE_REMOVE;
    ca_warn("stop cancelled before the broker acknowledged offline; closing the connection "
            "(the broker publishes the Last Will)");
    destroy_handle(self);
    finish_stop(self, FALSE);
    return G_SOURCE_REMOVE;
}

static void
stop_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
    CaMqtt *self = user_data;

    if (!self->stop_idle) {
        self->stop_idle = g_idle_source_new();
        g_source_set_callback(self->stop_idle, stop_idle_cb, self, NULL);
        g_source_attach(self->stop_idle, NULL);
    }
}

void
ca_mqtt_stop_async(CaMqtt *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                   gpointer user_data)
{
    g_autoptr(GTask) task = g_task_new(self, cancellable, callback, user_data);
    g_autofree char *offline = NULL;
    gsize n;
    Msg *m;

    g_task_set_source_tag(task, ca_mqtt_stop_async);
    g_task_set_check_cancellable(task, FALSE);
    if (self->stop_task) {
        g_task_return_new_error(task, CA_ERROR, CA_ERROR_FAILED, "already stopping");
        return;
    }
    self->stopped = TRUE;
    if (self->state != STATE_CONNECTED) {
        enter_state(self, STATE_STOPPED);
        destroy_handle(self);
        fail_all(&self->queue, CA_ERROR_NOT_READY, "MQTT client stopped");
        self->queue_bytes = 0;
        self->queue_telemetry = 0;
        fail_all(&self->handed, CA_ERROR_NOT_READY, "MQTT client stopped");
        g_task_return_boolean(task, FALSE);
        return;
    }
    self->stop_task = g_steal_pointer(&task);
    self->stop_acked = FALSE;
    enter_state(self, STATE_STOPPING);
    ca_msg("publishing offline and disconnecting");
    flush_queue(self, TRUE);
    offline = ca_mqtt_status_payload(FALSE, NULL, 0);
    n = strlen(offline);
    m = msg_new("status", g_bytes_new_take(g_steal_pointer(&offline), n), 1, TRUE,
                CA_MQTT_MSG_NORMAL);
    self->offline_mid = -1;
    if (hand_over(self, m))
        self->offline_mid = m->mid;
    if (cancellable)
        self->stop_cancel_id =
            g_cancellable_connect(cancellable, G_CALLBACK(stop_cancelled_cb), self, NULL);
    process_events(self);
    if (self->state == STATE_STOPPING && self->offline_mid < 0) {
        destroy_handle(self);
        finish_stop(self, FALSE);
    }
}

gboolean
ca_mqtt_stop_finish(CaMqtt *self, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}

void
ca_mqtt_set_config(CaMqtt *self, CaConfig *config)
{
    gboolean changed;
    gboolean was_connected;

    g_return_if_fail(CA_IS_MQTT(self));
    changed = !ca_config_group_equal(self->config, config, "mqtt") ||
              g_strcmp0(ca_config_get_string(self->config, "agent", "device-id"),
                        ca_config_get_string(config, "agent", "device-id")) != 0;
    if (!changed) {
        CaConfig *old = self->config;
        self->config = ca_config_ref(config);
        ca_config_unref(old);
        return;
    }
    apply_settings(self, config);
    enforce_limits(self);
    if (!self->started || self->stopped) {
        destroy_handle(self);
        return;
    }
    was_connected = self->state == STATE_CONNECTED;
    ca_msg("broker settings changed: reconnecting to %s:%d, base topic \"%s\"", self->host,
           self->port, self->base);
    /* Closing without DISCONNECT: the broker publishes the old Last Will (offline on the
     * old base); the new connection publishes online. */
    enter_state(self, STATE_WAIT_LINK);
    requeue_handed(self);
    enforce_limits(self);
    destroy_handle(self);
    ca_backoff_reset(&self->backoff);
    if (was_connected)
        g_signal_emit(self, signals[SIGNAL_DISCONNECTED], 0);
    begin_connect(self);
}

void
ca_mqtt_reconnect_now(CaMqtt *self)
{
    gboolean was_connected;

    g_return_if_fail(CA_IS_MQTT(self));
    if (!self->started || self->stopped)
        return;
    was_connected = self->state == STATE_CONNECTED;
    ca_msg("reconnecting now (requested)");
    enter_state(self, STATE_WAIT_LINK);
    if (self->source)
        ca_mqtt_source_set_watching(self->source, FALSE);
    ca_backoff_reset(&self->backoff);
    if (was_connected)
        g_signal_emit(self, signals[SIGNAL_DISCONNECTED], 0);
    /* connect_async closes the old socket; QoS 1 messages in flight are sent again. */
    begin_connect(self);
}

void
ca_mqtt_set_link_available(CaMqtt *self, gboolean available)
{
    g_return_if_fail(CA_IS_MQTT(self));
    available = !!available;
    if (self->link_available == available)
        return;
    self->link_available = available;
    ca_info("uplink %s", available ? "available" : "unavailable: no connection attempts");
    if (!available) {
        if (self->state == STATE_RESOLVING || self->state == STATE_RECONNECT_WAIT)
            enter_state(self, STATE_WAIT_LINK);
        return;
    }
    if (self->state == STATE_WAIT_LINK || self->state == STATE_RECONNECT_WAIT)
        begin_connect(self);
}

const char *
ca_mqtt_get_base(CaMqtt *self)
{
    g_return_val_if_fail(CA_IS_MQTT(self), NULL);
    return self->base;
}

gboolean
ca_mqtt_is_connected(CaMqtt *self)
{
    g_return_val_if_fail(CA_IS_MQTT(self), FALSE);
    return self->state == STATE_CONNECTED;
}

guint
ca_mqtt_get_queue_length(CaMqtt *self)
{
    g_return_val_if_fail(CA_IS_MQTT(self), 0);
    return self->queue.length;
}

guint64
ca_mqtt_get_dropped_total(CaMqtt *self)
{
    g_return_val_if_fail(CA_IS_MQTT(self), 0);
    return self->dropped_total;
}

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

    enqueue(self, msg_new(subtopic, g_bytes_new(payload, strlen(payload)), qos, retain, klass));
}

void
ca_mqtt_publish_to_topic(CaMqtt *self, const char *topic, const char *payload, int qos,
                         gboolean retain, CaMqttMsgClass klass)
{
    Msg *m;

    g_return_if_fail(CA_IS_MQTT(self));
    g_return_if_fail(topic && *topic && !strpbrk(topic, "+#"));
    g_return_if_fail(payload != NULL);

    m = msg_new(topic, g_bytes_new(payload, strlen(payload)), qos, retain, klass);
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
    m = msg_new(subtopic, g_bytes_new(payload, strlen(payload)), qos, retain, klass);
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
    text = event_text(type, fields);
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
        subscribe_missing(self);
        process_events(self);
    }
}

void
ca_mqtt_unsubscribe(CaMqtt *self, const char *subtopic_filter)
{
    g_return_if_fail(CA_IS_MQTT(self));
    g_return_if_fail(subtopic_filter != NULL);

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
        process_events(self);
    }
}

/*****************************************************************************/
/* GObject */

static void
ca_mqtt_init(CaMqtt *self)
{
    self->link_available = TRUE;
    self->started_at_us = g_get_real_time();
    self->offline_mid = -1;
    ca_backoff_init(&self->backoff, BACKOFF_INITIAL_MS, BACKOFF_MAX_MS, BACKOFF_JITTER_PCT, NULL);
    g_queue_init(&self->events);
    g_queue_init(&self->queue);
    g_queue_init(&self->handed);
    self->subs = g_ptr_array_new_with_free_func(g_free);
    self->subs_sent = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    self->sub_mids = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
}

static void
ca_mqtt_dispose(GObject *object)
{
    CaMqtt *self = CA_MQTT(object);

    self->stopped = TRUE;
    enter_state(self, STATE_STOPPED);
    ca_clear_source(&self->cancel_idle);
    ca_clear_source(&self->stop_idle);
    ca_clear_source(&self->misc_timer);
    ca_clear_source(&self->retry_timer);
    ca_clear_source(&self->connect_timer);
    if (self->resolve_cancellable) {
        g_cancellable_cancel(self->resolve_cancellable);
        g_clear_object(&self->resolve_cancellable);
    }
    destroy_handle(self);
    fail_all(&self->queue, CA_ERROR_NOT_READY, "MQTT client destroyed");
    self->queue_bytes = 0;
    self->queue_telemetry = 0;
    fail_all(&self->handed, CA_ERROR_NOT_READY, "MQTT client destroyed");
    G_OBJECT_CLASS(ca_mqtt_parent_class)->dispose(object);
}

static void
ca_mqtt_finalize(GObject *object)
{
    CaMqtt *self = CA_MQTT(object);

    g_queue_clear_full(&self->events, (GDestroyNotify) event_free);
    g_ptr_array_unref(self->subs);
    g_hash_table_unref(self->subs_sent);
    g_hash_table_unref(self->sub_mids);
    g_free(self->last_lib_error);
    g_free(self->base);
    g_free(self->host);
    if (self->config)
        ca_config_unref(self->config);
    G_OBJECT_CLASS(ca_mqtt_parent_class)->finalize(object);
}

static void
ca_mqtt_class_init(CaMqttClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);

    object_class->dispose = ca_mqtt_dispose;
    object_class->finalize = ca_mqtt_finalize;
    signals[SIGNAL_MESSAGE] =
        g_signal_new("message", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_BYTES);
    signals[SIGNAL_CONNECTED] =
        g_signal_new("connected", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 0);
    signals[SIGNAL_DISCONNECTED] =
        g_signal_new("disconnected", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 0);
}
