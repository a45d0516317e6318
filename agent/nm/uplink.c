/* uplink: the policy shell of the uplink module (see uplink.h, and uplink-private.h for
 * how the module is split).
 *
 * Data flow: NMClient signals -> (coalesced idle) facts per uplink (uplink-nm.c) ->
 * ca_failover_set_facts -> ca_failover_run -> outputs (probe, routes, activate, deactivate,
 * watchdog, state, switch) carried out here and in uplink-nm.c, uplink-routes.c and
 * uplink-watchdog.c. One owned timer wakes the policy at its next deadline. */
#define CA_LOG_MODULE "uplink"
#include "uplink-private.h"

#include "autocleanups.h"
#include "error.h"
#include "log.h"

#include <arpa/inet.h>
#include <time.h>

#define LINK_MIN_GAP_MS   1000 /* at most one <base>/link per second */
#define LEAD_RESET_ROUNDS 180  /* retry the first (cheapest) probe as lead this often */
#define STATE_FILE        "watchdog.state"

guint ca_uplink_signals[CA_UPLINK_N_SIGNALS];

G_DEFINE_TYPE(CaUplink, ca_uplink, G_TYPE_OBJECT)

/*****************************************************************************/
/* Clock */

gint64
ca_uplink_now_ms(void)
{
    struct timespec ts;

    /* CLOCK_BOOTTIME keeps counting in suspend, so hold-downs and budgets do too. */
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (gint64) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static gint64
wall_s(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

static char *
read_boot_id(void)
{
    g_autofree char *text = NULL;

    /* Hidden under ProcSubset=pid; the watchdog then estimates ages conservatively. */
    if (!g_file_get_contents("/proc/sys/kernel/random/boot_id", &text, NULL, NULL))
        return NULL;
    return g_strdup(g_strstrip(text));
}

/*****************************************************************************/
/* Events, link, status */

void
ca_uplink_emit_event(CaUplink *self, const char *type, cJSON *fields)
{
    g_signal_emit(self, ca_uplink_signals[CA_UPLINK_SIG_EVENT], 0, type, fields);
    cJSON_Delete(fields);
}

/* The link object without what changes with every probe round. */
static char *
link_signature(CaUplink *self)
{
    g_autoptr(cJSON) j = ca_failover_link_json(self->fo, ca_uplink_now_ms(), 0);
    cJSON *ups = cJSON_GetObjectItem(j, "uplinks"), *u;

    cJSON_DeleteItemFromObject(j, "ts");
    cJSON_ArrayForEach(u, ups)
    {
        /* What changes every round, and the times: rendered against a wall clock of 0 they
         * are ages, different at every call, which made every failover run republish the
         * unchanged link (a QoS 1 publish and its PUBACK per probe round, over cellular). A
         * new state or watchdog step shows in "state" and "steps". The signal quality moves
         * by a point or two at every ModemManager poll; telemetry reports it (with its own
         * threshold and spacing). */
        static const char *const volatile_keys[] = {"rtt_ms",     "loss",   "probes",
                                                    "last_probe", "reason", "since"};
        cJSON *w = cJSON_GetObjectItem(u, "watchdog");
        cJSON *m = cJSON_GetObjectItem(u, "modem");

        for (gsize k = 0; k < G_N_ELEMENTS(volatile_keys); k++)
            cJSON_DeleteItemFromObject(u, volatile_keys[k]);
        if (w)
            cJSON_DeleteItemFromObject(w, "last_step_at");
        if (m)
            cJSON_DeleteItemFromObject(m, "signal_quality");
    }
    return cJSON_PrintUnformatted(j);
}

static void
publish_link(CaUplink *self)
{
    g_free(self->link_signature);
    self->link_signature = link_signature(self);
    self->last_link_ms = ca_uplink_now_ms();
    g_signal_emit(self, ca_uplink_signals[CA_UPLINK_SIG_LINK_CHANGED], 0);
}

static gboolean
link_timer_cb(gpointer user_data)
{
    CaUplink *self = user_data;

    ca_clear_source(&self->link_timer);
    publish_link(self);
    return G_SOURCE_REMOVE;
}

/* Publish the link when it changed, at most once per LINK_MIN_GAP_MS. */
static void
maybe_publish_link(CaUplink *self, gboolean force)
{
    g_autofree char *sig = NULL;
    gint64 gap;

    if (!self->fo || self->link_timer)
        return;
    sig = link_signature(self);
    if (!force && g_strcmp0(sig, self->link_signature) == 0)
        return;
    gap = ca_uplink_now_ms() - self->last_link_ms;
    if (gap >= LINK_MIN_GAP_MS) {
        publish_link(self);
        return;
    }
    self->link_timer = g_timeout_source_new((guint) (LINK_MIN_GAP_MS - gap));
    g_source_set_callback(self->link_timer, link_timer_cb, self, NULL);
    g_source_attach(self->link_timer, NULL);
}

static gboolean
report_timer_cb(gpointer user_data)
{
    CaUplink *self = user_data;

    maybe_publish_link(self, TRUE);
    return G_SOURCE_CONTINUE;
}

/* Economy's health rounds replace probes by MQTT traffic (passive health): with the broker
 * on this machine there is none through the uplink, so the normal rounds stay. */
static gint64
economy_probe_ms(CaUplink *self)
{
    return ca_uplink_settings_broker_is_local(self->settings) ? 0 : self->economy_probe_ms;
}

/* The link refresh at [health] report-interval, or economy's longer one. */
static void
arm_report_timer(CaUplink *self)
{
    gint64 ms = self->fo_config->report_interval_ms;

    if (self->economy_probe_ms > 0)
        ms = (gint64) ca_economy_longer((guint64) ms, (guint64) self->economy_report_ms);
    ca_clear_source(&self->report_timer);
    if (ms > 0) {
        self->report_timer = g_timeout_source_new((guint) MIN(ms, G_MAXUINT));
        g_source_set_callback(self->report_timer, report_timer_cb, self, NULL);
        g_source_attach(self->report_timer, NULL);
    }
}

void
ca_uplink_update_status(CaUplink *self)
{
    g_autofree char *s = self->fo ? ca_failover_status_line(self->fo) : g_strdup("starting");

    if (!ca_uplink_nm_running(self)) {
        g_free(s);
        s = g_strdup("waiting for NetworkManager");
    }
    if (self->started && ca_uplink_is_usable(self) != self->usable) {
        self->usable = !self->usable;
        g_signal_emit(self, ca_uplink_signals[CA_UPLINK_SIG_USABLE_CHANGED], 0, self->usable);
    }
    if (g_strcmp0(s, self->status) == 0)
        return;
    g_free(self->status);
    self->status = g_steal_pointer(&s);
    g_signal_emit(self, ca_uplink_signals[CA_UPLINK_SIG_STATUS_CHANGED], 0, self->status);
}

/*****************************************************************************/
/* Probes */

typedef struct {
    CaUplink *self;
    guint i;
    guint generation;
    CaProbeMode mode;
} ProbeCtx;

static void
probe_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    ProbeCtx *c = user_data;
    g_autoptr(GError) error = NULL;
    CaProbeRound round;
    CaUplink *self = c->self;
    CaUplinkRt *rt;

    if (!ca_prober_run_finish(CA_PROBER(source), result, &round, &error)) {
        g_free(c);
        return; /* cancelled: shutting down */
    }
    if (c->generation != self->generation) {
        g_free(c);
        return;
    }
    rt = &self->rt[c->i];
    rt->probing = FALSE;
    /* The lead becomes the first probe that answered, in list order. */
    for (guint k = 0; k < round.n_results; k++) {
        if (round.results[k].sent && round.results[k].ok) {
            if (c->mode == CA_PROBE_MODE_ALL || !round.results[rt->lead].ok)
                rt->lead = k;
            break;
        }
    }
    if (++rt->lead_rounds >= LEAD_RESET_ROUNDS) {
        rt->lead_rounds = 0;
        rt->lead = 0;
    }
    ca_debug("%s: probe round %s", self->fo_config->uplinks[c->i].name, round.ok ? "ok" : "failed");
    ca_failover_probe_done(self->fo, c->i, &round, ca_uplink_now_ms());
    g_free(c);
    ca_uplink_run_policy(self);
}

static void
start_probe_round(CaUplink *self, guint i, CaProbeMode mode)
{
    const CaFoUplinkConfig *uc = &self->fo_config->uplinks[i];
    const CaUplinkFacts *f = ca_failover_get_facts(self->fo, i);
    CaProbeRequest req = {0};
    ProbeCtx *c = g_new0(ProbeCtx, 1);

    c->self = self;
    c->i = i;
    c->generation = self->generation;
    c->mode = mode;
    req.iface = f->ip_iface[0] ? f->ip_iface : f->device;
    req.specs = (const char *const *) uc->probes;
    req.lead = self->rt[i].lead;
    req.mode = mode;
    req.timeout_ms = (guint) self->fo_config->timeout_ms;
    req.mqtt_host = self->settings->mqtt_host;
    req.mqtt_port = self->settings->mqtt_port;
    req.dns_name = self->fo_config->dns_name;
    self->rt[i].probing = TRUE;
    ca_prober_run_async(self->prober, &req, self->cancellable, probe_ready, c);
}

/*****************************************************************************/
/* The policy loop */

static cJSON *
uplink_fields(CaUplink *self, guint i)
{
    cJSON *f = cJSON_CreateObject();

    cJSON_AddStringToObject(f, "uplink", self->fo_config->uplinks[i].name);
    return f;
}

static void
handle_output(CaUplink *self, const CaFoOut *o, gboolean *routes, gboolean *status)
{
    const char *name = o->uplink >= 0 ? self->fo_config->uplinks[o->uplink].name : NULL;
    g_autofree char *error = NULL;
    cJSON *f;

    switch (o->type) {
    case CA_FO_OUT_PROBE:
        start_probe_round(self, (guint) o->uplink, o->mode);
        break;
    case CA_FO_OUT_ROUTES:
        *routes = TRUE;
        break;
    case CA_FO_OUT_ACTIVATE:
        if (!ca_uplink_nm_activate(self, (guint) o->uplink, o->reason, FALSE, &error))
            ca_debug("%s: not activated: %s", name, error);
        break;
    case CA_FO_OUT_DEACTIVATE:
        ca_uplink_nm_deactivate(self, (guint) o->uplink, o->reason);
        break;
    case CA_FO_OUT_WATCHDOG:
        ca_uplink_watchdog_save(self);
        ca_uplink_watchdog_run_step(self, (guint) o->uplink, o->step, o->reason);
        break;
    case CA_FO_OUT_STATE:
        *status = TRUE;
        ca_msg("%s: %s -> %s (%s)", name, ca_uplink_state_to_string(o->old_state),
               ca_uplink_state_to_string(o->new_state), o->reason);
        if (o->new_state == CA_UPLINK_STATE_DOWN && o->old_state != CA_UPLINK_STATE_STANDBY) {
            f = uplink_fields(self, (guint) o->uplink);
            cJSON_AddStringToObject(f, "reason", o->reason);
            cJSON_AddItemToObject(
                f, "evidence",
                ca_failover_evidence_json(self->fo, (guint) o->uplink, ca_uplink_now_ms()));
            ca_uplink_emit_event(self, "uplink-down", f);
        } else if (o->new_state == CA_UPLINK_STATE_UP && o->old_state != CA_UPLINK_STATE_SUSPECT) {
            f = uplink_fields(self, (guint) o->uplink);
            cJSON_AddStringToObject(f, "reason", o->reason);
            ca_uplink_emit_event(self, "uplink-up", f);
        }
        break;
    case CA_FO_OUT_SWITCH: {
        const char *from = o->from >= 0 ? self->fo_config->uplinks[o->from].name : NULL;
        const char *kind = ca_fo_switch_kind_to_string(o->kind);
        const CaUplinkFacts *facts = ca_failover_get_facts(self->fo, (guint) o->uplink);

        *status = TRUE;
        *routes = TRUE;
        ca_msg("%s: %s -> %s (%s)", kind, from ? from : "none", name, o->reason);
        f = cJSON_CreateObject();
        if (from)
            cJSON_AddStringToObject(f, "from", from);
        else
            cJSON_AddNullToObject(f, "from");
        cJSON_AddStringToObject(f, "to", name);
        cJSON_AddStringToObject(f, "reason", o->reason);
        cJSON_AddStringToObject(f, "interface",
                                facts->ip_iface[0] ? facts->ip_iface : facts->device);
        if (o->from >= 0)
            cJSON_AddItemToObject(
                f, "evidence",
                ca_failover_evidence_json(self->fo, (guint) o->from, ca_uplink_now_ms()));
        ca_uplink_emit_event(self,
                             o->kind == CA_FO_SWITCH_INITIAL  ? "uplink-selected"
                             : o->kind == CA_FO_SWITCH_FORCED ? "uplink-forced"
                                                              : kind,
                             f);
        ca_uplink_routes_queue_switch(self, from, name, kind);
        break;
    }
    }
}

static gboolean
timer_cb(gpointer user_data)
{
    CaUplink *self = user_data;

    ca_clear_source(&self->timer);
    ca_uplink_run_policy(self);
    return G_SOURCE_REMOVE;
}

/* Decide now, carry the outputs out, re-arm the timer. */
void
ca_uplink_run_policy(CaUplink *self)
{
    gboolean routes = FALSE, status = FALSE;
    gint64 deadline, now;
    CaFoOut o;

    if (!self->fo || g_cancellable_is_cancelled(self->cancellable))
        return;
    ca_failover_run(self->fo, ca_uplink_now_ms(), wall_s());
    if (self->planned && !ca_failover_in_planned_outage(self->fo, ca_uplink_now_ms())) {
        self->planned = FALSE;
        ca_warn("the planned outage of the cellular uplink was not ended within its limit; "
                "its failures count again");
    }
    while (ca_failover_pop(self->fo, &o))
        handle_output(self, &o, &routes, &status);
    /* Metrics: the new active uplink first, then the others. */
    if (routes) {
        int a = ca_failover_get_active(self->fo);
        if (a >= 0)
            ca_uplink_routes_ensure(self, (guint) a);
        for (guint i = 0; i < self->n; i++) {
            if ((int) i != a)
                ca_uplink_routes_ensure(self, i);
        }
    }
    ca_uplink_routes_settle(self, FALSE);
    ca_uplink_update_status(self);
    maybe_publish_link(self, FALSE);

    ca_clear_source(&self->timer);
    deadline = ca_failover_next_deadline(self->fo);
    if (deadline != G_MAXINT64) {
        now = ca_uplink_now_ms();
        self->timer = g_timeout_source_new((guint) CLAMP(deadline - now, 0, G_MAXUINT32 / 2));
        g_source_set_callback(self->timer, timer_cb, self, NULL);
        g_source_attach(self->timer, NULL);
    }
}

static gboolean
refresh_cb(gpointer user_data)
{
    CaUplink *self = user_data;

    ca_clear_source(&self->refresh);
    if (!self->fo)
        return G_SOURCE_REMOVE;
    if (!self->client) {
        /* Nothing known yet (NMClient not ready, or no bus): judge nothing. */
        ca_uplink_update_status(self);
        return G_SOURCE_REMOVE;
    }
    ca_uplink_nm_refresh_facts(self);
    self->facts_known = TRUE;
    ca_uplink_run_policy(self);
    /* An activation may have reset the applied metric: put ours back. */
    for (guint i = 0; i < self->n; i++)
        ca_uplink_routes_ensure(self, i);
    return G_SOURCE_REMOVE;
}

void
ca_uplink_schedule_refresh(CaUplink *self)
{
    if (self->refresh || g_cancellable_is_cancelled(self->cancellable))
        return;
    self->refresh = g_idle_source_new();
    g_source_set_callback(self->refresh, refresh_cb, self, NULL);
    g_source_attach(self->refresh, NULL);
}
/*****************************************************************************/
/* Policy set-up */

static void
log_plan(CaUplink *self)
{
    for (guint i = 0; i < self->n; i++) {
        const CaFoUplinkConfig *uc = &self->fo_config->uplinks[i];
        g_autofree char *probes = g_strjoinv(", ", uc->probes);

        if (uc->activate == CA_ACTIVATE_NEVER)
            continue;
        ca_info("uplink %s: connection \"%s\", priority %d, %s, probes %s (idle ~%.1f MB/month)",
                uc->name, uc->connection, uc->priority,
                uc->activate == CA_ACTIVATE_ALWAYS ? "always up" : "on demand", probes,
                (double) ca_fo_idle_bytes_per_month(self->fo_config, i) / 1e6);
    }
}

/* (Re)build the policy from self->settings; the watchdog history carries over. */
static void
build_policy(CaUplink *self)
{
    g_autofree char *saved = NULL;
    gint64 now = ca_uplink_now_ms();

    if (self->fo)
        saved = ca_watchdog_save(ca_failover_get_watchdog(self->fo), now);
    for (guint i = 0; i < self->n; i++)
        ca_uplink_rt_clear(&self->rt[i]);
    g_clear_pointer(&self->rt, g_free);
    g_clear_pointer(&self->fo, ca_failover_free);
    self->generation++;
    self->facts_known = FALSE; /* until the next refresh feeds the new policy */

    self->fo_config = self->settings->policy;
    self->n = self->fo_config->n_uplinks;
    self->rt = g_new0(CaUplinkRt, self->n);
    self->fo = ca_failover_new(self->fo_config, self->boot_id, now);
    g_free(self->state_path);
    self->state_path = g_build_filename(self->settings->state_dir, STATE_FILE, NULL);
    if (saved)
        ca_watchdog_load(ca_failover_get_watchdog(self->fo), saved, NULL);
    else
        ca_uplink_watchdog_load(self);
    if (self->planned && now < self->planned_until)
        ca_failover_set_planned_outage(self->fo, TRUE, self->planned_until - now, now);
    ca_failover_set_cap(self->fo, self->cap);
    ca_failover_set_economy(self->fo, economy_probe_ms(self), now);
    arm_report_timer(self);
    log_plan(self);
}

/*****************************************************************************/
/* GObject */

static void
ca_uplink_init(CaUplink *self)
{
    self->cancellable = g_cancellable_new();
    self->usable = TRUE; /* nothing known yet: MQTT may try */
    self->prober = ca_prober_new();
    self->boot_id = read_boot_id();
    self->cap_broker = g_ptr_array_new_with_free_func(g_free);
    ca_backoff_init(&self->retry_backoff, 1000, 60000, 20, NULL);
}

/* Cancel every call in flight and every timer (dispose and shutdown). */
static void
stop_everything(CaUplink *self)
{
    g_cancellable_cancel(self->cancellable);
    ca_clear_source(&self->timer);
    ca_clear_source(&self->refresh);
    ca_clear_source(&self->link_timer);
    ca_clear_source(&self->report_timer);
    ca_clear_source(&self->retry);
    ca_uplink_routes_stop(self);
}

static void
busy_watcher_gone(gpointer data, GObject *where_the_object_was)
{
    CaUplink *self = data;
    GTask *task = g_steal_pointer(&self->shutdown_task);

    self->busy_watcher = NULL;
    if (task) {
        g_task_return_boolean(task, TRUE);
        g_object_unref(task);
    }
}

static void
ca_uplink_dispose(GObject *object)
{
    CaUplink *self = CA_UPLINK(object);

    stop_everything(self);
    ca_uplink_nm_stop(self);
    if (self->busy_watcher) {
        g_object_weak_unref(self->busy_watcher, busy_watcher_gone, self);
        self->busy_watcher = NULL;
    }
    g_clear_object(&self->prober);
    G_OBJECT_CLASS(ca_uplink_parent_class)->dispose(object);
}

static void
ca_uplink_finalize(GObject *object)
{
    CaUplink *self = CA_UPLINK(object);

    g_clear_pointer(&self->rt, g_free);
    g_clear_pointer(&self->fo, ca_failover_free);
    g_clear_pointer(&self->settings, ca_uplink_settings_free);
    g_clear_object(&self->cancellable);
    g_free(self->boot_id);
    g_ptr_array_unref(self->cap_broker);
    g_free(self->state_path);
    g_free(self->modem_state);
    g_free(self->modem_registration);
    g_free(self->link_signature);
    g_free(self->status);
    g_free(self->switch_from);
    g_free(self->switch_to);
    g_free(self->switch_kind);
    for (guint s = 0; s < CA_WD_N_STEPS; s++)
        g_free(self->step_uplink[s]);
    if (self->shutdown_task) {
        g_task_return_boolean(self->shutdown_task, TRUE);
        g_clear_object(&self->shutdown_task);
    }
    G_OBJECT_CLASS(ca_uplink_parent_class)->finalize(object);
}

static void
ca_uplink_class_init(CaUplinkClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    guint *sig = ca_uplink_signals;

    oc->dispose = ca_uplink_dispose;
    oc->finalize = ca_uplink_finalize;
    sig[CA_UPLINK_SIG_LINK_CHANGED] =
        g_signal_new("link-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 0);
    sig[CA_UPLINK_SIG_EVENT] =
        g_signal_new("event", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_POINTER);
    sig[CA_UPLINK_SIG_SWITCHED] =
        g_signal_new("switched", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
    sig[CA_UPLINK_SIG_STATUS_CHANGED] =
        g_signal_new("status-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
    sig[CA_UPLINK_SIG_USABLE_CHANGED] =
        g_signal_new("usable-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 1, G_TYPE_BOOLEAN);
    sig[CA_UPLINK_SIG_MODEM_RESET] = g_signal_new(
        "modem-reset", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
        g_signal_accumulator_true_handled, NULL, NULL, G_TYPE_BOOLEAN, 1, G_TYPE_STRING);
    sig[CA_UPLINK_SIG_SYSTEM_STEP] =
        g_signal_new("system-step", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0,
                     g_signal_accumulator_true_handled, NULL, NULL, G_TYPE_BOOLEAN, 2, G_TYPE_INT,
                     G_TYPE_STRING);
}

CaUplink *
ca_uplink_new(CaConfig *config)
{
    CaUplink *self = g_object_new(CA_TYPE_UPLINK, NULL);

    self->settings = ca_uplink_settings_new(config);
    build_policy(self);
    return self;
}

void
ca_uplink_start(CaUplink *self)
{
    if (self->started)
        return;
    self->started = TRUE;
    ca_uplink_update_status(self);
    ca_uplink_nm_start(self);
}

void
ca_uplink_set_config(CaUplink *self, CaConfig *config)
{
    g_autoptr(CaUplinkSettings) old = g_steal_pointer(&self->settings);
    CaUplinkSettingsChange change;

    self->settings = ca_uplink_settings_new(config);
    change = ca_uplink_settings_diff(old, self->settings);
    if (self->password_refused) {
        /* A reload is the moment to read a fixed password file again. */
        self->password_refused = FALSE;
        ca_uplink_schedule_refresh(self);
    }
    if (!(change & CA_UPLINK_SETTINGS_POLICY)) {
        /* Keep the policy, and with it the settings it was built from. Probes read the
         * broker address at each round. */
        CaFoConfig *policy = g_steal_pointer(&old->policy);

        old->policy = g_steal_pointer(&self->settings->policy);
        self->settings->policy = policy;
        if (self->fo) /* passive health follows the broker on or off this machine */
            ca_failover_set_economy(self->fo, economy_probe_ms(self), ca_uplink_now_ms());
        ca_uplink_update_status(self); /* a broker moved on or off this machine */
        return;
    }
    ca_msg("uplink configuration changed; re-evaluating every uplink");
    build_policy(self);
    ca_uplink_schedule_refresh(self);
}

void
ca_uplink_set_modem_facts(CaUplink *self, const CaUplinkModemFacts *facts)
{
    self->have_modem = facts != NULL;
    g_clear_pointer(&self->modem_state, g_free);
    g_clear_pointer(&self->modem_registration, g_free);
    if (facts) {
        self->modem = *facts;
        self->modem_state = g_strdup(facts->state);
        self->modem_registration = g_strdup(facts->registration);
        self->modem.state = self->modem.registration = NULL;
    }
    ca_uplink_schedule_refresh(self);
}

void
ca_uplink_set_planned_outage(CaUplink *self, gboolean active, guint max_seconds)
{
    gint64 now = ca_uplink_now_ms();

    g_return_if_fail(CA_IS_UPLINK(self));
    if (active) {
        ca_msg("planned outage of the cellular uplink (at most %u s): its failures are no "
               "evidence meanwhile",
               max_seconds);
        self->planned = TRUE;
        self->planned_until = now + (gint64) max_seconds * 1000;
    } else if (self->planned) {
        ca_msg("planned outage of the cellular uplink over");
        self->planned = FALSE;
    } else {
        return;
    }
    if (self->fo)
        ca_failover_set_planned_outage(self->fo, active, (gint64) max_seconds * 1000, now);
    ca_uplink_run_policy(self);
}

void
ca_uplink_set_cap(CaUplink *self, CaFoCap cap)
{
    g_return_if_fail(CA_IS_UPLINK(self));
    if (self->cap == cap)
        return;
    if (cap == CA_FO_CAP_NONE)
        ca_msg("data cap on the cellular uplink lifted (was %s)", ca_fo_cap_to_string(self->cap));
    else
        ca_msg("data cap on the cellular uplink: %s", ca_fo_cap_to_string(cap));
    self->cap = cap;
    if (self->fo)
        ca_failover_set_cap(self->fo, cap);
    ca_uplink_run_policy(self);
}

void
ca_uplink_note_trouble(CaUplink *self, const char *why)
{
    if (!self->fo)
        return;
    ca_failover_note_trouble(self->fo, -1, why, ca_uplink_now_ms());
    ca_uplink_run_policy(self);
}

void
ca_uplink_set_economy(CaUplink *self, gint64 probe_interval_ms, gint64 report_interval_ms)
{
    if (self->economy_probe_ms == probe_interval_ms &&
        self->economy_report_ms == report_interval_ms)
        return;
    self->economy_probe_ms = probe_interval_ms;
    self->economy_report_ms = report_interval_ms;
    if (!self->fo)
        return;
    ca_failover_set_economy(self->fo, economy_probe_ms(self), ca_uplink_now_ms());
    arm_report_timer(self);
    ca_uplink_run_policy(self);
}

void
ca_uplink_note_alive(CaUplink *self)
{
    /* A broker on this machine proves nothing about an uplink. */
    if (self->fo && !ca_uplink_settings_broker_is_local(self->settings))
        ca_failover_note_alive(self->fo, -1, ca_uplink_now_ms());
}

gboolean
ca_uplink_get_active_metered(CaUplink *self, int *out_metered)
{
    int a = self->fo ? ca_failover_get_active(self->fo) : -1;

    if (a < 0)
        return FALSE;
    *out_metered = (int) ca_failover_get_facts(self->fo, (guint) a)->metered;
    return TRUE;
}

guint64
ca_uplink_get_passive_rounds(CaUplink *self)
{
    int a = self->fo ? ca_failover_get_active(self->fo) : -1;

    return a >= 0 ? ca_failover_get_passive_rounds(self->fo, (guint) a) : 0;
}

void
ca_uplink_shutdown_async(CaUplink *self, GAsyncReadyCallback callback, gpointer user_data)
{
    g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
    GObject *watcher = self->client ? nm_client_get_context_busy_watcher(self->client) : NULL;

    g_task_set_source_tag(task, ca_uplink_shutdown_async);
    stop_everything(self);
    if (watcher && !self->shutdown_task && !self->busy_watcher) {
        /* libnm keeps the watcher alive while it has work queued on our context. */
        self->busy_watcher = watcher;
        g_object_weak_ref(watcher, busy_watcher_gone, self);
        self->shutdown_task = g_steal_pointer(&task);
        ca_uplink_nm_stop(self);
        return;
    }
    ca_uplink_nm_stop(self);
    g_task_return_boolean(task, TRUE);
}

gboolean
ca_uplink_shutdown_finish(CaUplink *self, GAsyncResult *result, GError **error)
{
    return g_task_propagate_boolean(G_TASK(result), error);
}

cJSON *
ca_uplink_get_link_json(CaUplink *self)
{
    return ca_failover_link_json(self->fo, ca_uplink_now_ms(), g_get_real_time());
}

cJSON *
ca_uplink_get_watchdog_json(CaUplink *self)
{
    if (!self->fo)
        return NULL;
    return ca_watchdog_budgets_json(ca_failover_get_watchdog(self->fo), ca_uplink_now_ms());
}

const char *
ca_uplink_get_status(CaUplink *self)
{
    if (!self->status)
        ca_uplink_update_status(self);
    return self->status;
}

const char *
ca_uplink_get_active(CaUplink *self)
{
    int a = self->fo ? ca_failover_get_active(self->fo) : -1;

    return a >= 0 ? self->fo_config->uplinks[a].name : NULL;
}

gboolean
ca_uplink_is_usable(CaUplink *self)
{
    /* A wrong "no" keeps the device offline; a wrong "yes" costs one failed attempt. So
     * "no" needs every fact: NetworkManager known and running (without it the kernel may
     * still have a path), a broker off this machine (loopback needs no uplink), no managed
     * uplink usable, and no default route NetworkManager knows of (a path outside the
     * managed uplinks, e.g. an interface not configured as an uplink, still counts). */
    if (!self->fo || !self->facts_known || !ca_uplink_nm_running(self) ||
        ca_uplink_settings_broker_is_local(self->settings))
        return TRUE;
    return ca_failover_any_usable(self->fo) || ca_uplink_nm_has_default_route(self);
}

gboolean
ca_uplink_force(CaUplink *self, const char *name, GError **error)
{
    int i = -1;

    if (!self->fo) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_NOT_READY, "the uplinks are not set up");
        return FALSE;
    }
    if (name) {
        i = ca_fo_config_find(self->fo_config, name);
        if (i < 0) {
            g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "no uplink \"%s\"", name);
            return FALSE;
        }
    }
    if (!ca_failover_force(self->fo, i)) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                    "uplink \"%s\" is not managed (activate=never)", name);
        return FALSE;
    }
    ca_msg("uplink choice: %s%s", name ? "forced to " : "automatic", name ? name : "");
    ca_uplink_run_policy(self);
    return TRUE;
}

const char *
ca_uplink_get_forced(CaUplink *self)
{
    int i = self->fo ? ca_failover_get_forced(self->fo) : -1;

    return i >= 0 ? self->fo_config->uplinks[i].name : NULL;
}

const char *
ca_uplink_reactivate(CaUplink *self, const char *why, GError **error)
{
    int a = self->fo ? ca_failover_get_active(self->fo) : -1;
    g_autofree char *problem = NULL;

    if (a < 0) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_NOT_READY, "no uplink is in use");
        return NULL;
    }
    if (!ca_uplink_nm_activate(self, (guint) a, why, FALSE, &problem)) {
        g_set_error(error, CA_ERROR,
                    ca_uplink_nm_running(self) ? CA_ERROR_NETWORK : CA_ERROR_NOT_READY, "%s: %s",
                    self->fo_config->uplinks[a].name, problem);
        return NULL;
    }
    return self->fo_config->uplinks[a].name;
}
