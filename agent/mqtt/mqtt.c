/* mqtt: CaMqtt, the broker connection: its lifecycle and connect/reconnect state machine.
 * Owns: the states and their timers (connect deadline, backoff, keepalive), name resolution,
 * reacting to what the libmosquitto callbacks recorded (CONNACK, PUBACK, disconnects; SUBACKs
 * and messages through mqtt-receive.c), the clean stop, reloads. Does not own: the
 * libmosquitto handle, TLS and credentials (mqtt-handle.c), the outbound queue and
 * subscriptions (mqtt-queue.c), which messages are handed on (mqtt-receive.c), topic and
 * payload formats (mqtt-format.c), message contents (callers), commands (commands.c),
 * when the uplink is up (the caller says, ca_mqtt_set_link_available). libmosquitto
 * callbacks only record events; they are processed after the library call returns
 * (ca_mqtt_process_events), so nothing re-enters the library. */
#define CA_LOG_MODULE "mqtt"
#include "mqtt-private.h"

#include "address-race.h"
#include "autocleanups.h"
#include "error.h"
#include "log.h"
#include "mqtt-source.h"
#include "version.h"

#include <errno.h>
#include <mqtt_protocol.h>
#include <string.h>

#define BACKOFF_INITIAL_MS 1000
#define BACKOFF_MAX_MS     (5 * 60 * 1000)
#define BACKOFF_JITTER_PCT 25
#define STABLE_MS          30000 /* a connection up this long resets the backoff */
#define CONNECT_TIMEOUT_MS 30000 /* TCP + TLS + CONNACK */
#define SLOW_CONNECT_MS    200   /* warn when connect_async (blocking getaddrinfo) took longer */
/* When the broker closes a stable connection the first retry is drawn from 1..30 s: a broker
 * restart drops a whole fleet at once, and the fleet comes back spread over this window (about
 * 5 % of it in the busiest second) instead of within 0.75-1.25 s (docs/mqtt.md). 20 s gave
 * about 7 %, too close to the 10 % target for a 500-device fleet. A path that went quiet
 * (keepalive timeout) is one device's trouble and retries after 1 s. */
#define RECONNECT_SPREAD_MS 30000

G_DEFINE_FINAL_TYPE(CaMqtt, ca_mqtt, G_TYPE_OBJECT)

enum { SIGNAL_MESSAGE, SIGNAL_CONNECTED, SIGNAL_DISCONNECTED, SIGNAL_RECEIVED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void begin_connect(CaMqtt *self);
static void finish_stop(CaMqtt *self, gboolean acked);

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
 * keepalive/4, at most every POLL_MAX_S: the PINGREQ then leaves by keepalive + 10 s (at
 * most 1.25 x keepalive), inside the 1.5 x the broker allows and, for a long (economy)
 * keepalive, close to it: the longest idle gap a carrier's NAT sees (docs/economy.md). Firing early is harmless, late never happens. The PINGREQ is seen through
 * libmosquitto's debug log line; should its text ever change, the timer just keeps polling.
 * Idle, that is 2 wakeups per keepalive + 1 s (the timer and the PINGRESP), not 1 per second
 * as HACKING.md C17 has it (the idle target is under 0.2 wakeups/s, docs/benchmarks.md). A dead path is also caught
 * by TCP_USER_TIMEOUT. */
#define POLL_MAX_S 10

static guint
misc_delay_ms(CaMqtt *self, gboolean from_ref)
{
    gint64 now = g_get_monotonic_time();
    gint64 due = self->keepalive_ref_us + ((gint64) self->keepalive + 1) * G_USEC_PER_SEC;

    if (from_ref)
        return (guint) CLAMP((due - now) / 1000, 0, G_MAXUINT32 / 2);
    return (guint) CLAMP(self->keepalive * 1000 / 4, 1000, POLL_MAX_S * 1000);
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
    ca_mqtt_process_events(self);
    if (rc != MOSQ_ERR_SUCCESS)
        ca_mqtt_connection_lost(self, rc, err, NULL);
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
    ca_mqtt_connection_lost(self, MOSQ_ERR_TIMEOUT, 0, "no answer from the broker within 30 s");
    return G_SOURCE_REMOVE;
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

/* spread: the broker closed a stable connection (RECONNECT_SPREAD_MS). */
static void
schedule_retry(CaMqtt *self, gboolean spread)
{
    guint delay = spread ? ca_backoff_spread(&self->backoff, RECONNECT_SPREAD_MS)
                         : ca_backoff_next(&self->backoff);

    ca_msg("reconnecting to %s:%d in %.1f s", self->set.host, self->set.port, delay / 1000.0);
    enter_state(self, STATE_RECONNECT_WAIT);
    self->retry_timer = timer_new(delay, retry_timer_cb, self);
}

static void
schedule_reconnect(CaMqtt *self)
{
    schedule_retry(self, FALSE);
}

/* Connect libmosquitto to addr, one address of the broker host. libmosquitto resolves the
 * host it is given again and connects to the first address only (non-blocking), so: without
 * TLS it is given addr itself; with TLS it must be given the configured name (the
 * certificate is checked against it, and it is the SNI), and binding the socket to the
 * wildcard address of addr's family makes it skip the other family's addresses (a socket of
 * the other family cannot bind there). The bind address is always given, since libmosquitto
 * keeps it across connects. */
static void
do_connect(CaMqtt *self, GInetAddress *addr)
{
    g_autofree char *literal = g_inet_address_to_string(addr);
    const char *bind = g_inet_address_get_family(addr) == G_SOCKET_FAMILY_IPV6 ? "::" : "0.0.0.0";
    const char *host = self->set.tls ? self->set.host : literal;
    gint64 t0;
    gint64 took_ms;
    int rc;
    int err;

    /* A handle starts a clean session or resumes one for its whole life: after a too large
     * packet the next connection needs the other kind (mqtt-handle.c). And messages sent by
     * topic alias that are unacknowledged would be sent again by an alias the new connection
     * lacks (mqtt-economy.c): hand them over again, topic included, from a new handle. */
    if (self->mosq && (self->clean_next != self->handle_clean || ca_mqtt_alias_in_flight(self))) {
        ca_mqtt_requeue_handed(self);
        ca_mqtt_destroy_handle(self);
    }
    if ((!self->mosq && !ca_mqtt_create_handle(self)) || !ca_mqtt_set_credentials(self)) {
        schedule_reconnect(self);
        return;
    }
    ca_info("connecting to %s:%d (address %s, MQTT %s%s)", self->set.host, self->set.port, literal,
            self->set.v5 ? "5" : "3.1.1", self->set.tls ? ", TLS" : "");
    g_clear_pointer(&self->last_lib_error, g_free);
    /* Fail QoS 0 messages libmosquitto still holds: a new connect discards them. */
    for (GList *l = self->handed.head, *next; l; l = next) {
        Msg *m = l->data;
        next = l->next;
        if (m->qos == 0) {
            g_queue_delete_link(&self->handed, l);
            ca_mqtt_msg_complete(
                m, g_error_new_literal(CA_ERROR, CA_ERROR_MQTT,
                                       "connection lost before the message was sent"));
        }
    }
    enter_state(self, STATE_CONNECTING);
    t0 = g_get_monotonic_time();
    self->keepalive_ref_us = t0;
    /* Non-blocking TCP connect; CONNECT is queued and goes out once the socket is
     * writable. getaddrinfo inside is blocking (docs/mqtt.md: bounded by resolving
     * asynchronously first; without TLS it is given an address, which needs no lookup). */
    self->keepalive = MAX((guint) self->set.keepalive, self->economy_keepalive);
    rc =
        mosquitto_connect_bind_async(self->mosq, host, self->set.port, (int) self->keepalive, bind);
    err = errno;
    took_ms = (g_get_monotonic_time() - t0) / 1000;
    if (took_ms >= SLOW_CONNECT_MS)
        ca_warn("starting the connection to %s blocked the main loop for %" G_GINT64_FORMAT
                " ms (name resolution)",
                self->set.host, took_ms);
    self->lib_connected = TRUE;
    if (rc != MOSQ_ERR_SUCCESS) {
        /* e.g. refused at once on loopback, or the name did not resolve */
        ca_mqtt_connection_lost(self, rc, err, NULL);
        return;
    }
    ca_mqtt_set_socket_options(self);
    ca_mqtt_source_set_watching(self->source, TRUE);
    ca_mqtt_process_events(self);
}

static void
race_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaMqtt *self = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GInetAddress) winner = ca_address_race_finish(result, &error);

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    g_clear_object(&self->resolve_cancellable);
    if (!winner) {
        ca_warn("cannot reach broker host \"%s\" port %d at any of its addresses: %s",
                self->set.host, self->set.port, error->message);
        schedule_reconnect(self);
        return;
    }
    do_connect(self, winner);
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
        ca_warn("cannot resolve broker host \"%s\": %s", self->set.host, error->message);
        schedule_reconnect(self);
        return;
    }
    if (!addrs->next) {
        do_connect(self, addrs->data);
        return;
    }
    /* Several addresses: libmosquitto would try only the first (a broker on 127.0.0.1 only
     * is never reached when localhost resolves to ::1 first; an address that drops SYNs
     * holds every connect for CONNECT_TIMEOUT_MS). Race them first. */
    ca_info("broker host \"%s\" has %u addresses; trying them in turn (RFC 8305)", self->set.host,
            g_list_length(addrs));
    self->resolve_cancellable = g_cancellable_new();
    ca_address_race_async(addrs, (guint16) self->set.port, CONNECT_TIMEOUT_MS,
                          self->resolve_cancellable, race_ready, self);
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
    literal = g_inet_address_new_from_string(self->set.host);
    if (literal) {
        do_connect(self, literal);
        return;
    }
    enter_state(self, STATE_RESOLVING);
    self->resolve_cancellable = g_cancellable_new();
    g_resolver_lookup_by_name_async(g_resolver_get_default(), self->set.host,
                                    self->resolve_cancellable, resolve_ready, self);
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
    ca_mqtt_fail_all(self, "MQTT client stopped");
    ca_msg("disconnected from the broker (stopped%s)", acked ? ", offline acknowledged" : "");
    if (task) {
        g_task_return_boolean(task, acked);
        g_object_unref(task);
    }
}

/* The connection ended or could not be made: record, then back off (or finish a stop). */
void
ca_mqtt_connection_lost(CaMqtt *self, int rc, int err, const char *why)
{
    gboolean was_connected = self->state == STATE_CONNECTED;
    gboolean spread = FALSE;
    g_autofree char *reason = NULL;
    g_autofree char *inbound = NULL;

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
    inbound = ca_mqtt_inbound_failure(self);
    if (self->source)
        ca_mqtt_source_set_watching(self->source, FALSE);
    if (why)
        reason = g_strdup(why);
    else if (inbound)
        reason = g_steal_pointer(&inbound);
    else if (rc == MOSQ_ERR_ERRNO)
        reason = g_strdup(g_strerror(err));
    else if (rc >= 128) /* MQTT 5 DISCONNECT from the broker carries a reason code */
        reason = g_strdup_printf("the broker disconnected us: %s (reason code %d)",
                                 mosquitto_reason_string(rc), rc);
    else if (rc == MOSQ_ERR_EAI)
        reason = g_strdup_printf("cannot resolve \"%s\"", self->set.host);
    else
        reason = g_strdup(mosquitto_strerror(rc));
    if (self->last_lib_error && (rc == MOSQ_ERR_TLS || !was_connected)) {
        char *full = g_strdup_printf("%s (%s)", reason, self->last_lib_error);
        g_free(reason);
        reason = full;
    }
    if (was_connected) {
        gint64 up_ms = (g_get_monotonic_time() - self->connected_at) / 1000;

        ca_msg("disconnected from %s:%d after %" G_GINT64_FORMAT " s: %s", self->set.host,
               self->set.port, up_ms / 1000, reason);
        if (up_ms >= STABLE_MS) {
            spread = ca_mqtt_loss_is_peer_close(rc, err);
            if (!spread)
                ca_backoff_reset(&self->backoff);
        }
    } else {
        ca_warn("connection to %s:%d failed: %s", self->set.host, self->set.port, reason);
    }
    /* Arm the retry first: a "disconnected" handler may change it (reconnect_now, stop). */
    schedule_retry(self, spread);
    if (was_connected)
        g_signal_emit(self, signals[SIGNAL_DISCONNECTED], 0);
}

/*****************************************************************************/
/* What the libmosquitto callbacks recorded */

static void
handle_connack(CaMqtt *self, int rc, int flags, int alias_max)
{
    g_autofree char *online = NULL;
    gboolean session_present = (flags & 1) != 0;
    gsize n;

    if (rc != 0) {
        g_autofree char *why = g_strdup_printf(
            "broker refused the connection: %s (%d)",
            self->set.v5 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc), rc);
        ca_mqtt_connection_lost(self, MOSQ_ERR_CONN_REFUSED, 0, why);
        return;
    }
    if (self->state != STATE_CONNECTING)
        return;
    self->connected_at = g_get_monotonic_time();
    self->retained_refused = 0;
    enter_state(self, STATE_CONNECTED);
    ca_mqtt_alias_reset(self, self->set.v5 ? (guint) MAX(alias_max, 0) : 0);
    ca_msg("connected to %s:%d as \"%s\" (MQTT %s%s, session %s)", self->set.host, self->set.port,
           self->set.client_id, self->set.v5 ? "5" : "3.1.1", self->set.tls ? ", TLS" : "",
           session_present ? "resumed" : "new");
    if (!session_present)
        g_hash_table_remove_all(self->subs_sent);
    ca_mqtt_subscribe_missing(self);
    /* Status first, then the drop report, then the backlog. */
    online = ca_mqtt_status_payload(TRUE, CA_VERSION, self->started_at_us);
    n = strlen(online);
    ca_mqtt_hand_over(self, ca_mqtt_msg_new("status", g_bytes_new_take(g_steal_pointer(&online), n),
                                            1, TRUE, CA_MQTT_MSG_NORMAL));
    ca_mqtt_report_drops(self);
    ca_mqtt_report_oversize(self, self->clean_next);
    self->clean_next = FALSE; /* the next connection resumes the session as usual */
    ca_mqtt_flush_queue(self, FALSE);
    g_signal_emit(self, signals[SIGNAL_CONNECTED], 0);
}

static void
handle_puback(CaMqtt *self, int mid, int reason)
{
    gboolean offline = self->state == STATE_STOPPING && mid == self->offline_mid;
    Msg *m = ca_mqtt_find_handed(self, mid);

    if (!m) {
        ca_debug("acknowledgement for unknown message id %d, ignoring", mid);
    } else if (ca_mqtt_reason_is_refusal(reason)) {
        g_autofree char *topic = ca_mqtt_msg_topic(self, m);
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
        ca_mqtt_msg_complete(
            m, g_error_new(CA_ERROR, CA_ERROR_MQTT,
                           "broker refused the message on \"%s\": %s (reason code %d)", topic, what,
                           reason));
    } else {
        ca_mqtt_msg_complete(m, NULL);
    }
    if (offline && self->state == STATE_STOPPING) {
        int rc;

        self->offline_mid = -1;
        self->stop_acked = TRUE;
        rc = self->set.v5 ? mosquitto_disconnect_v5(self->mosq, MQTT_RC_NORMAL_DISCONNECTION, NULL)
                          : mosquitto_disconnect(self->mosq);
        if (rc != MOSQ_ERR_SUCCESS)
            finish_stop(self, TRUE);
        return;
    }
    ca_mqtt_flush_queue(self, self->state == STATE_STOPPING);
}

/* Act on what the libmosquitto callbacks recorded; called after every library call. */
void
ca_mqtt_process_events(CaMqtt *self)
{
    const char *subtopic;
    Event *e;

    if (self->processing)
        return; /* the outer call picks up what a nested one added */
    self->processing = TRUE;
    g_object_ref(self);
    while ((e = g_queue_pop_head(&self->events))) {
        switch (e->type) {
        case EV_CONNECT:
            handle_connack(self, e->rc, e->arg, e->alias_max);
            break;
        case EV_DISCONNECT:
            ca_mqtt_connection_lost(self, e->rc == MOSQ_ERR_SUCCESS ? MOSQ_ERR_CONN_LOST : e->rc,
                                    e->arg,
                                    e->rc == MOSQ_ERR_SUCCESS ? "closed by the broker" : NULL);
            break;
        case EV_PUBLISH:
            handle_puback(self, e->arg, e->rc);
            break;
        case EV_SUBSCRIBE:
            ca_mqtt_subscribed(self, e->arg, e->granted);
            break;
        case EV_MESSAGE:
            subtopic = ca_mqtt_accept_message(self, e->topic, e->payload, e->retain);
            if (subtopic)
                g_signal_emit(self, signals[SIGNAL_MESSAGE], 0, subtopic, e->payload);
            break;
        }
        ca_mqtt_event_free(e);
    }
    self->processing = FALSE;
    g_object_unref(self);
}

/*****************************************************************************/
/* Public API */

/* Take new (its contents move to self; new is left zeroed). */
static void
apply_settings(CaMqtt *self, CaMqttSettings *new)
{
    ca_mqtt_settings_clear(&self->set);
    self->set = *new;
    memset(new, 0, sizeof *new);
    g_free(self->base);
    self->base = ca_mqtt_build_topic(self->set.topic_prefix, self->set.device_id, NULL);
}

CaMqtt *
ca_mqtt_new(CaConfig *config)
{
    CaMqtt *self = g_object_new(CA_TYPE_MQTT, NULL);
    CaMqttSettings set;

    ca_mqtt_settings_load(&set, config);
    apply_settings(self, &set);
    return self;
}

void
ca_mqtt_start(CaMqtt *self)
{
    g_return_if_fail(CA_IS_MQTT(self));

    if (self->started)
        return;
    self->started = TRUE;
    ca_msg("broker %s:%d, base topic \"%s\"", self->set.host, self->set.port, self->base);
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
    ca_mqtt_destroy_handle(self);
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
        ca_mqtt_destroy_handle(self);
        ca_mqtt_fail_all(self, "MQTT client stopped");
        g_task_return_boolean(task, FALSE);
        return;
    }
    self->stop_task = g_steal_pointer(&task);
    self->stop_acked = FALSE;
    enter_state(self, STATE_STOPPING);
    ca_msg("publishing offline and disconnecting");
    ca_mqtt_flush_queue(self, TRUE);
    offline = ca_mqtt_status_payload(FALSE, NULL, 0);
    n = strlen(offline);
    m = ca_mqtt_msg_new("status", g_bytes_new_take(g_steal_pointer(&offline), n), 1, TRUE,
                        CA_MQTT_MSG_NORMAL);
    self->offline_mid = -1;
    if (ca_mqtt_hand_over(self, m))
        self->offline_mid = m->mid;
    if (cancellable)
        self->stop_cancel_id =
            g_cancellable_connect(cancellable, G_CALLBACK(stop_cancelled_cb), self, NULL);
    ca_mqtt_process_events(self);
    if (self->state == STATE_STOPPING && self->offline_mid < 0) {
        ca_mqtt_destroy_handle(self);
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
    CaMqttSettings set;
    CaMqttSettingsChange changed;
    gboolean was_connected;

    g_return_if_fail(CA_IS_MQTT(self));
    ca_mqtt_settings_load(&set, config);
    changed = ca_mqtt_settings_diff(&self->set, &set);
    if (changed == 0) {
        ca_mqtt_settings_clear(&set);
        return;
    }
    apply_settings(self, &set);
    ca_mqtt_enforce_limits(self);
    if (!(changed & CA_MQTT_SETTINGS_CONNECTION)) {
        ca_info("outbound queue limits now %u messages, %zu bytes", self->set.queue_limit,
                self->set.queue_limit_bytes);
        return;
    }
    if (!self->started || self->stopped) {
        ca_mqtt_destroy_handle(self);
        return;
    }
    was_connected = self->state == STATE_CONNECTED;
    ca_msg("broker settings changed: reconnecting to %s:%d, base topic \"%s\"", self->set.host,
           self->set.port, self->base);
    /* Closing without DISCONNECT: the broker publishes the old Last Will (offline on the
     * old base); the new connection publishes online. */
    enter_state(self, STATE_WAIT_LINK);
    ca_mqtt_requeue_handed(self);
    ca_mqtt_enforce_limits(self);
    ca_mqtt_destroy_handle(self);
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
    self->state_subs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    self->aliases = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
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
    ca_mqtt_destroy_handle(self);
    ca_mqtt_fail_all(self, "MQTT client destroyed");
    G_OBJECT_CLASS(ca_mqtt_parent_class)->dispose(object);
}

static void
ca_mqtt_finalize(GObject *object)
{
    CaMqtt *self = CA_MQTT(object);

    g_queue_clear_full(&self->events, (GDestroyNotify) ca_mqtt_event_free);
    g_ptr_array_unref(self->subs);
    g_hash_table_unref(self->subs_sent);
    g_hash_table_unref(self->state_subs);
    g_hash_table_unref(self->aliases);
    g_hash_table_unref(self->sub_mids);
    g_free(self->last_lib_error);
    g_free(self->base);
    ca_mqtt_settings_clear(&self->set);
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
    signals[SIGNAL_RECEIVED] = g_signal_new("received", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
                                            0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}
