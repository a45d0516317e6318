/* mqtt-source: libmosquitto's external-loop contract as a GSource.
 * prepare: follow the socket (it changes or becomes -1 after any failed loop_read/write,
 * because the library closes it itself), request G_IO_OUT only while want_write, and
 * report ready when TLS holds decrypted bytes the kernel cannot signal.
 * dispatch: loop_read on IN/HUP/ERR, loop_write on OUT, result to the callback. */
#define CA_LOG_MODULE "mqtt"
#include "mqtt-source.h"

#include "log.h"
#include "mqtt-inbound.h"

#include <openssl/ssl.h>

typedef struct {
    GSource source;
    struct mosquitto *mosq; /* borrowed */
    gpointer tag;           /* unix fd tag, NULL when not watching a socket */
    int fd;                 /* the fd behind tag, -1 when none */
    GIOCondition events;    /* what tag asks for */
    gboolean watching;
    CaMqttFramer framer; /* the packets read from fd (restarts with each socket) */
    guint32 max_packet;
    guint64 reads; /* successful reads of incoming data */
} MqttSource;

#define BASE_EVENTS (G_IO_IN | G_IO_HUP | G_IO_ERR | G_IO_NVAL)

static void
drop_tag(MqttSource *s)
{
    if (s->tag)
        g_source_remove_unix_fd(&s->source, s->tag);
    s->tag = NULL;
    s->fd = -1;
    s->events = 0;
}

/* TLS can hold a whole decrypted record while the socket shows nothing more to read. */
static gboolean
tls_pending(MqttSource *s)
{
    SSL *ssl = mosquitto_ssl_get(s->mosq);
    return ssl && SSL_pending(ssl) > 0;
}

static gboolean
mqtt_source_prepare(GSource *source, gint *timeout)
{
    MqttSource *s = (MqttSource *) source;
    int fd = s->watching ? mosquitto_socket(s->mosq) : -1;
    GIOCondition want;

    *timeout = -1;
    if (fd != s->fd) {
        drop_tag(s);
        if (fd >= 0) {
            ca_mqtt_framer_init(&s->framer, s->max_packet);
            s->tag = g_source_add_unix_fd(source, fd, BASE_EVENTS);
            s->fd = fd;
            s->events = BASE_EVENTS;
        }
    }
    if (!s->tag)
        return FALSE;
    want = BASE_EVENTS | (mosquitto_want_write(s->mosq) ? G_IO_OUT : 0);
    if (want != s->events) {
        g_source_modify_unix_fd(source, s->tag, want);
        s->events = want;
    }
    return tls_pending(s);
}

static gboolean
mqtt_source_check(GSource *source)
{
    MqttSource *s = (MqttSource *) source;

    if (!s->tag)
        return FALSE;
    return g_source_query_unix_fd(source, s->tag) != 0 || tls_pending(s);
}

/* loop_read with what libmosquitto reads from fd going through the framer. */
static int
bounded_loop_read(MqttSource *s, int fd)
{
    int rc;

    ca_mqtt_inbound_watch(&s->framer, fd, mosquitto_ssl_get(s->mosq));
    rc = mosquitto_loop_read(s->mosq, 1);
    ca_mqtt_inbound_unwatch();
    return rc;
}

static gboolean
mqtt_source_dispatch(GSource *source, GSourceFunc callback, gpointer user_data)
{
    MqttSource *s = (MqttSource *) source;
    GIOCondition revents = s->tag ? g_source_query_unix_fd(source, s->tag) : 0;
    int fd = s->fd;
    int rc = MOSQ_ERR_SUCCESS;

    if (revents & G_IO_NVAL) {
        /* Our fd was closed under us: never poll it again. */
        drop_tag(s);
        s->watching = FALSE;
        rc = MOSQ_ERR_CONN_LOST;
    } else {
        if ((revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) || tls_pending(s)) {
            rc = bounded_loop_read(s, fd);
            if (rc == MOSQ_ERR_SUCCESS && !(revents & (G_IO_HUP | G_IO_ERR)))
                s->reads++;
        }
        if (rc == MOSQ_ERR_SUCCESS && (revents & G_IO_OUT) && mosquitto_socket(s->mosq) == fd &&
            mosquitto_want_write(s->mosq))
            rc = mosquitto_loop_write(s->mosq, 1);
        /* After HUP/ERR, drain what is left (the broker's DISCONNECT, then EOF). */
        for (int i = 0; i < 64 && rc == MOSQ_ERR_SUCCESS && (revents & (G_IO_HUP | G_IO_ERR)) &&
                        mosquitto_socket(s->mosq) == fd;
             i++)
            rc = bounded_loop_read(s, fd);
        if (rc == MOSQ_ERR_SUCCESS && (revents & (G_IO_HUP | G_IO_ERR)) &&
            mosquitto_socket(s->mosq) == fd) {
            /* The library read nothing wrong (e.g. TLS handshake state swallows the
             * error) but the socket is dead: stop polling it, or poll() returns at once
             * forever (a naive watch was seen spinning at 97 % CPU). */
            drop_tag(s);
            s->watching = FALSE;
            rc = MOSQ_ERR_CONN_LOST;
        }
    }
    if (!callback)
        return G_SOURCE_CONTINUE;
    return ((CaMqttSourceFunc) callback)(rc, user_data);
}

static void
mqtt_source_finalize(GSource *source)
{
    MqttSource *s = (MqttSource *) source;

    s->tag = NULL; /* removed with the source */
}

static GSourceFuncs mqtt_source_funcs = {
    .prepare = mqtt_source_prepare,
    .check = mqtt_source_check,
    .dispatch = mqtt_source_dispatch,
    .finalize = mqtt_source_finalize,
};

GSource *
ca_mqtt_source_new(struct mosquitto *mosq, guint32 max_packet)
{
    GSource *source = g_source_new(&mqtt_source_funcs, sizeof(MqttSource));
    MqttSource *s = (MqttSource *) source;

    s->mosq = mosq;
    s->max_packet = max_packet;
    ca_mqtt_framer_init(&s->framer, max_packet);
    s->fd = -1;
    s->watching = TRUE;
    g_source_set_name(source, "mqtt");
    return source;
}

void
ca_mqtt_source_set_watching(GSource *source, gboolean watching)
{
    MqttSource *s = (MqttSource *) source;

    s->watching = watching;
    if (!watching)
        drop_tag(s);
    /* prepare picks the socket up on the next iteration. */
    if (watching && g_source_get_context(source))
        g_main_context_wakeup(g_source_get_context(source));
}

guint64
ca_mqtt_source_get_reads(GSource *source)
{
    return ((MqttSource *) source)->reads;
}

int
ca_mqtt_source_get_fd(GSource *source)
{
    return ((MqttSource *) source)->fd;
}

const CaMqttFramer *
ca_mqtt_source_get_framer(GSource *source)
{
    return &((MqttSource *) source)->framer;
}
