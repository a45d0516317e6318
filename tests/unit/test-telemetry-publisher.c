/* Unit tests for telemetry-publisher.c on a real main loop: events at once, important
 * changes at once, changes inside the deadband never, a signal change after min-spacing,
 * cmd/telemetry (publish_now) at once, and a reload that changes the policy. */
#include "telemetry-publisher.h"

#include "autocleanups.h"

#include <string.h>

typedef struct {
    GPtrArray *published; /* char* JSON */
    GPtrArray *events;    /* char* type */
} Sink;

static void
publish_cb(const cJSON *telemetry, gpointer user_data)
{
    Sink *sink = user_data;

    g_ptr_array_add(sink->published, cJSON_PrintUnformatted(telemetry));
}

static void
event_cb(const char *type, const cJSON *event, gpointer user_data)
{
    Sink *sink = user_data;

    g_assert_cmpstr(cJSON_GetObjectItem(event, "type")->valuestring, ==, type);
    g_ptr_array_add(sink->events, g_strdup(type));
}

static CaConfig *
config(const char *telemetry_group)
{
    g_autofree char *text = g_strdup_printf("[telemetry]\n%s\n", telemetry_group);
    g_autoptr(GError) error = NULL;
    CaConfig *c = ca_config_load_from_data("test", text, strlen(text), &error);

    g_assert_no_error(error);
    return c;
}

static void
registered(CaModemFacts *f)
{
    ca_modem_facts_init(f);
    f->present = TRUE;
    f->path = g_strdup("/org/freedesktop/ModemManager1/Modem/0");
    f->state = MM_MODEM_STATE_REGISTERED;
    f->unlock_required = MM_MODEM_LOCK_NONE;
    f->registration = MM_MODEM_3GPP_REGISTRATION_STATE_HOME;
    f->access_tech = MM_MODEM_ACCESS_TECHNOLOGY_LTE;
    f->signal_quality = 70;
    f->signal_quality_valid = TRUE;
    f->rsrp = -95;
}

static gboolean
expired_cb(gpointer user_data)
{
    *(gboolean *) user_data = TRUE;
    return G_SOURCE_REMOVE;
}

/* Run the main loop until the sink has n publications or timeout_ms passed. */
static gboolean
wait_published(Sink *sink, guint n, guint timeout_ms)
{
    gboolean expired = FALSE;
    GSource *deadline = g_timeout_source_new(timeout_ms);

    g_source_set_callback(deadline, expired_cb, &expired, NULL);
    g_source_attach(deadline, NULL);
    while (sink->published->len < n && !expired)
        g_main_context_iteration(NULL, TRUE);
    g_source_destroy(deadline);
    g_source_unref(deadline);
    return sink->published->len >= n;
}

static void
test_publisher(void)
{
    Sink sink = {g_ptr_array_new_with_free_func(cJSON_free),
                 g_ptr_array_new_with_free_func(g_free)};
    g_autoptr(CaConfig) c = config("interval=0\nmin-spacing=1\n");
    g_autoptr(CaConfig) c2 = config("interval=0\nmin-spacing=1\nquality-deadband=1\n");
    g_autoptr(CaTelemetryPublisher) pub =
        ca_telemetry_publisher_new(c, publish_cb, event_cb, &sink);
    CaModemFacts f;
    cJSON *now;

    /* Nothing before the first update. */
    g_assert_false(wait_published(&sink, 1, 50));
    /* The first facts (no modem): published at once, no events. */
    ca_modem_facts_init(&f);
    ca_telemetry_publisher_update(pub, &f);
    g_assert_cmpuint(sink.published->len, ==, 1);
    g_assert_nonnull(strstr(sink.published->pdata[0], "\"absent\""));
    g_assert_cmpuint(sink.events->len, ==, 0);
    /* A modem appears: an event and telemetry at once. */
    registered(&f);
    ca_telemetry_publisher_update(pub, &f);
    g_assert_cmpuint(sink.published->len, ==, 2);
    g_assert_cmpuint(sink.events->len, ==, 1);
    g_assert_cmpstr(sink.events->pdata[0], ==, "modem-added");
    /* Inside the deadband: nothing, not even later. */
    f.signal_quality = 72;
    ca_telemetry_publisher_update(pub, &f);
    g_assert_false(wait_published(&sink, 3, 1300));
    /* Beyond it: after the rest of min-spacing (already over here: at once). */
    f.signal_quality = 40;
    ca_telemetry_publisher_update(pub, &f);
    g_assert_cmpuint(sink.published->len, ==, 3);
    /* Again right away: held back by min-spacing, then published. */
    f.signal_quality = 70;
    ca_telemetry_publisher_update(pub, &f);
    g_assert_cmpuint(sink.published->len, ==, 3);
    g_assert_true(wait_published(&sink, 4, 3000));
    g_assert_nonnull(strstr(sink.published->pdata[3], "\"signal_quality\":70"));
    /* Registration lost: event and telemetry at once, spacing or not. */
    f.registration = MM_MODEM_3GPP_REGISTRATION_STATE_SEARCHING;
    ca_telemetry_publisher_update(pub, &f);
    g_assert_cmpuint(sink.published->len, ==, 5);
    g_assert_cmpstr(sink.events->pdata[sink.events->len - 1], ==, "registration-changed");
    /* cmd/telemetry. */
    now = ca_telemetry_publisher_publish_now(pub);
    g_assert_cmpuint(sink.published->len, ==, 6);
    g_assert_cmpstr(
        cJSON_GetObjectItem(cJSON_GetObjectItem(now, "network"), "registration")->valuestring, ==,
        "searching");
    cJSON_Delete(now);
    g_assert_cmpuint(ca_telemetry_publisher_get_count(pub), ==, 6);
    /* A reload with a 1-point deadband: a 2-point change now counts. */
    ca_telemetry_publisher_set_config(pub, c2);
    f.signal_quality = 72;
    ca_telemetry_publisher_update(pub, &f);
    g_assert_true(wait_published(&sink, 7, 3000));
    ca_modem_facts_clear(&f);
    g_ptr_array_unref(sink.published);
    g_ptr_array_unref(sink.events);
}

static void
test_periodic(void)
{
    Sink sink = {g_ptr_array_new_with_free_func(cJSON_free),
                 g_ptr_array_new_with_free_func(g_free)};
    g_autoptr(CaConfig) c = config("interval=1\n");
    g_autoptr(CaTelemetryPublisher) pub =
        ca_telemetry_publisher_new(c, publish_cb, event_cb, &sink);
    CaModemFacts f;

    registered(&f);
    ca_telemetry_publisher_update(pub, &f);
    g_assert_cmpuint(sink.published->len, ==, 1);
    g_assert_true(wait_published(&sink, 3, 5000));
    ca_modem_facts_clear(&f);
    g_ptr_array_unref(sink.published);
    g_ptr_array_unref(sink.events);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/telemetry-publisher/policy", test_publisher);
    g_test_add_func("/telemetry-publisher/periodic", test_periodic);
    return g_test_run();
}
