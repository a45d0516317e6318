/* agent-clock: the clock SMS command codes are checked against (clock-source.h decides).
 * Wires timedated (agent/system/timedate.c: NTPSynchronized, SetTime) and the modem's
 * network time (agent/mm/modem-time.c) into the policy: read when the modem registers and
 * again before a command SMS is checked while NTP has not synchronised; asks timedated to
 * set the clock when the policy says so; publishes the "clock" event when the clock in use
 * changes; gives remote.c "now" for TOTP. Nothing here waits on the main loop. */
#define CA_LOG_MODULE "clock"
#include "agent-private.h"

#include "timedate.h"

/* Before a command SMS is checked, a network time older than this is read again (s). */
#define CLOCK_MAX_AGE_S 30

typedef struct {
    CaAgentClockFunc func;
    gpointer data;
    GDestroyNotify destroy;
} ClockWaiter;

static void
clock_waiter_free(gpointer p)
{
    ClockWaiter *w = p;

    if (w->destroy)
        w->destroy(w->data);
    g_free(w);
}

static void clock_round_start(CaAgent *self);

static void
clock_publish(CaAgent *self, const CaClockDecision *d, const char *error)
{
    g_autoptr(cJSON) fields = cJSON_CreateObject();
    const char *source = ca_clock_source_to_string(d->source);

    cJSON_AddStringToObject(fields, "source", source);
    cJSON_AddNumberToObject(fields, "offset_s", (double) d->offset_s);
    cJSON_AddBoolToObject(fields, "set", d->set);
    if (self->clock.ntp_known)
        cJSON_AddBoolToObject(fields, "ntp_synchronized", self->clock.ntp_synced);
    else
        cJSON_AddNullToObject(fields, "ntp_synchronized");
    if (error)
        cJSON_AddStringToObject(fields, "error", error);
    ca_agent_publish_event(self, "clock", fields);
    self->clock_published = *d;
    self->clock_published_valid = TRUE;
}

/* The event goes out when the clock in use or whether we set it changes, not for every
 * second of drift. */
static void
clock_maybe_publish(CaAgent *self, const CaClockDecision *d)
{
    if (self->clock_published_valid && self->clock_published.source == d->source &&
        self->clock_published.set == d->set)
        return;
    if (d->source == CA_CLOCK_SOURCE_NETWORK && !d->set)
        ca_warn("system clock off by %" G_GINT64_FORMAT " s from the network's time and NTP has "
                "not synchronised: SMS command codes are checked against network time",
                d->offset_s);
    else
        ca_msg("clock for SMS command codes: %s (network time offset %" G_GINT64_FORMAT " s%s)",
               ca_clock_source_to_string(d->source), d->offset_s,
               d->set ? ", system clock set from it" : "");
    clock_publish(self, d, NULL);
}

static void
set_time_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autoptr(GError) error = NULL;
    gboolean ok = ca_timedate_set_time_finish(result, &error);
    CaClockDecision d;

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return; /* self is going away */
    ca_clock_set_finished(&self->clock, ok);
    ca_clock_decide(&self->clock, g_get_real_time(), g_get_monotonic_time(), &d);
    if (ok) {
        ca_msg("system clock set from the network's time through timedated");
        clock_maybe_publish(self, &d);
        return;
    }
    ca_warn("timedated did not set the system clock: %s; SMS command codes are checked "
            "against network time (offset %" G_GINT64_FORMAT " s)",
            error->message, d.offset_s);
    clock_publish(self, &d, error->message);
}

/* The round's inputs are in: decide, release the waiters, maybe ask timedated. */
static void
clock_round_done(CaAgent *self)
{
    g_autoptr(GPtrArray) waiters = g_steal_pointer(&self->clock_waiters);
    CaClockDecision d;

    self->clock_refreshing = FALSE;
    ca_clock_decide(&self->clock, g_get_real_time(), g_get_monotonic_time(), &d);
    if (d.want_set) {
        g_autoptr(GDateTime) to = g_date_time_new_from_unix_utc(d.set_to_us / G_USEC_PER_SEC);
        g_autofree char *text = to ? g_date_time_format_iso8601(to) : NULL;

        ca_msg("system clock off by %" G_GINT64_FORMAT " s from the network's time and NTP has "
               "not synchronised: asking timedated to set it to %s",
               d.offset_s, text ? text : "?");
        ca_clock_set_started(&self->clock, g_get_monotonic_time());
        ca_timedate_set_time_async(d.set_to_us, self->cancellable, set_time_ready, self);
    }
    clock_maybe_publish(self, &d);
    /* The clock decision does not wait for timedated: network time is used meanwhile. */
    for (guint i = 0; waiters && i < waiters->len; i++) {
        ClockWaiter *w = g_ptr_array_index(waiters, i);

        w->func(self, w->data);
    }
}

static void
network_time_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autoptr(GError) error = NULL;
    gint64 unix_us = 0, mono_us = 0;

    if (!ca_modem_get_network_time_finish(CA_MODEM(source), result, &unix_us, &mono_us, &error)) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            return;
        ca_debug("no network time: %s", error->message);
    } else if (!ca_clock_set_network(&self->clock, unix_us, mono_us)) {
        ca_debug("network time %" G_GINT64_FORMAT " ignored: the modem's clock is not set",
                 unix_us / G_USEC_PER_SEC);
    }
    clock_round_done(self);
}

static void
ntp_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autoptr(GError) error = NULL;
    gboolean synced = FALSE;
    gboolean known = ca_timedate_get_ntp_finish(result, &synced, &error);

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    if (!known && (!self->clock_published_valid || self->clock.ntp_known))
        ca_msg("NTP synchronisation unknown (timedated: %s): treated as not synchronised",
               error->message);
    ca_clock_set_ntp(&self->clock, known, synced);
    if (!self->modem || !ca_clock_wants_network(&self->clock, g_get_monotonic_time(), 0)) {
        clock_round_done(self);
        return;
    }
    ca_modem_get_network_time_async(self->modem, self->cancellable, network_time_ready, self);
}

static void
clock_round_start(CaAgent *self)
{
    if (self->clock_refreshing)
        return;
    self->clock_refreshing = TRUE;
    ca_timedate_get_ntp_async(self->cancellable, ntp_ready, self);
}

void
ca_agent_clock_wait(CaAgent *self, CaAgentClockFunc func, gpointer data, GDestroyNotify destroy)
{
    ClockWaiter *w;

    if (!self->clock_refreshing &&
        !ca_clock_wants_network(&self->clock, g_get_monotonic_time(), CLOCK_MAX_AGE_S)) {
        func(self, data);
        if (destroy)
            destroy(data);
        return;
    }
    w = g_new0(ClockWaiter, 1);
    w->func = func;
    w->data = data;
    w->destroy = destroy;
    if (!self->clock_waiters)
        self->clock_waiters = g_ptr_array_new_with_free_func(clock_waiter_free);
    g_ptr_array_add(self->clock_waiters, w);
    clock_round_start(self);
}

gint64
ca_agent_clock_now(CaAgent *self, const char **out_source)
{
    CaClockDecision d;

    ca_clock_decide(&self->clock, g_get_real_time(), g_get_monotonic_time(), &d);
    *out_source = ca_clock_source_to_string(d.source);
    return d.now_us;
}

/* The first reading once the modem is registered (the network's time is known then). */
static void
clock_facts_cb(CaModem *modem, gpointer user_data)
{
    CaAgent *self = user_data;
    const CaModemFacts *f = ca_modem_peek_facts(modem);

    if (self->clock_read || !f->present ||
        (f->registration != MM_MODEM_3GPP_REGISTRATION_STATE_HOME &&
         f->registration != MM_MODEM_3GPP_REGISTRATION_STATE_ROAMING))
        return;
    self->clock_read = TRUE;
    clock_round_start(self);
}

static void
clock_object_cb(CaModem *modem, gpointer user_data)
{
    CaAgent *self = user_data;

    self->clock_read = FALSE; /* another modem: read its time once registered */
}

void
ca_agent_wire_clock(CaAgent *self)
{
    ca_clock_init(&self->clock, self->set.network_time);
    g_signal_connect(self->modem, "facts-changed", G_CALLBACK(clock_facts_cb), self);
    g_signal_connect(self->modem, "object-changed", G_CALLBACK(clock_object_cb), self);
}

void
ca_agent_reload_clock(CaAgent *self)
{
    ca_clock_set_mode(&self->clock, self->set.network_time);
}

/* Waiters are dropped without a call: the SMS they hold stays on the modem for the next
 * start. Calls in flight end with self->cancellable (cancelled first by the caller). */
void
ca_agent_unwire_clock(CaAgent *self)
{
    if (self->modem) {
        g_signal_handlers_disconnect_by_func(self->modem, clock_facts_cb, self);
        g_signal_handlers_disconnect_by_func(self->modem, clock_object_cb, self);
    }
    g_clear_pointer(&self->clock_waiters, g_ptr_array_unref);
    self->clock_refreshing = FALSE;
}
