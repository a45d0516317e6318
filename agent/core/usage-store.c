/* usage-store: per-SIM, per-cycle usage counts (usage-store.h): booking readings, cycle
 * changes, thresholds, commands and the payload. The file is usage-file.c's. */
#define CA_LOG_MODULE "usage"
#include "usage-store.h"

#include "autocleanups.h"
#include "log.h"
#include "timestamp.h"
#include "usage-store-private.h"

#include <string.h>

const char *
ca_usage_state_to_string(CaUsageState state)
{
    switch (state) {
    case CA_USAGE_OK:
        return "ok";
    case CA_USAGE_WARNING:
        return "warning";
    case CA_USAGE_LIMIT:
        return "limit";
    }
    g_assert_not_reached();
}

static void
cycle_clear(CaUsageCycle *c)
{
    g_free(c->plan);
    memset(c, 0, sizeof *c);
}

static void
sim_free(gpointer data)
{
    CaUsageSim *sim = data;

    g_free(sim->iccid);
    cycle_clear(&sim->cur);
    cycle_clear(&sim->prev);
    g_free(sim);
}

CaUsageStore *
ca_usage_store_new(guint max_sims)
{
    CaUsageStore *self = g_new0(CaUsageStore, 1);

    self->sims = g_ptr_array_new_with_free_func(sim_free);
    self->max_sims = MAX(max_sims, 1);
    return self;
}

void
ca_usage_store_free(CaUsageStore *self)
{
    if (!self)
        return;
    g_ptr_array_unref(self->sims);
    ca_if_sample_clear(&self->last);
    g_free(self->current);
    g_free(self);
}

CaUsageSim *
ca_usage_store_find_sim(const CaUsageStore *self, const char *iccid)
{
    for (guint i = 0; iccid && i < self->sims->len; i++) {
        CaUsageSim *sim = g_ptr_array_index(self->sims, i);

        if (g_str_equal(sim->iccid, iccid))
            return sim;
    }
    return NULL;
}

/* Drop the SIMs seen longest ago (never the current one) until at most max are left. */
void
ca_usage_store_trim(CaUsageStore *self, guint max)
{
    while (self->sims->len > max) {
        guint oldest = G_MAXUINT;

        for (guint i = 0; i < self->sims->len; i++) {
            CaUsageSim *sim = g_ptr_array_index(self->sims, i);

            if (g_strcmp0(sim->iccid, self->current) == 0)
                continue;
            if (oldest == G_MAXUINT ||
                sim->last_seen < ((CaUsageSim *) g_ptr_array_index(self->sims, oldest))->last_seen)
                oldest = i;
        }
        if (oldest == G_MAXUINT)
            return;
        g_ptr_array_remove_index(self->sims, oldest);
        self->dirty = TRUE;
    }
}

void
ca_usage_store_set_max_sims(CaUsageStore *self, guint max_sims)
{
    self->max_sims = MAX(max_sims, 1);
    ca_usage_store_trim(self, self->max_sims);
}

gboolean
ca_usage_store_is_dirty(const CaUsageStore *self)
{
    return self->dirty;
}

void
ca_usage_store_mark_saved(CaUsageStore *self)
{
    self->dirty = FALSE;
}

const CaIfSample *
ca_usage_store_peek_last_sample(const CaUsageStore *self)
{
    return &self->last;
}

const CaUsageSim *
ca_usage_store_get(const CaUsageStore *self, const char *iccid)
{
    return ca_usage_store_find_sim(self, iccid);
}

guint
ca_usage_store_count(const CaUsageStore *self)
{
    return self->sims->len;
}

char *
ca_usage_iccid_tail(const char *iccid)
{
    gsize n = iccid ? strlen(iccid) : 0;

    return n == 0 ? NULL : ca_log_personal_tail(iccid);
}

/*****************************************************************************/
/* Billing */

static const CaBillingModel no_model = {0, 0};

static const CaBillingModel *
model_of(const CaUsagePlan *plan)
{
    return plan ? &plan->model : &no_model;
}

/* The cycle's volume before the adjustment. */
static guint64
cycle_base(const CaUsageCycle *c)
{
    CaBillingModel m = {0, c->session_round};

    return c->closed_billable + ca_billing_round_session(&m, c->session_billable);
}

guint64
ca_usage_cycle_billable(const CaUsageCycle *cycle)
{
    guint64 base = cycle_base(cycle);

    if (cycle->adjust < 0 && (guint64) (-cycle->adjust) >= base)
        return 0;
    return cycle->adjust < 0 ? base - (guint64) (-cycle->adjust) : base + (guint64) cycle->adjust;
}

/* Percent of the limit in tenths, saturating; 0 without a limit. */
static guint64
permille(guint64 billable, const CaUsagePlan *plan)
{
    if (!plan || plan->limit_bytes == 0)
        return 0;
    if (billable > G_MAXUINT64 / 1000)
        return G_MAXUINT64;
    return billable * 1000 / plan->limit_bytes;
}

CaUsageState
ca_usage_cycle_state(const CaUsageCycle *cycle, const CaUsagePlan *plan)
{
    guint64 billable = ca_usage_cycle_billable(cycle);

    if (!plan || plan->limit_bytes == 0)
        return CA_USAGE_OK;
    if (billable >= plan->limit_bytes)
        return CA_USAGE_LIMIT;
    if (plan->n_alerts > 0 && permille(billable, plan) >= plan->alerts[0] * 10ull)
        return CA_USAGE_WARNING;
    return CA_USAGE_OK;
}

/*****************************************************************************/
/* Booking */

static void
add_time(cJSON *obj, const char *key, gint64 unix_s)
{
    g_autofree char *ts = NULL;

    if (unix_s <= 0) {
        cJSON_AddNullToObject(obj, key);
        return;
    }
    ts = ca_timestamp_format(unix_s * G_USEC_PER_SEC);
    cJSON_AddStringToObject(obj, key, ts);
}

static cJSON *
event_new(GPtrArray *events, const char *type, const CaUsageSim *sim)
{
    cJSON *e = cJSON_CreateObject();
    g_autofree char *tail = sim ? ca_usage_iccid_tail(sim->iccid) : NULL;

    cJSON_AddStringToObject(e, "type", type);
    g_ptr_array_add(events, e);
    if (sim) {
        cJSON_AddStringToObject(e, "sim", tail);
        if (sim->cur.plan)
            cJSON_AddStringToObject(e, "plan", sim->cur.plan);
        else
            cJSON_AddNullToObject(e, "plan");
    }
    return e;
}

static void
add_cycle_figures(cJSON *e, const CaUsageCycle *c, const CaUsagePlan *plan)
{
    add_time(e, "cycle_start", c->start);
    add_time(e, "cycle_end", c->end);
    cJSON_AddNumberToObject(e, "total_bytes", (double) (c->bytes.rx_bytes + c->bytes.tx_bytes));
    cJSON_AddNumberToObject(e, "billable_estimate_bytes", (double) ca_usage_cycle_billable(c));
    if (plan && plan->limit_bytes)
        cJSON_AddNumberToObject(e, "limit_bytes", (double) plan->limit_bytes);
    else
        cJSON_AddNullToObject(e, "limit_bytes");
}

/* Close the session under way into the cycle (rounded by the unit it was counted under). */
static void
close_session(CaUsageCycle *c)
{
    CaBillingModel m = {0, c->session_round};

    c->closed_billable += ca_billing_round_session(&m, c->session_billable);
    c->session_billable = 0;
}

/* Bring sim's current cycle to the one holding now_s: a new cycle when it began at or
 * after the current one's end; new boundaries when the plan's calendar changed. */
static void
roll(CaUsageStore *self, CaUsageSim *sim, const CaUsagePlan *plan, GTimeZone *tz, gint64 now_s,
     GPtrArray *events)
{
    CaBillingCycle def;
    const CaBillingCycle *cal = plan ? &plan->cycle : &def;
    gint64 start, end;
    const char *name = plan ? plan->name : NULL;

    ca_usage_default_cycle(&def);
    if (!ca_billing_cycle_find(cal, tz, now_s, &start, &end))
        return;
    if (g_strcmp0(sim->cur.plan, name) != 0) {
        g_free(sim->cur.plan);
        sim->cur.plan = g_strdup(name);
        self->dirty = TRUE;
    }
    if (sim->cur.start == start && sim->cur.end == end)
        return;
    self->dirty = TRUE;
    if (sim->cur.start == 0) {
        sim->cur.start = start;
        sim->cur.end = end;
        return;
    }
    if (start >= sim->cur.end) {
        cJSON *e;

        /* The session under way is billed per cycle: its part so far closes here. */
        close_session(&sim->cur);
        e = event_new(events, "usage-cycle-reset", sim);
        cJSON_AddItemToObject(e, "previous", cJSON_CreateObject());
        add_cycle_figures(cJSON_GetObjectItem(e, "previous"), &sim->cur, plan);
        cycle_clear(&sim->prev);
        sim->prev = sim->cur;
        sim->has_prev = TRUE;
        memset(&sim->cur, 0, sizeof sim->cur);
        sim->cur.plan = g_strdup(name);
        sim->cur.session_round = model_of(plan)->session_round;
        sim->cur.start = start;
        sim->cur.end = end;
        add_time(e, "cycle_start", start);
        add_time(e, "cycle_end", end);
        return;
    }
    /* The plan's calendar changed (reload): the counts so far stay in the cycle as it is
     * now defined. */
    sim->cur.start = start;
    sim->cur.end = end;
}

static void
thresholds(CaUsageSim *sim, const CaUsagePlan *plan, gint64 now_s, GPtrArray *events)
{
    CaUsageCycle *c = &sim->cur;
    guint64 billable, pm;
    guint crossed = 0;
    cJSON *e;

    if (!plan || plan->limit_bytes == 0)
        return;
    billable = ca_usage_cycle_billable(c);
    pm = permille(billable, plan);
    for (guint i = 0; i < plan->n_alerts; i++) {
        if (pm >= plan->alerts[i] * 10ull)
            crossed = plan->alerts[i];
    }
    if (crossed > c->alerted) {
        c->alerted = crossed;
        e = event_new(events, "usage-threshold", sim);
        cJSON_AddNumberToObject(e, "threshold", crossed);
        cJSON_AddNumberToObject(e, "percent", (double) pm / 10.0);
        add_cycle_figures(e, c, plan);
    }
    if (billable >= plan->limit_bytes && !c->limit_reported) {
        c->limit_reported = TRUE;
        e = event_new(events, "usage-limit", sim);
        cJSON_AddNumberToObject(e, "percent", (double) pm / 10.0);
        cJSON_AddStringToObject(
            e, "action",
            c->override_until > now_s ? "none" : ca_usage_at_limit_to_string(plan->at_limit));
        add_time(e, "override_until", c->override_until > now_s ? c->override_until : 0);
        add_cycle_figures(e, c, plan);
    }
}

static CaUsageSim *
get_or_create(CaUsageStore *self, const char *iccid, gint64 now_s)
{
    CaUsageSim *sim = ca_usage_store_find_sim(self, iccid);

    if (sim)
        return sim;
    sim = g_new0(CaUsageSim, 1);
    sim->iccid = g_strdup(iccid);
    sim->last_seen = now_s;
    g_ptr_array_add(self->sims, sim);
    self->dirty = TRUE;
    return sim;
}

static void
set_current(CaUsageStore *self, const char *iccid)
{
    if (g_strcmp0(self->current, iccid) == 0)
        return;
    g_free(self->current);
    self->current = g_strdup(iccid);
    self->dirty = TRUE;
}

void
ca_usage_store_touch(CaUsageStore *self, const char *iccid, const CaUsagePlan *plan, GTimeZone *tz,
                     gint64 now_s, GPtrArray *events)
{
    g_autoptr(GPtrArray) scratch = NULL;
    CaUsageSim *sim;

    /* Events nobody asked for are made all the same (the flags they set matter). */
    if (!events)
        events = scratch = g_ptr_array_new_with_free_func((GDestroyNotify) cJSON_Delete);
    if (!iccid)
        return;
    sim = get_or_create(self, iccid, now_s);
    if (g_strcmp0(self->current, iccid) != 0) {
        /* Another SIM: the session under way belonged to the one before. */
        CaUsageSim *before = ca_usage_store_find_sim(self, self->current);

        if (before)
            close_session(&before->cur);
        sim->last_seen = now_s;
        set_current(self, iccid);
    }
    roll(self, sim, plan, tz, now_s, events);
    thresholds(sim, plan, now_s, events);
    ca_usage_store_trim(self, self->max_sims);
}

void
ca_usage_store_end_session(CaUsageStore *self)
{
    CaUsageSim *sim = ca_usage_store_find_sim(self, self->current);

    if (sim && sim->cur.session_billable > 0) {
        close_session(&sim->cur);
        self->dirty = TRUE;
    }
}

CaUsageDeltaKind
ca_usage_store_sample(CaUsageStore *self, const char *iccid, const CaUsagePlan *plan, GTimeZone *tz,
                      const CaIfSample *sample, gint64 now_s, GPtrArray *events)
{
    CaUsageBytes d;
    const char *why = NULL;
    CaUsageDeltaKind kind = ca_usage_delta(&self->last, sample, &d, &why);
    g_autoptr(GPtrArray) scratch = NULL;
    CaUsageSim *sim;

    if (!events)
        events = scratch = g_ptr_array_new_with_free_func((GDestroyNotify) cJSON_Delete);

    if (kind == CA_USAGE_DELTA_NONE)
        return kind;
    if (iccid)
        ca_usage_store_touch(self, iccid, plan, tz, now_s, events);
    sim = ca_usage_store_find_sim(self, self->current);
    if (kind == CA_USAGE_DELTA_RECREATED) {
        cJSON *e = event_new(events, "usage-counter-reset", sim);

        cJSON_AddStringToObject(e, "interface", sample->iface);
        cJSON_AddStringToObject(e, "previous_interface", self->last.iface);
        cJSON_AddStringToObject(e, "reason", why);
        /* A re-created interface means a new data session. */
        if (sim)
            close_session(&sim->cur);
    }
    if (kind != CA_USAGE_DELTA_GREW || memcmp(&self->last.c, &sample->c, sizeof d) != 0)
        self->dirty = TRUE;
    ca_if_sample_copy(&self->last, sample);
    if (!sim || (d.rx_bytes | d.tx_bytes | d.rx_packets | d.tx_packets) == 0)
        return kind;
    roll(self, sim, plan, tz, now_s, events);
    ca_usage_bytes_add(&sim->cur.bytes, &d);
    sim->cur.session_round = model_of(plan)->session_round;
    sim->cur.session_billable += ca_billing_volume(model_of(plan), &d);
    sim->last_seen = now_s;
    self->dirty = TRUE;
    thresholds(sim, plan, now_s, events);
    return kind;
}

gboolean
ca_usage_store_adjust(CaUsageStore *self, const char *iccid, const CaUsagePlan *plan,
                      guint64 billable_bytes, guint64 *out_before)
{
    CaUsageSim *sim = ca_usage_store_find_sim(self, iccid);
    guint64 before, base;

    if (!sim)
        return FALSE;
    before = ca_usage_cycle_billable(&sim->cur);
    base = cycle_base(&sim->cur);
    sim->cur.adjust = (gint64) billable_bytes - (gint64) base;
    /* Alerts follow the new figure: lowered below a threshold, it can be reported again. */
    if (billable_bytes < before && plan && plan->limit_bytes) {
        guint64 pm = permille(billable_bytes, plan);
        guint crossed = 0;

        for (guint i = 0; i < plan->n_alerts; i++)
            if (pm >= plan->alerts[i] * 10ull)
                crossed = plan->alerts[i];
        sim->cur.alerted = MIN(sim->cur.alerted, crossed);
        sim->cur.limit_reported = billable_bytes >= plan->limit_bytes;
    }
    self->dirty = TRUE;
    if (out_before)
        *out_before = before;
    return TRUE;
}

gboolean
ca_usage_store_override(CaUsageStore *self, const char *iccid, gint64 until_s)
{
    CaUsageSim *sim = ca_usage_store_find_sim(self, iccid);

    if (!sim)
        return FALSE;
    sim->cur.override_until = MAX(until_s, 0);
    self->dirty = TRUE;
    return TRUE;
}

/*****************************************************************************/
/* Payload */

static void
add_u64(cJSON *obj, const char *key, guint64 v)
{
    cJSON_AddNumberToObject(obj, key, (double) v);
}

gboolean
ca_usage_store_action(const CaUsageStore *self, const char *iccid, const CaUsagePlan *plan,
                      gint64 now_s, CaUsageAtLimit *out_action)
{
    const CaUsageSim *sim = iccid ? ca_usage_store_find_sim(self, iccid) : NULL;
    const CaUsageCycle *c = sim ? &sim->cur : NULL;

    if (!c || !plan || plan->limit_bytes == 0 || c->override_until > now_s ||
        ca_usage_cycle_state(c, plan) != CA_USAGE_LIMIT)
        return FALSE;
    *out_action = plan->at_limit;
    return TRUE;
}

cJSON *
ca_usage_store_payload(const CaUsageStore *self, const char *iccid, const CaUsagePlan *plan,
                       gint64 now_s)
{
    cJSON *root = cJSON_CreateObject();
    const CaUsageSim *sim = ca_usage_store_find_sim(self, iccid);
    const CaUsageCycle *c = sim ? &sim->cur : NULL;
    g_autofree char *ts = ca_timestamp_format(now_s * G_USEC_PER_SEC);
    guint64 billable = c ? ca_usage_cycle_billable(c) : 0;
    gboolean limited = plan && plan->limit_bytes > 0;
    CaUsageState state = c ? ca_usage_cycle_state(c, plan) : CA_USAGE_OK;
    gboolean overridden = c && c->override_until > now_s;
    cJSON *prev;

    cJSON_AddStringToObject(root, "ts", ts);
    if (iccid)
        cJSON_AddStringToObject(root, "iccid", iccid);
    else
        cJSON_AddNullToObject(root, "iccid");
    if (plan)
        cJSON_AddStringToObject(root, "plan", plan->name);
    else
        cJSON_AddNullToObject(root, "plan");
    if (!c) {
        static const char *const nulls[] = {"cycle_start", "cycle_end",
                                            "rx_bytes",    "tx_bytes",
                                            "total_bytes", "billable_estimate_bytes"};

        for (gsize i = 0; i < G_N_ELEMENTS(nulls); i++)
            cJSON_AddNullToObject(root, nulls[i]);
    } else {
        add_time(root, "cycle_start", c->start);
        add_time(root, "cycle_end", c->end);
        add_u64(root, "rx_bytes", c->bytes.rx_bytes);
        add_u64(root, "tx_bytes", c->bytes.tx_bytes);
        add_u64(root, "total_bytes", c->bytes.rx_bytes + c->bytes.tx_bytes);
        add_u64(root, "billable_estimate_bytes", billable);
    }
    cJSON_AddNumberToObject(root, "adjust_bytes", c ? (double) c->adjust : 0);
    if (limited) {
        add_u64(root, "limit_bytes", plan->limit_bytes);
        cJSON_AddNumberToObject(root, "percent", (double) permille(billable, plan) / 10.0);
    } else {
        cJSON_AddNullToObject(root, "limit_bytes");
        cJSON_AddNullToObject(root, "percent");
    }
    cJSON_AddStringToObject(root, "state", ca_usage_state_to_string(state));
    if (state != CA_USAGE_LIMIT)
        cJSON_AddStringToObject(root, "action", "none");
    else if (overridden)
        cJSON_AddStringToObject(root, "action", "override");
    else
        cJSON_AddStringToObject(root, "action", ca_usage_at_limit_to_string(plan->at_limit));
    add_time(root, "override_until", overridden ? c->override_until : 0);
    if (sim && sim->has_prev) {
        prev = cJSON_AddObjectToObject(root, "previous");
        if (sim->prev.plan)
            cJSON_AddStringToObject(prev, "plan", sim->prev.plan);
        else
            cJSON_AddNullToObject(prev, "plan");
        add_time(prev, "cycle_start", sim->prev.start);
        add_time(prev, "cycle_end", sim->prev.end);
        add_u64(prev, "rx_bytes", sim->prev.bytes.rx_bytes);
        add_u64(prev, "tx_bytes", sim->prev.bytes.tx_bytes);
        add_u64(prev, "total_bytes", sim->prev.bytes.rx_bytes + sim->prev.bytes.tx_bytes);
        add_u64(prev, "billable_estimate_bytes", ca_usage_cycle_billable(&sim->prev));
    } else {
        cJSON_AddNullToObject(root, "previous");
    }
    return root;
}
