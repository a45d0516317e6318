/* mqtt-driver: drives one CaMqtt from line commands on stdin, for the MQTT integration
 * tests (cellagent_test.mqtt.Driver). Prints one line per event on stdout. Logs go to
 * stderr. Not installed.
 *
 * Commands:
 *   start | stop | reconnect | link 0|1 | reload PATH | stats | sub FILTER
 *   pub TAG SUBTOPIC QOS RETAIN CLASS PAYLOAD   publish_async; prints "done TAG ok" or
 *                                               "done TAG error CODE MESSAGE"
 *   fire SUBTOPIC QOS CLASS COUNT SIZE          COUNT fire-and-forget publishes of
 *                                               {"seq":N,"pad":"..."} (SIZE bytes of pad)
 *   event TYPE                                  ca_mqtt_publish_event(TYPE, NULL)
 * Output: ready, connected, disconnected, msg SUBTOPIC PAYLOAD, done ..., fired N,
 *   stats queue=N dropped=N connected=0|1, stopped acked=0|1 */
#define CA_LOG_MODULE "driver"
#include "autocleanups.h"
#include "config.h"
#include "error.h"
#include "log.h"
#include "mqtt.h"

#include <glib-unix.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    GMainLoop *loop;
    CaMqtt *mqtt;
    GIOChannel *in;
    guint watch;
} gl;

static void G_GNUC_PRINTF(1, 2) out(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void
publish_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autofree char *tag = user_data;
    g_autoptr(GError) error = NULL;

    if (ca_mqtt_publish_finish(gl.mqtt, result, &error))
        out("done %s ok", tag);
    else
        out("done %s error %s:%d %s", tag, g_quark_to_string(error->domain), error->code,
            error->message);
}

static void
stop_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;
    gboolean acked = ca_mqtt_stop_finish(CA_MQTT(source), result, &error);

    out("stopped acked=%d%s%s", acked, error ? " " : "", error ? error->message : "");
    g_main_loop_quit(gl.loop);
}

static void
message_cb(CaMqtt *mqtt, const char *subtopic, GBytes *payload, gpointer user_data)
{
    gsize len = 0;
    const char *data = g_bytes_get_data(payload, &len);

    out("msg %s %.*s", subtopic, (int) len, data ? data : "");
}

static void
connected_cb(CaMqtt *mqtt, gpointer user_data)
{
    out("connected");
}

static void
disconnected_cb(CaMqtt *mqtt, gpointer user_data)
{
    out("disconnected");
}

static CaMqttMsgClass
parse_class(const char *s)
{
    return g_str_equal(s, "telemetry") ? CA_MQTT_MSG_TELEMETRY : CA_MQTT_MSG_NORMAL;
}

static void
run_command(char *line)
{
    g_auto(GStrv) w = g_strsplit(g_strstrip(line), " ", 7);
    guint n = g_strv_length(w);

    if (n == 0 || !*w[0])
        return;
    if (g_str_equal(w[0], "start")) {
        ca_mqtt_start(gl.mqtt);
    } else if (g_str_equal(w[0], "stop")) {
        ca_mqtt_stop_async(gl.mqtt, NULL, stop_ready, NULL);
    } else if (g_str_equal(w[0], "reconnect")) {
        ca_mqtt_reconnect_now(gl.mqtt);
    } else if (g_str_equal(w[0], "link") && n == 2) {
        ca_mqtt_set_link_available(gl.mqtt, atoi(w[1]));
    } else if (g_str_equal(w[0], "reload") && n == 2) {
        g_autoptr(GError) error = NULL;
        g_autoptr(CaConfig) config = ca_config_load(w[1], &error);
        if (!config) {
            out("error %s", error->message);
            return;
        }
        ca_mqtt_set_config(gl.mqtt, config);
        out("reloaded");
    } else if (g_str_equal(w[0], "stats")) {
        out("stats queue=%u dropped=%" G_GUINT64_FORMAT " connected=%d",
            ca_mqtt_get_queue_length(gl.mqtt), ca_mqtt_get_dropped_total(gl.mqtt),
            ca_mqtt_is_connected(gl.mqtt));
    } else if (g_str_equal(w[0], "sub") && n == 2) {
        ca_mqtt_subscribe(gl.mqtt, w[1]);
    } else if (g_str_equal(w[0], "event") && n == 2) {
        ca_mqtt_publish_event(gl.mqtt, w[1], NULL);
    } else if (g_str_equal(w[0], "pub") && n == 7) {
        ca_mqtt_publish_async(gl.mqtt, w[2], w[6], atoi(w[3]), atoi(w[4]), parse_class(w[5]), NULL,
                              publish_ready, g_strdup(w[1]));
    } else if (g_str_equal(w[0], "fire") && n == 6) {
        int count = atoi(w[4]);
        gsize size = (gsize) atoi(w[5]);
        g_autofree char *pad = g_malloc(size + 1);

        memset(pad, 'x', size);
        pad[size] = '\0';
        for (int i = 0; i < count; i++) {
            g_autofree char *p = g_strdup_printf("{\"seq\":%d,\"pad\":\"%s\"}", i, pad);
            ca_mqtt_publish(gl.mqtt, w[1], p, atoi(w[2]), FALSE, parse_class(w[3]));
        }
        out("fired %d", count);
    } else {
        out("error unknown command \"%s\"", w[0]);
    }
}

static gboolean
stdin_cb(GIOChannel *ch, GIOCondition cond, gpointer user_data)
{
    g_autofree char *line = NULL;
    GIOStatus st = g_io_channel_read_line(ch, &line, NULL, NULL, NULL);

    if (st == G_IO_STATUS_NORMAL && line) {
        run_command(line);
        return G_SOURCE_CONTINUE;
    }
    if (st == G_IO_STATUS_AGAIN)
        return G_SOURCE_CONTINUE;
    g_main_loop_quit(gl.loop); /* EOF or error */
    gl.watch = 0;
    return G_SOURCE_REMOVE;
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) config = NULL;
    if (argc != 2) {
        fprintf(stderr, "usage: %s CONFIG\n", argv[0]);
        return 2;
    }
    ca_log_init(CA_LOG_DEBUG, FALSE);
    config = ca_config_load(argv[1], &error);
    if (!config) {
        fprintf(stderr, "%s\n", error->message);
        return 1;
    }
    gl.loop = g_main_loop_new(NULL, FALSE);
    gl.mqtt = ca_mqtt_new(config);
    g_signal_connect(gl.mqtt, "message", G_CALLBACK(message_cb), NULL);
    g_signal_connect(gl.mqtt, "connected", G_CALLBACK(connected_cb), NULL);
    g_signal_connect(gl.mqtt, "disconnected", G_CALLBACK(disconnected_cb), NULL);
    gl.in = g_io_channel_unix_new(0);
    gl.watch = g_io_add_watch(gl.in, G_IO_IN | G_IO_HUP | G_IO_ERR, stdin_cb, NULL);
    out("ready");
    g_main_loop_run(gl.loop);
    if (gl.watch)
        g_source_remove(gl.watch);
    g_io_channel_unref(gl.in);
    g_clear_object(&gl.mqtt);
    /* Let failed tasks report before exit (valgrind: nothing left behind). */
    while (g_main_context_iteration(NULL, FALSE))
        ;
    g_main_loop_unref(gl.loop);
    return 0;
}
