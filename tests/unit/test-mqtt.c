/* Unit tests for mqtt's pure helpers (topics, timestamps, status payloads, reason codes)
 * and the outbound queue of a CaMqtt that is not connected (limits, drop order,
 * completion errors, cancellation). No broker: the integration tests cover that. */
#define CA_LOG_MODULE "test"
#include "autocleanups.h"
#include "config.h"
#include "error.h"
#include "log.h"
#include "mqtt.h"
#include "timestamp.h"

#include <errno.h>
#include <mosquitto.h>
#include <string.h>

static void
test_build_topic(void)
{
    static const struct {
        const char *prefix, *device, *sub, *expect;
    } cases[] = {
        {"cellagent", "dev1", "status", "cellagent/dev1/status"},
        {"cellagent", "dev1", "cmd/ping/result", "cellagent/dev1/cmd/ping/result"},
        {"fleet/eu", "d-1.x", "telemetry", "fleet/eu/d-1.x/telemetry"},
        {"cellagent", "dev1", NULL, "cellagent/dev1"},
        {"cellagent", "dev1", "", "cellagent/dev1"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *t = ca_mqtt_build_topic(cases[i].prefix, cases[i].device, cases[i].sub);
        g_assert_cmpstr(t, ==, cases[i].expect);
    }
}

static void
test_subtopic(void)
{
    static const struct {
        const char *base, *topic, *expect;
    } cases[] = {
        {"cellagent/dev1", "cellagent/dev1/cmd/ping", "cmd/ping"},
        {"cellagent/dev1", "cellagent/dev1/sms/out", "sms/out"},
        {"cellagent/dev1", "cellagent/dev10/sms/out", NULL},
        {"cellagent/dev1", "cellagent/dev1", NULL},
        {"cellagent/dev1", "cellagent/dev1/", NULL},
        {"cellagent/dev1", "other/dev1/x", NULL},
        {"cellagent/dev1", "cellagent", NULL},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        g_assert_cmpstr(ca_mqtt_subtopic(cases[i].base, cases[i].topic), ==, cases[i].expect);
}

static void
test_timestamp(void)
{
    g_autofree char *epoch = ca_timestamp_format(0);
    g_autofree char *t = ca_timestamp_format(G_GINT64_CONSTANT(1700000000123456));
    g_autofree char *now = ca_timestamp_format(g_get_real_time());
    g_autoptr(GDateTime) parsed = NULL;

    g_assert_cmpstr(epoch, ==, "1970-01-01T00:00:00Z");
    g_assert_cmpstr(t, ==, "2023-11-14T22:13:20Z");
    parsed = g_date_time_new_from_iso8601(now, NULL);
    g_assert_nonnull(parsed);
    g_assert_true(g_str_has_suffix(now, "Z"));
}

static void
test_status_payload(void)
{
    g_autofree char *off = ca_mqtt_status_payload(FALSE, NULL, 0);
    g_autofree char *on =
        ca_mqtt_status_payload(TRUE, "1.2.3", G_GINT64_CONSTANT(1700000000000000));
    g_autoptr(cJSON) j = cJSON_Parse(on);

    g_assert_cmpstr(off, ==, "{\"state\":\"offline\"}");
    g_assert_nonnull(j);
    g_assert_cmpstr(cJSON_GetObjectItem(j, "state")->valuestring, ==, "online");
    g_assert_cmpstr(cJSON_GetObjectItem(j, "version")->valuestring, ==, "1.2.3");
    g_assert_cmpstr(cJSON_GetObjectItem(j, "started_at")->valuestring, ==, "2023-11-14T22:13:20Z");
}

static void
test_reason_refusal(void)
{
    static const struct {
        int code;
        gboolean refusal;
    } cases[] = {{0, FALSE}, {16, FALSE}, {127, FALSE}, {128, TRUE}, {135, TRUE}, {151, TRUE}};

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        g_assert_cmpint(ca_mqtt_reason_is_refusal(cases[i].code), ==, cases[i].refusal);
}

/* A broker restart (EOF, reset, DISCONNECT) spreads the fleet's first retry; a path that
 * went quiet retries at once. */
static void
test_loss_is_peer_close(void)
{
    static const struct {
        int rc, err;
        gboolean peer;
    } cases[] = {
        {MOSQ_ERR_CONN_LOST, 0, TRUE},        {MOSQ_ERR_ERRNO, ECONNRESET, TRUE},
        {MOSQ_ERR_ERRNO, EPIPE, TRUE},        {139, 0, TRUE}, /* 0x8B server shutting down */
        {MOSQ_ERR_KEEPALIVE, 0, FALSE},       {MOSQ_ERR_ERRNO, ETIMEDOUT, FALSE},
        {MOSQ_ERR_ERRNO, ENETUNREACH, FALSE}, {MOSQ_ERR_ERRNO, EHOSTUNREACH, FALSE},
        {MOSQ_ERR_TIMEOUT, 0, FALSE},         {MOSQ_ERR_NO_CONN, 0, FALSE},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++)
        g_assert_cmpint(ca_mqtt_loss_is_peer_close(cases[i].rc, cases[i].err), ==, cases[i].peer);
}

/*****************************************************************************/
/* Queue of a client that is not connected */

static CaConfig *
config_with(const char *extra)
{
    g_autofree char *text =
        g_strdup_printf("[agent]\ndevice-id=dev1\n[mqtt]\nhost=127.0.0.1\n%s", extra ? extra : "");
    g_autoptr(GError) error = NULL;
    CaConfig *c = ca_config_load_from_data("test", text, strlen(text), &error);

    g_assert_no_error(error);
    return c;
}

typedef struct {
    int done;
    int ok;
    int limit;
    int cancelled;
    int not_ready;
} Counts;

static void
publish_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Counts *c = user_data;
    g_autoptr(GError) error = NULL;

    c->done++;
    if (ca_mqtt_publish_finish(NULL, result, &error))
        c->ok++;
    else if (g_error_matches(error, CA_ERROR, CA_ERROR_LIMIT))
        c->limit++;
    else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        c->cancelled++;
    else if (g_error_matches(error, CA_ERROR, CA_ERROR_NOT_READY))
        c->not_ready++;
}

static void
test_queue_drops_telemetry_first(void)
{
    g_autoptr(CaConfig) config = config_with("queue-limit=10\n");
    g_autoptr(CaMqtt) mqtt = ca_mqtt_new(config);
    Counts c = {0};

    g_assert_cmpstr(ca_mqtt_get_base(mqtt), ==, "cellagent/dev1");
    g_assert_false(ca_mqtt_is_connected(mqtt));
    /* 5 normal messages with completion, then 20 telemetry. */
    for (int i = 0; i < 5; i++)
        ca_mqtt_publish_async(mqtt, "events", "{}", 1, FALSE, CA_MQTT_MSG_NORMAL, NULL,
                              publish_ready, &c);
    for (int i = 0; i < 20; i++)
        ca_mqtt_publish(mqtt, "telemetry", "{}", 1, TRUE, CA_MQTT_MSG_TELEMETRY);
    g_assert_cmpuint(ca_mqtt_get_queue_length(mqtt), ==, 10);
    g_assert_cmpuint(ca_mqtt_get_dropped_total(mqtt), ==, 15);
    while (g_main_context_iteration(NULL, FALSE))
        ;
    g_assert_cmpint(c.done, ==, 0); /* no normal message was dropped */
    /* 10 more normal messages: the 5 remaining telemetry go, then the oldest normal. */
    for (int i = 0; i < 10; i++)
        ca_mqtt_publish_async(mqtt, "events", "{}", 1, FALSE, CA_MQTT_MSG_NORMAL, NULL,
                              publish_ready, &c);
    while (g_main_context_iteration(NULL, FALSE))
        ;
    g_assert_cmpuint(ca_mqtt_get_queue_length(mqtt), ==, 10);
    g_assert_cmpuint(ca_mqtt_get_dropped_total(mqtt), ==, 25);
    g_assert_cmpint(c.limit, ==, 5);
    g_clear_object(&mqtt);
    while (g_main_context_iteration(NULL, FALSE))
        ;
    /* Destroying the client fails what was still queued. */
    g_assert_cmpint(c.not_ready, ==, 10);
    g_assert_cmpint(c.done, ==, 15);
}

static void
test_queue_bytes_limit(void)
{
    g_autoptr(CaConfig) config = config_with("queue-limit=100000\nqueue-limit-bytes=65536\n");
    g_autoptr(CaMqtt) mqtt = ca_mqtt_new(config);
    g_autofree char *big = g_malloc(1025);

    memset(big, 'x', 1024);
    big[1024] = '\0';
    for (int i = 0; i < 1000; i++)
        ca_mqtt_publish(mqtt, "telemetry", big, 0, FALSE, CA_MQTT_MSG_TELEMETRY);
    g_assert_cmpuint(ca_mqtt_get_queue_length(mqtt), ==, 64);
    g_assert_cmpuint(ca_mqtt_get_dropped_total(mqtt), ==, 1000 - 64);
}

static void
test_too_large(void)
{
    g_autoptr(CaConfig) config = config_with(NULL);
    g_autoptr(CaMqtt) mqtt = ca_mqtt_new(config);
    gsize n = CA_MQTT_MAX_PAYLOAD + 1;
    g_autofree char *huge = g_malloc(n + 1);
    Counts c = {0};

    memset(huge, 'x', n);
    huge[n] = '\0';
    ca_mqtt_publish_async(mqtt, "events", huge, 1, FALSE, CA_MQTT_MSG_NORMAL, NULL, publish_ready,
                          &c);
    while (c.done == 0)
        g_main_context_iteration(NULL, TRUE);
    g_assert_cmpint(c.limit, ==, 1);
    g_assert_cmpuint(ca_mqtt_get_queue_length(mqtt), ==, 0);
}

static void
test_cancel_queued(void)
{
    g_autoptr(CaConfig) config = config_with(NULL);
    g_autoptr(CaMqtt) mqtt = ca_mqtt_new(config);
    g_autoptr(GCancellable) cancellable = g_cancellable_new();
    Counts c = {0};

    ca_mqtt_publish_async(mqtt, "sms/in", "{}", 1, FALSE, CA_MQTT_MSG_NORMAL, cancellable,
                          publish_ready, &c);
    ca_mqtt_publish_async(mqtt, "sms/in", "{}", 1, FALSE, CA_MQTT_MSG_NORMAL, NULL, publish_ready,
                          &c);
    g_assert_cmpuint(ca_mqtt_get_queue_length(mqtt), ==, 2);
    g_cancellable_cancel(cancellable);
    while (c.done == 0)
        g_main_context_iteration(NULL, TRUE);
    g_assert_cmpint(c.cancelled, ==, 1);
    g_assert_cmpuint(ca_mqtt_get_queue_length(mqtt), ==, 1);
    /* Complete the other one before c goes out of scope. */
    g_clear_object(&mqtt);
    while (c.done < 2)
        g_main_context_iteration(NULL, TRUE);
    g_assert_cmpint(c.not_ready, ==, 1);
}

static void
stop_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    int *state = user_data;
    g_autoptr(GError) error = NULL;

    /* Not connected: completes without an acknowledged offline. */
    g_assert_false(ca_mqtt_stop_finish(CA_MQTT(source), result, &error));
    g_assert_no_error(error);
    *state = 1;
}

static void
test_stop_unconnected(void)
{
    g_autoptr(CaConfig) config = config_with(NULL);
    g_autoptr(CaMqtt) mqtt = ca_mqtt_new(config);
    Counts c = {0};
    int stopped = 0;

    ca_mqtt_publish_async(mqtt, "events", "{}", 1, FALSE, CA_MQTT_MSG_NORMAL, NULL, publish_ready,
                          &c);
    ca_mqtt_stop_async(mqtt, NULL, stop_ready, &stopped);
    while (!stopped || c.done == 0)
        g_main_context_iteration(NULL, TRUE);
    g_assert_cmpint(c.not_ready, ==, 1);
    /* After a stop, publishing fails at once. */
    ca_mqtt_publish_async(mqtt, "events", "{}", 1, FALSE, CA_MQTT_MSG_NORMAL, NULL, publish_ready,
                          &c);
    while (c.done < 2)
        g_main_context_iteration(NULL, TRUE);
    g_assert_cmpint(c.not_ready, ==, 2);
}

static void
test_set_config_base(void)
{
    g_autoptr(CaConfig) a = config_with(NULL);
    g_autoptr(CaConfig) b = NULL;
    g_autoptr(CaMqtt) mqtt = ca_mqtt_new(a);
    const char *text = "[agent]\ndevice-id=dev2\n[mqtt]\nhost=127.0.0.1\ntopic-prefix=fleet\n";
    g_autoptr(GError) error = NULL;

    b = ca_config_load_from_data("b", text, strlen(text), &error);
    g_assert_no_error(error);
    ca_mqtt_set_config(mqtt, b);
    g_assert_cmpstr(ca_mqtt_get_base(mqtt), ==, "fleet/dev2");
}

/* A reload that lowers only the queue limits trims the queue in place (oldest telemetry
 * first) and keeps the rest of the settings. */
static void
test_set_config_queue_limit(void)
{
    g_autoptr(CaConfig) a = config_with("queue-limit=10\n");
    g_autoptr(CaConfig) b = config_with("queue-limit=4\n");
    g_autoptr(CaMqtt) mqtt = ca_mqtt_new(a);

    for (int i = 0; i < 8; i++)
        ca_mqtt_publish(mqtt, "telemetry", "{}", 1, TRUE, CA_MQTT_MSG_TELEMETRY);
    g_assert_cmpuint(ca_mqtt_get_queue_length(mqtt), ==, 8);
    ca_mqtt_set_config(mqtt, b);
    g_assert_cmpuint(ca_mqtt_get_queue_length(mqtt), ==, 4);
    g_assert_cmpuint(ca_mqtt_get_dropped_total(mqtt), ==, 4);
    g_assert_cmpstr(ca_mqtt_get_base(mqtt), ==, "cellagent/dev1");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ca_log_init(CA_LOG_ERROR, FALSE);
    g_test_add_func("/mqtt/topic/build", test_build_topic);
    g_test_add_func("/mqtt/topic/subtopic", test_subtopic);
    g_test_add_func("/mqtt/timestamp", test_timestamp);
    g_test_add_func("/mqtt/status-payload", test_status_payload);
    g_test_add_func("/mqtt/reason-refusal", test_reason_refusal);
    g_test_add_func("/mqtt/loss-is-peer-close", test_loss_is_peer_close);
    g_test_add_func("/mqtt/queue/drops-telemetry-first", test_queue_drops_telemetry_first);
    g_test_add_func("/mqtt/queue/bytes-limit", test_queue_bytes_limit);
    g_test_add_func("/mqtt/queue/too-large", test_too_large);
    g_test_add_func("/mqtt/queue/cancel-queued", test_cancel_queued);
    g_test_add_func("/mqtt/stop/unconnected", test_stop_unconnected);
    g_test_add_func("/mqtt/config/base", test_set_config_base);
    g_test_add_func("/mqtt/config/queue-limit", test_set_config_queue_limit);
    return g_test_run();
}
