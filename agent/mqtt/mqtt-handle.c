/* mqtt-handle: CaMqtt's libmosquitto handle. Owns: creating it for the current settings
 * (protocol version, Last Will, TLS, MQTT 5 CONNECT properties), the credentials handed
 * to it before each attempt, the socket options of each connection, and the libmosquitto
 * callbacks, which only record events for ca_mqtt_process_events(). Does not own: when to
 * connect (mqtt.c), what is published (mqtt-queue.c). */
#define CA_LOG_MODULE "mqtt"
#include "mqtt-private.h"

#include "secret-file.h"

#include "autocleanups.h"
#include "error.h"
#include "log.h"
#include "mqtt-source.h"

#include "mqtt-inbound.h"

#include <errno.h>
#include <mqtt_protocol.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

/* MQTT 5 Maximum Packet Size we announce, and the largest packet read under any protocol
 * (mqtt-inbound.h). */
#define MAX_INCOMING (1024 * 1024)

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
    CaMqtt *self = obj;
    uint16_t alias_max = 0;

    push_event(self, EV_CONNECT, rc, flags);
    if (p && mosquitto_property_read_int16(p, MQTT_PROP_TOPIC_ALIAS_MAXIMUM, &alias_max, false))
        ((Event *) self->events.tail->data)->alias_max = alias_max;
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
    e->retain = msg->retain;
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

void
ca_mqtt_event_free(Event *e)
{
    g_free(e->topic);
    if (e->payload)
        g_bytes_unref(e->payload);
    g_free(e);
}

/*****************************************************************************/
/* The libmosquitto handle */

void
ca_mqtt_set_socket_options(CaMqtt *self)
{
    int fd = mosquitto_socket(self->mosq);
    int on = 1;
    /* TCP's own probes only where MQTT's keepalive did not send anything: a PINGREQ goes
     * out at most 1.25 x keepalive after the last packet (mqtt.c), so at 1.5 x the kernel
     * never sends a keepalive probe (and its ACK) next to every PINGREQ. */
    int idle = (int) (self->keepalive + self->keepalive / 2);
    int intvl = (int) MAX(self->keepalive / 4, 1);
    int cnt = 4;
    /* Unacknowledged data for two keepalive periods means the path is dead (without
     * this, retransmissions go on for ~15 min). */
    unsigned int user_timeout = self->keepalive * 2 * 1000;

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
    guint64 reads = self->source ? ca_mqtt_source_get_reads(self->source) : 0;

    g_object_ref(self);
    ca_mqtt_process_events(self);
    if (rc != MOSQ_ERR_SUCCESS)
        ca_mqtt_connection_lost(self, rc, err, NULL);
    else if (reads != self->reads && self->state == STATE_CONNECTED)
        g_signal_emit_by_name(self, "received");
    self->reads = reads;
    g_object_unref(self);
    return G_SOURCE_CONTINUE;
}

/* Read the first line of path; NULL with error when unreadable. The value is a secret. */
void
ca_mqtt_destroy_handle(CaMqtt *self)
{
    ca_clear_source(&self->source);
    /* Events of the old handle (mids) mean nothing to a new one. */
    g_queue_clear_full(&self->events, (GDestroyNotify) ca_mqtt_event_free);
    if (self->mosq)
        mosquitto_destroy(self->mosq);
    self->mosq = NULL;
    self->lib_connected = FALSE;
    g_hash_table_remove_all(self->subs_sent);
    g_hash_table_remove_all(self->sub_mids);
}

/* A handle for the current settings; FALSE (logged) when the settings cannot work. */
gboolean
ca_mqtt_create_handle(CaMqtt *self)
{
    const CaMqttSettings *s = &self->set;
    g_autofree char *will_topic = g_strconcat(self->base, "/status", NULL);
    g_autofree char *offline = ca_mqtt_status_payload(FALSE, NULL, 0);
    g_autoptr(CaMosquitto) mosq = NULL;
    int rc;

    if (!self->inbound_checked) {
        const char *detail = NULL;

        self->inbound_checked = TRUE;
        if (ca_mqtt_inbound_install(&detail))
            ca_debug("incoming packets bounded to %u bytes (%s)", MAX_INCOMING, detail);
        else
            ca_warn("cannot bound the size of incoming MQTT packets (%s): %s", detail,
                    self->set.v5 ? "MQTT 5's Maximum Packet Size still applies"
                                 : "under MQTT 3.1.1 a large message can exhaust memory");
    }
    self->handle_clean = self->clean_next;
    mosq = mosquitto_new(s->client_id, s->session_expiry == 0 || self->clean_next, self);
    if (!mosq) {
        ca_err("cannot create the MQTT client: %s", g_strerror(errno));
        return FALSE;
    }
    mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION,
                         self->set.v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
    rc = mosquitto_will_set(mosq, will_topic, (int) strlen(offline), offline, 1, true);
    if (rc != MOSQ_ERR_SUCCESS) {
        ca_err("cannot set the Last Will: %s", mosquitto_strerror(rc));
        return FALSE;
    }
    if (s->tls) {
        const char *ca = s->ca_file;
        const char *cert = s->cert_file;
        const char *key = s->key_file;

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
        rc = mosquitto_tls_opts_set(mosq, 1, s->tls_version, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
            ca_err("TLS options rejected: %s", mosquitto_strerror(rc));
            return FALSE;
        }
    }
    if (self->set.v5) {
        mosquitto_property *props = NULL;

        mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                     (uint32_t) s->session_expiry);
        mosquitto_property_add_int32(&props, MQTT_PROP_MAXIMUM_PACKET_SIZE, MAX_INCOMING);
        /* libmosquitto 2.0 has no asynchronous connect that takes CONNECT properties, but
         * mosquitto_connect_bind_v5 stores them before it validates its arguments: with an
         * invalid port it stores them and returns MOSQ_ERR_INVAL without connecting, and
         * connect_async then sends them. test_mqtt_session covers this. */
        rc = mosquitto_connect_bind_v5(mosq, self->set.host, -1, self->set.keepalive, NULL, props);
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
    self->source = ca_mqtt_source_new(self->mosq, MAX_INCOMING);
    g_source_set_callback(self->source, (GSourceFunc) source_cb, self, NULL);
    ca_mqtt_source_set_watching(self->source, FALSE);
    g_source_attach(self->source, NULL);
    return TRUE;
}

/* Hand the username and the password file's first line to the handle, as the settings
 * say; FALSE (logged) when the file cannot be read. The file is read at every attempt, so
 * a rotated password needs no reload. */
gboolean
ca_mqtt_set_credentials(CaMqtt *self)
{
    const char *pwfile = self->set.password_file;
    const char *user = self->set.username;
    g_autofree char *password = NULL;
    int rc;

    if (*pwfile) {
        g_autoptr(GError) error = NULL;

        password = ca_secret_file_read_line(pwfile, &error);
        if (!password) {
            ca_err("cannot read password-file \"%s\": %s", pwfile, error->message);
            return FALSE;
        }
    }
    rc = mosquitto_username_pw_set(self->mosq, *user ? user : NULL, *user ? password : NULL);
    if (password)
        memset(password, 0, strlen(password));
    if (rc != MOSQ_ERR_SUCCESS) {
        ca_err("cannot set the MQTT credentials: %s", mosquitto_strerror(rc));
        return FALSE;
    }
    return TRUE;
}

char *
ca_mqtt_inbound_failure(CaMqtt *self)
{
    const CaMqttFramer *framer = self->source ? ca_mqtt_source_get_framer(self->source) : NULL;

    if (!framer)
        return NULL;
    switch (framer->result) {
    case CA_MQTT_FRAME_OK:
        return NULL;
    case CA_MQTT_FRAME_TOO_LARGE:
        self->oversized++;
        self->oversized_largest = MAX(self->oversized_largest, framer->announced);
        /* A broker keeps such a packet in the device's session (mosquitto 2.0 even a QoS 0
         * one that was being sent) and sends it again at every reconnect: only a clean
         * session ends that. */
        self->clean_next = self->set.session_expiry > 0;
        return g_strdup_printf("the broker sent a packet of %" G_GUINT64_FORMAT
                               " bytes, more than the %u the agent reads: connection closed",
                               framer->announced, MAX_INCOMING);
    case CA_MQTT_FRAME_MALFORMED:
        return g_strdup("the broker sent a malformed packet length: connection closed");
    }
    return NULL;
}

void
ca_mqtt_report_oversize(CaMqtt *self, gboolean session_dropped)
{
    g_autoptr(cJSON) fields = NULL;
    char *text;

    if (self->oversized == 0)
        return;
    fields = cJSON_CreateObject();
    cJSON_AddNumberToObject(fields, "count", self->oversized);
    cJSON_AddNumberToObject(fields, "largest_bytes", (double) self->oversized_largest);
    cJSON_AddNumberToObject(fields, "limit_bytes", MAX_INCOMING);
    cJSON_AddBoolToObject(fields, "session_dropped", session_dropped);
    if (session_dropped)
        ca_warn("started a clean session to get rid of the too large message: what the broker "
                "had queued for this device is dropped with it");
    self->oversized = 0;
    self->oversized_largest = 0;
    /* Ahead of the backlog, like the drop report. */
    text = ca_mqtt_event_payload("mqtt-packet-too-large", fields);
    ca_mqtt_hand_over(self, ca_mqtt_msg_new("events", g_bytes_new(text, strlen(text)), 1, FALSE,
                                            CA_MQTT_MSG_NORMAL));
    cJSON_free(text);
}
