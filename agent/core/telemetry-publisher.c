/* telemetry-publisher: the timer side of the telemetry policy (see telemetry-publisher.h). */
#define CA_LOG_MODULE "telemetry"
#include "telemetry-publisher.h"

#include "autocleanups.h"
#include "log.h"
#include "economy.h"
#include "telemetry-settings.h"
#include "telemetry.h"

struct _CaTelemetryPublisher {
    CaTelemetrySettings set;
    gboolean economy;              /* economy mode: economy_set applies */
    CaTelemetryPolicy economy_set; /* as given: the economy figures */
    CaTelemetryPolicy policy;      /* in force: set.policy, or the economy mix */
    CaTelemetryPublishFunc publish;
    CaTelemetryEventFunc event;
    gpointer user_data;
    CaModemFacts current;   /* the latest facts */
    CaModemFacts published; /* the facts of the last publication */
    gboolean have_current;
    gboolean have_published;
    gint64 last_publish_us; /* monotonic */
    GSource *timer;         /* owned: the next due publication */
    guint64 count;
};

static void reschedule(CaTelemetryPublisher *self);

static void
update_policy(CaTelemetryPublisher *self)
{
    if (self->economy) {
        CaEconomyPolicy e = {.telemetry = self->economy_set};

        ca_economy_telemetry_policy(&self->set.policy, &e, &self->policy);
    } else {
        self->policy = self->set.policy;
    }
}

CaTelemetryPublisher *
ca_telemetry_publisher_new(CaConfig *config, CaTelemetryPublishFunc publish,
                           CaTelemetryEventFunc event, gpointer user_data)
{
    CaTelemetryPublisher *self = g_new0(CaTelemetryPublisher, 1);

    ca_telemetry_settings_load(&self->set, config);
    update_policy(self);
    self->publish = publish;
    self->event = event;
    self->user_data = user_data;
    ca_modem_facts_init(&self->current);
    ca_modem_facts_init(&self->published);
    return self;
}

void
ca_telemetry_publisher_free(CaTelemetryPublisher *self)
{
    if (!self)
        return;
    ca_clear_source(&self->timer);
    ca_modem_facts_clear(&self->current);
    ca_modem_facts_clear(&self->published);
    ca_telemetry_settings_clear(&self->set);
    g_free(self);
}

void
ca_telemetry_publisher_set_config(CaTelemetryPublisher *self, CaConfig *config)
{
    CaTelemetrySettings set;

    ca_telemetry_settings_load(&set, config);
    if (ca_telemetry_settings_equal(&self->set, &set))
        return;
    self->set = set;
    update_policy(self);
    reschedule(self);
}

void
ca_telemetry_publisher_set_economy(CaTelemetryPublisher *self, const CaTelemetryPolicy *economy)
{
    CaTelemetryPolicy before = self->policy;

    self->economy = economy != NULL;
    if (economy)
        self->economy_set = *economy;
    update_policy(self);
    if (before.interval_s != self->policy.interval_s ||
        before.min_spacing_s != self->policy.min_spacing_s ||
        before.quality_deadband != self->policy.quality_deadband ||
        before.signal_deadband != self->policy.signal_deadband)
        reschedule(self);
}

cJSON *
ca_telemetry_publisher_publish_now(CaTelemetryPublisher *self)
{
    cJSON *telemetry = ca_telemetry_build(&self->current, g_get_real_time());

    ca_clear_source(&self->timer);
    ca_modem_facts_copy(&self->published, &self->current);
    self->have_published = TRUE;
    self->last_publish_us = g_get_monotonic_time();
    self->count++;
    self->publish(telemetry, self->user_data);
    reschedule(self);
    return telemetry;
}

static gboolean
timer_cb(gpointer user_data)
{
    CaTelemetryPublisher *self = user_data;

    ca_clear_source(&self->timer);
    reschedule(self);
    return G_SOURCE_REMOVE;
}

/* Publish when due, else arm the timer for the next due time. */
static void
reschedule(CaTelemetryPublisher *self)
{
    gint64 now = g_get_monotonic_time();
    gint64 next;

    if (!self->have_current)
        return;
    next = ca_telemetry_next_publish(&self->policy, &self->published, self->last_publish_us,
                                     self->have_published, &self->current, now);
    ca_clear_source(&self->timer);
    if (next <= now) {
        cJSON_Delete(ca_telemetry_publisher_publish_now(self));
        return;
    }
    if (next == G_MAXINT64)
        return;
    self->timer = g_timeout_source_new((guint) MIN((next - now + 999) / 1000, G_MAXUINT));
    g_source_set_callback(self->timer, timer_cb, self, NULL);
    g_source_attach(self->timer, NULL);
}

void
ca_telemetry_publisher_update(CaTelemetryPublisher *self, const CaModemFacts *facts)
{
    g_autoptr(GPtrArray) events = ca_telemetry_events(&self->current, facts);

    ca_modem_facts_copy(&self->current, facts);
    self->have_current = TRUE;
    for (guint i = 0; i < events->len; i++) {
        const cJSON *e = g_ptr_array_index(events, i);

        ca_debug("event %s", cJSON_GetStringValue(cJSON_GetObjectItem(e, "type")));
        self->event(cJSON_GetStringValue(cJSON_GetObjectItem(e, "type")), e, self->user_data);
    }
    reschedule(self);
}

guint64
ca_telemetry_publisher_get_count(CaTelemetryPublisher *self)
{
    return self->count;
}
