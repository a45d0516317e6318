/* failover: the pure uplink policy (see failover.h). Nothing here touches a clock,
 * a socket or a daemon: every function gets "now" (CLOCK_BOOTTIME ms) from the caller,
 * so the unit tests drive it through hours of simulated time in microseconds. */
#include "failover.h"

#include "probe-spec.h"

#include <math.h>
#include <string.h>

#define LOSS_WINDOW             20
#define ACTIVATE_GRACE_MS       3000   /* let NetworkManager's own autoconnect go first */
#define ACTIVATE_BACKOFF_MIN_MS 10000  /* then retry our own activation at this pace */
#define ACTIVATE_BACKOFF_MAX_MS 300000 /* ... doubling up to this */
#define DEACTIVATE_RETRY_MS     30000
#define METRIC_ACTIVE           100   /* the chosen uplink's default route */
#define METRIC_OTHERS           30000 /* + 10 x rank: above NetworkManager's +20000 penalty */
#define MONTH_S                 (30 * 86400)

typedef struct {
    CaUplinkState state;
    CaUplinkFacts facts;
    gboolean have_facts;
    gboolean hard_ok;   /* activated, carrier, device and modem fine */
    char hard_why[128]; /* when !hard_ok */
    guint fails, oks;   /* consecutive failed and good rounds */
    gboolean probing;   /* a round is out */
    gint64 round_started;
    gint64 next_probe; /* G_MAXINT64: none scheduled */
    gint64 state_since;
    gint64 up_since;    /* entered UP (kept through SUSPECT); -1 */
    gboolean ever_down; /* went down after being usable: hold-down applies */
    GArray *flaps;      /* gint64: when it went down after being usable */
    guint8 loss[LOSS_WINDOW];
    guint loss_n, loss_pos;
    CaProbeRound last_round;
    gboolean have_round;
    gint64 last_round_at;
    double rtt_ms; /* last good round's best RTT; NAN when none */
    gboolean wanted;
    gint64 inactive_since;
    gint64 next_activate;
    gint64 activate_backoff;
    gint64 last_deactivate;
    CaWdLadder ladder;
    gint64 ladder_next;
    char reason[160]; /* why the state last changed */
} Uplink;

struct _CaFailover {
    CaFoConfig *config;
    CaWatchdog *watchdog;
    Uplink *up;
    guint n;
    int active;
    int forced;         /* ca_failover_force: -1 automatic */
    guint *static_rank; /* rank by (priority, wired first, name) */
    GQueue out;         /* CaFoOut* */
    gint64 next_deadline;
    gint64 started;
    gboolean manager_running;
    gboolean planned;     /* a planned outage of the cellular uplink is under way */
    gint64 planned_until; /* ... and counts as evidence again from then on */
};

/*****************************************************************************/
/* Names */

const char *
ca_uplink_state_to_string(CaUplinkState state)
{
    switch (state) {
    case CA_UPLINK_STATE_STANDBY:
        return "standby";
    case CA_UPLINK_STATE_UNKNOWN:
        return "unknown";
    case CA_UPLINK_STATE_UP:
        return "up";
    case CA_UPLINK_STATE_SUSPECT:
        return "suspect";
    case CA_UPLINK_STATE_DOWN:
        return "down";
    }
    g_assert_not_reached();
}

const char *
ca_connectivity_to_string(CaConnectivity c)
{
    switch (c) {
    case CA_CONNECTIVITY_UNKNOWN:
        return "unknown";
    case CA_CONNECTIVITY_NONE:
        return "none";
    case CA_CONNECTIVITY_PORTAL:
        return "portal";
    case CA_CONNECTIVITY_LIMITED:
        return "limited";
    case CA_CONNECTIVITY_FULL:
        return "full";
    }
    g_assert_not_reached();
}

const char *
ca_fo_switch_kind_to_string(CaFoSwitchKind kind)
{
    switch (kind) {
    case CA_FO_SWITCH_INITIAL:
        return "initial";
    case CA_FO_SWITCH_FAILOVER:
        return "failover";
    case CA_FO_SWITCH_FAILBACK:
        return "failback";
    case CA_FO_SWITCH_FORCED:
        return "forced";
    }
    g_assert_not_reached();
}

static const char *
activate_mode_to_string(CaActivateMode m)
{
    switch (m) {
    case CA_ACTIVATE_ALWAYS:
        return "always";
    case CA_ACTIVATE_ON_DEMAND:
        return "on-demand";
    case CA_ACTIVATE_NEVER:
        return "never";
    }
    g_assert_not_reached();
}

void
ca_uplink_facts_init(CaUplinkFacts *f)
{
    memset(f, 0, sizeof *f);
    f->carrier = TRUE;
    f->activation = CA_ACTIVATION_NONE;
    f->connectivity = CA_CONNECTIVITY_UNKNOWN;
    f->signal_quality = -1;
}

/*****************************************************************************/
/* Config */

static int
compare_uplink_names(gconstpointer a, gconstpointer b)
{
    return strcmp(((const CaFoUplinkConfig *) a)->name, ((const CaFoUplinkConfig *) b)->name);
}

static CaActivateMode
parse_activate(const char *s)
{
    if (g_strcmp0(s, "on-demand") == 0)
        return CA_ACTIVATE_ON_DEMAND;
    if (g_strcmp0(s, "never") == 0)
        return CA_ACTIVATE_NEVER;
    return CA_ACTIVATE_ALWAYS;
}

CaFoConfig *
ca_fo_config_new(const CaConfig *config)
{
    CaFoConfig *c = g_new0(CaFoConfig, 1);
    g_auto(GStrv) groups = ca_config_get_groups_with_prefix(config, "uplink-");
    g_autoptr(GArray) ups = g_array_new(FALSE, TRUE, sizeof(CaFoUplinkConfig));
    gboolean have_cellular = FALSE;
    CaWdConfig *w = &c->watchdog;
    const char *const *steps;

    c->interval_ms = ca_config_get_int(config, "health", "interval") * 1000;
    c->fast_interval_ms = ca_config_get_int(config, "health", "fast-interval") * 1000;
    c->timeout_ms = ca_config_get_int(config, "health", "timeout") * 1000;
    c->down_after = (guint) ca_config_get_int(config, "health", "down-after");
    c->up_after = (guint) ca_config_get_int(config, "health", "up-after");
    c->hold_down_ms = ca_config_get_int(config, "health", "hold-down") * 1000;
    c->max_hold_down_ms = ca_config_get_int(config, "health", "max-hold-down") * 1000;
    c->flap_window_ms = ca_config_get_int(config, "health", "flap-window") * 1000;
    c->report_interval_ms = ca_config_get_int(config, "health", "report-interval") * 1000;
    c->dns_name = g_strdup(ca_config_get_string(config, "health", "dns-name"));

    for (int i = 0; groups[i]; i++) {
        const char *g = groups[i];
        CaFoUplinkConfig u = {0};

        u.name = g_strdup(g + strlen("uplink-"));
        u.cellular = strcmp(u.name, "cellular") == 0;
        have_cellular |= u.cellular;
        if (ca_config_is_set(config, g, "connection"))
            u.connection = g_strdup(ca_config_get_string(config, g, "connection"));
        else if (u.cellular)
            u.connection = g_strdup(ca_config_get_string(config, "cellular", "connection"));
        else
            u.connection = g_strdup(u.name);
        u.priority = ca_config_is_set(config, g, "priority")
                         ? (int) ca_config_get_int(config, g, "priority")
                         : (u.cellular ? 200 : 100);
        u.activate = parse_activate(ca_config_get_string(config, g, "activate"));
        u.probes = g_strdupv((char **) (ca_config_is_set(config, g, "probes")
                                            ? ca_config_get_list(config, g, "probes")
                                            : ca_config_get_list(config, "health", "probes")));
        g_array_append_val(ups, u);
    }
    if (!have_cellular) {
        CaFoUplinkConfig u = {0};

        u.name = g_strdup("cellular");
        u.cellular = TRUE;
        u.connection = g_strdup(ca_config_get_string(config, "cellular", "connection"));
        u.priority = 200;
        u.activate = CA_ACTIVATE_ALWAYS;
        u.probes = g_strdupv((char **) ca_config_get_list(config, "health", "probes"));
        g_array_append_val(ups, u);
    }
    g_array_sort(ups, compare_uplink_names);
    c->n_uplinks = ups->len;
    c->uplinks = (CaFoUplinkConfig *) (void *) g_array_free(g_steal_pointer(&ups), FALSE);

    w->enabled = ca_config_get_bool(config, "watchdog", "enabled");
    steps = ca_config_get_list(config, "watchdog", "steps");
    for (int i = 0; steps[i]; i++) {
        CaWdStep s;
        if (ca_wd_step_from_string(steps[i], &s))
            w->step_enabled[s] = TRUE;
    }
    if (!*ca_config_get_string(config, "watchdog", "power-cycle-command"))
        w->step_enabled[CA_WD_STEP_POWER_CYCLE] = FALSE;
    if (!ca_config_get_bool(config, "watchdog", "reboot"))
        w->step_enabled[CA_WD_STEP_REBOOT] = FALSE;
    w->start_after_ms = ca_config_get_int(config, "watchdog", "start-after") * 1000;
    w->cooldown_ms[CA_WD_STEP_REACTIVATE] =
        ca_config_get_int(config, "watchdog", "reactivate-cooldown") * 1000;
    w->cooldown_ms[CA_WD_STEP_MODEM_RESET] =
        ca_config_get_int(config, "watchdog", "modem-reset-cooldown") * 1000;
    w->cooldown_ms[CA_WD_STEP_POWER_CYCLE] =
        ca_config_get_int(config, "watchdog", "power-cycle-cooldown") * 1000;
    w->cooldown_ms[CA_WD_STEP_REBOOT] =
        ca_config_get_int(config, "watchdog", "reboot-cooldown") * 1000;
    w->budget[CA_WD_STEP_MODEM_RESET] =
        (guint) ca_config_get_int(config, "watchdog", "modem-reset-budget");
    w->budget[CA_WD_STEP_POWER_CYCLE] =
        (guint) ca_config_get_int(config, "watchdog", "power-cycle-budget");
    w->budget[CA_WD_STEP_REBOOT] = (guint) ca_config_get_int(config, "watchdog", "reboot-budget");
    w->healthy_reset_ms = ca_config_get_int(config, "watchdog", "healthy-reset") * 1000;
    w->max_backoff_shift = 4;
    return c;
}

static CaFoConfig *
fo_config_copy(const CaFoConfig *src)
{
    CaFoConfig *c = g_new0(CaFoConfig, 1);

    *c = *src;
    c->dns_name = g_strdup(src->dns_name);
    c->uplinks = g_new0(CaFoUplinkConfig, src->n_uplinks);
    for (guint i = 0; i < src->n_uplinks; i++) {
        c->uplinks[i] = src->uplinks[i];
        c->uplinks[i].name = g_strdup(src->uplinks[i].name);
        c->uplinks[i].connection = g_strdup(src->uplinks[i].connection);
        c->uplinks[i].probes = g_strdupv(src->uplinks[i].probes);
    }
    return c;
}

void
ca_fo_config_free(CaFoConfig *c)
{
    if (!c)
        return;
    for (guint i = 0; i < c->n_uplinks; i++) {
        g_free(c->uplinks[i].name);
        g_free(c->uplinks[i].connection);
        g_strfreev(c->uplinks[i].probes);
    }
    g_free(c->uplinks);
    g_free(c->dns_name);
    g_free(c);
}

static gboolean
wd_config_equal(const CaWdConfig *a, const CaWdConfig *b)
{
    if (a->enabled != b->enabled || a->start_after_ms != b->start_after_ms ||
        a->healthy_reset_ms != b->healthy_reset_ms || a->max_backoff_shift != b->max_backoff_shift)
        return FALSE;
    for (guint s = 0; s < CA_WD_N_STEPS; s++) {
        if (a->step_enabled[s] != b->step_enabled[s] || a->cooldown_ms[s] != b->cooldown_ms[s] ||
            a->budget[s] != b->budget[s])
            return FALSE;
    }
    return TRUE;
}

gboolean
ca_fo_config_equal(const CaFoConfig *a, const CaFoConfig *b)
{
    if (a->interval_ms != b->interval_ms || a->fast_interval_ms != b->fast_interval_ms ||
        a->timeout_ms != b->timeout_ms || a->down_after != b->down_after ||
        a->up_after != b->up_after || a->hold_down_ms != b->hold_down_ms ||
        a->max_hold_down_ms != b->max_hold_down_ms || a->flap_window_ms != b->flap_window_ms ||
        a->report_interval_ms != b->report_interval_ms ||
        g_strcmp0(a->dns_name, b->dns_name) != 0 || !wd_config_equal(&a->watchdog, &b->watchdog) ||
        a->n_uplinks != b->n_uplinks)
        return FALSE;
    for (guint i = 0; i < a->n_uplinks; i++) {
        const CaFoUplinkConfig *x = &a->uplinks[i], *y = &b->uplinks[i];

        if (g_strcmp0(x->name, y->name) != 0 || g_strcmp0(x->connection, y->connection) != 0 ||
            x->priority != y->priority || x->activate != y->activate ||
            x->cellular != y->cellular ||
            !g_strv_equal((const char *const *) x->probes, (const char *const *) y->probes))
            return FALSE;
    }
    return TRUE;
}

int
ca_fo_config_find(const CaFoConfig *c, const char *name)
{
    for (guint i = 0; i < c->n_uplinks; i++) {
        if (g_strcmp0(c->uplinks[i].name, name) == 0)
            return (int) i;
    }
    return -1;
}

guint64
ca_fo_idle_bytes_per_month(const CaFoConfig *c, guint uplink)
{
    CaProbeSpec spec;
    const CaFoUplinkConfig *u = &c->uplinks[uplink];
    guint64 rounds;

    if (!u->probes || !u->probes[0] || !ca_probe_spec_parse(u->probes[0], &spec, NULL))
        return 0;
    rounds = (guint64) MONTH_S * 1000 / (guint64) MAX(c->interval_ms, 1);
    return rounds * ca_probe_spec_cost(&spec);
}

/*****************************************************************************/
/* Construction */

static const CaFoUplinkConfig *
ucfg(const CaFailover *self, guint i)
{
    return &self->config->uplinks[i];
}

static gboolean
is_cellular(const CaFailover *self, guint i)
{
    return ucfg(self, i)->cellular || self->up[i].facts.cellular;
}

/* Static order: priority, then wired before cellular, then name. */
static int
static_order(const CaFailover *self, guint a, guint b)
{
    int pa = ucfg(self, a)->priority, pb = ucfg(self, b)->priority;

    if (pa != pb)
        return pa < pb ? -1 : 1;
    if (is_cellular(self, a) != is_cellular(self, b))
        return is_cellular(self, a) ? 1 : -1;
    return a < b ? -1 : (a > b ? 1 : 0);
}

static void
compute_static_rank(CaFailover *self)
{
    for (guint i = 0; i < self->n; i++) {
        guint r = 0;
        for (guint j = 0; j < self->n; j++) {
            if (j != i && static_order(self, j, i) < 0)
                r++;
        }
        self->static_rank[i] = r;
    }
}

CaFailover *
ca_failover_new(const CaFoConfig *config, const char *boot_id, gint64 now)
{
    CaFailover *self = g_new0(CaFailover, 1);

    self->config = fo_config_copy(config);
    self->n = config->n_uplinks;
    self->watchdog = ca_watchdog_new(&config->watchdog, boot_id);
    self->up = g_new0(Uplink, self->n);
    self->static_rank = g_new0(guint, self->n);
    self->active = -1;
    self->forced = -1;
    self->started = now;
    self->manager_running = TRUE;
    g_queue_init(&self->out);
    for (guint i = 0; i < self->n; i++) {
        Uplink *u = &self->up[i];

        u->state = CA_UPLINK_STATE_STANDBY;
        ca_uplink_facts_init(&u->facts);
        g_strlcpy(u->hard_why, "no NetworkManager device yet", sizeof u->hard_why);
        u->next_probe = G_MAXINT64;
        u->state_since = now;
        u->up_since = -1;
        u->flaps = g_array_new(FALSE, FALSE, sizeof(gint64));
        u->rtt_ms = NAN;
        u->inactive_since = -1;
        u->next_activate = 0;
        u->activate_backoff = ACTIVATE_BACKOFF_MIN_MS;
        u->last_deactivate = -1;
        ca_wd_ladder_init(&u->ladder);
        u->ladder_next = G_MAXINT64;
        g_strlcpy(u->reason, "starting", sizeof u->reason);
    }
    compute_static_rank(self);
    self->next_deadline = G_MAXINT64;
    return self;
}

void
ca_failover_free(CaFailover *self)
{
    if (!self)
        return;
    for (guint i = 0; i < self->n; i++)
        g_array_unref(self->up[i].flaps);
    g_queue_clear_full(&self->out, g_free);
    g_free(self->up);
    g_free(self->static_rank);
    ca_watchdog_free(self->watchdog);
    ca_fo_config_free(self->config);
    g_free(self);
}

const CaFoConfig *
ca_failover_get_config(const CaFailover *self)
{
    return self->config;
}

CaWatchdog *
ca_failover_get_watchdog(CaFailover *self)
{
    return self->watchdog;
}

/*****************************************************************************/
/* Outputs */

static CaFoOut *
emit(CaFailover *self, CaFoOutType type, int uplink)
{
    CaFoOut *o = g_new0(CaFoOut, 1);

    o->type = type;
    o->uplink = uplink;
    o->from = -1;
    g_queue_push_tail(&self->out, o);
    return o;
}

gboolean
ca_failover_pop(CaFailover *self, CaFoOut *out)
{
    g_autofree CaFoOut *o = g_queue_pop_head(&self->out);

    if (!o)
        return FALSE;
    *out = *o;
    return TRUE;
}

/*****************************************************************************/
/* Health */

static gboolean
usable_state(CaUplinkState s)
{
    switch (s) {
    case CA_UPLINK_STATE_UNKNOWN:
    case CA_UPLINK_STATE_UP:
    case CA_UPLINK_STATE_SUSPECT:
        return TRUE;
    case CA_UPLINK_STATE_STANDBY:
    case CA_UPLINK_STATE_DOWN:
        return FALSE;
    }
    g_assert_not_reached();
}

static gboolean
usable(const CaFailover *self, guint i)
{
    return ucfg(self, i)->activate != CA_ACTIVATE_NEVER && self->up[i].hard_ok &&
           usable_state(self->up[i].state);
}

/* Is uplink i inside a planned outage (the modem's owner disrupts it on purpose) at now?
 * Its failures are then no evidence: no state falls, no failover, no watchdog step. */
static gboolean
planned(const CaFailover *self, guint i, gint64 now)
{
    return self->planned && now < self->planned_until && is_cellular(self, i);
}

static guint
count_flaps(const Uplink *u, gint64 now, gint64 window)
{
    guint n = 0;

    for (guint k = 0; k < u->flaps->len; k++) {
        if (now - g_array_index(u->flaps, gint64, k) < window)
            n++;
    }
    return n;
}

static gint64
hold_down(const CaFailover *self, guint i, gint64 now)
{
    const CaFoConfig *c = self->config;
    guint flaps = count_flaps(&self->up[i], now, c->flap_window_ms);
    gint64 cap = MAX(c->max_hold_down_ms, c->hold_down_ms);
    gint64 h = c->hold_down_ms;

    /* The first flap costs hold-down; each further one in the window doubles it. */
    for (guint k = 1; k < flaps && h < cap; k++)
        h *= 2;
    return MIN(h, cap);
}

static void
set_state(CaFailover *self, guint i, CaUplinkState state, const char *why, gint64 now)
{
    Uplink *u = &self->up[i];
    CaFoOut *o;

    if (u->state == state)
        return;
    o = emit(self, CA_FO_OUT_STATE, (int) i);
    o->old_state = u->state;
    o->new_state = state;
    g_strlcpy(o->reason, why, sizeof o->reason);
    g_strlcpy(u->reason, why, sizeof u->reason);

    if (state == CA_UPLINK_STATE_DOWN && usable_state(u->state)) {
        u->ever_down = TRUE;
        if (u->state != CA_UPLINK_STATE_UNKNOWN) {
            g_array_append_val(u->flaps, now);
            /* Forget flaps older than the window (bounded by the window anyway). */
            while (u->flaps->len > 0 &&
                   now - g_array_index(u->flaps, gint64, 0) >= self->config->flap_window_ms)
                g_array_remove_index(u->flaps, 0);
            while (u->flaps->len > 256)
                g_array_remove_index(u->flaps, 0);
        }
    }
    if (state == CA_UPLINK_STATE_UP && u->state != CA_UPLINK_STATE_SUSPECT)
        u->up_since = now;
    if (!usable_state(state))
        u->up_since = -1;
    u->state = state;
    u->state_since = now;
    u->fails = 0;
    u->oks = 0;
}

static gint64
period(const CaFailover *self, const Uplink *u)
{
    switch (u->state) {
    case CA_UPLINK_STATE_UP:
        return self->config->interval_ms;
    case CA_UPLINK_STATE_UNKNOWN:
    case CA_UPLINK_STATE_SUSPECT:
        return self->config->fast_interval_ms;
    case CA_UPLINK_STATE_DOWN:
        /* Once a probe answers again, confirm fast. */
        return u->oks > 0 ? self->config->fast_interval_ms : self->config->interval_ms;
    case CA_UPLINK_STATE_STANDBY:
        return G_MAXINT64;
    }
    g_assert_not_reached();
}

static CaProbeMode
probe_mode(const Uplink *u)
{
    switch (u->state) {
    case CA_UPLINK_STATE_UP:
    case CA_UPLINK_STATE_DOWN:
    case CA_UPLINK_STATE_STANDBY:
        return u->oks > 0 && u->state == CA_UPLINK_STATE_DOWN ? CA_PROBE_MODE_ALL
                                                              : CA_PROBE_MODE_LEAD;
    case CA_UPLINK_STATE_UNKNOWN:
    case CA_UPLINK_STATE_SUSPECT:
        return CA_PROBE_MODE_ALL;
    }
    g_assert_not_reached();
}

static gboolean
hard_problem(const CaFailover *self, guint i, const CaUplinkFacts *f, char *why, gsize size)
{
    if (!f->device_present) {
        g_strlcpy(why, "no NetworkManager device", size);
        return TRUE;
    }
    if (f->activation != CA_ACTIVATION_ACTIVATED) {
        g_snprintf(why, size, "connection not activated (device %s%s%s)",
                   f->nm_state[0] ? f->nm_state : "?", f->nm_reason[0] ? ", " : "", f->nm_reason);
        return TRUE;
    }
    if (!f->carrier) {
        g_strlcpy(why, "carrier lost", size);
        return TRUE;
    }
    if (is_cellular(self, i) && f->modem_known && !f->modem_present) {
        g_strlcpy(why, "modem absent", size);
        return TRUE;
    }
    if (is_cellular(self, i) && f->modem_known && !f->modem_usable) {
        g_snprintf(why, size, "modem %s", f->modem_state[0] ? f->modem_state : "unusable");
        return TRUE;
    }
    return FALSE;
}

/* Move a usable uplink into doubt and probe it now. */
static void
suspect(CaFailover *self, guint i, const char *why, gint64 now)
{
    Uplink *u = &self->up[i];

    if (u->state == CA_UPLINK_STATE_UP)
        set_state(self, i, CA_UPLINK_STATE_SUSPECT, why, now);
    if (u->state != CA_UPLINK_STATE_STANDBY && !u->probing)
        u->next_probe = now;
}

void
ca_failover_set_facts(CaFailover *self, guint i, const CaUplinkFacts *facts, gint64 now)
{
    Uplink *u;
    CaUplinkFacts old;
    gboolean had, was_ok, problem;
    char why[128];

    g_return_if_fail(i < self->n);
    u = &self->up[i];
    old = u->facts;
    had = u->have_facts;
    was_ok = u->hard_ok;
    u->facts = *facts;
    u->have_facts = TRUE;
    problem = hard_problem(self, i, facts, why, sizeof why);
    if (facts->device_ready && !old.device_ready) {
        /* The device just became available (cable in, modem registered, back after a
         * ModemManager restart): activate soon, whatever the backoff had reached. */
        u->activate_backoff = ACTIVATE_BACKOFF_MIN_MS;
        u->next_activate = 0;
        u->inactive_since = -1;
    }
    if (problem && planned(self, i, now)) {
        /* Caused by the planned operation: kept for the diagnosis, not judged. The end
         * of the outage judges the facts as they are then (end_planned). */
        if (!u->hard_ok)
            g_strlcpy(u->hard_why, why, sizeof u->hard_why);
        return;
    }
    u->hard_ok = !problem;
    if (!u->hard_ok)
        g_strlcpy(u->hard_why, why, sizeof u->hard_why);
    if (!u->hard_ok) {
        u->probing = FALSE; /* a result still out is stale now */
        u->next_probe = G_MAXINT64;
        if (usable_state(u->state))
            set_state(self, i, CA_UPLINK_STATE_DOWN, why, now);
        return;
    }
    if (!was_ok) {
        /* Newly activated: a never-judged or on-demand uplink is usable at once
         * (unknown); a failed one must prove itself (up-after). */
        if (u->state == CA_UPLINK_STATE_STANDBY)
            set_state(self, i, CA_UPLINK_STATE_UNKNOWN, "activated", now);
        u->oks = u->fails = 0;
        u->probing = FALSE;
        u->next_probe = now;
        return;
    }
    if (!had || planned(self, i, now))
        return;
    /* Passive evidence: probe fast at once, let the probes decide. */
    if (old.connectivity == CA_CONNECTIVITY_FULL && facts->connectivity != CA_CONNECTIVITY_FULL &&
        facts->connectivity != CA_CONNECTIVITY_UNKNOWN) {
        g_snprintf(why, sizeof why, "NetworkManager connectivity %s",
                   ca_connectivity_to_string(facts->connectivity));
        suspect(self, i, why, now);
    }
    if (is_cellular(self, i) && old.modem_known && facts->modem_known) {
        if (old.registered && !facts->registered) {
            g_snprintf(why, sizeof why, "registration lost (%s)",
                       facts->registration[0] ? facts->registration : "unknown");
            suspect(self, i, why, now);
        }
        if (old.bearer_connected && !facts->bearer_connected)
            suspect(self, i, "bearer disconnected", now);
    }
}

void
ca_failover_note_trouble(CaFailover *self, int uplink, const char *why, gint64 now)
{
    guint i;

    if (uplink < 0)
        uplink = self->active;
    if (uplink < 0 || (guint) uplink >= self->n)
        return;
    i = (guint) uplink;
    if (!self->up[i].hard_ok || planned(self, i, now))
        return;
    suspect(self, i, why, now);
}

static void
describe_failure(const CaProbeRound *r, char *buf, gsize size)
{
    GString *s = g_string_new(NULL);

    for (guint k = 0; k < r->n_results; k++) {
        const CaProbeResult *p = &r->results[k];
        if (!p->sent)
            continue;
        g_string_append_printf(s, "%s%s %s", s->len ? ", " : "", p->target,
                               p->ok ? "ok" : (p->error[0] ? p->error : "failed"));
    }
    g_strlcpy(buf, s->str, size);
    g_string_free(s, TRUE);
}

void
ca_failover_probe_done(CaFailover *self, guint i, const CaProbeRound *round, gint64 now)
{
    Uplink *u;
    const CaFoConfig *c = self->config;
    char why[160], detail[120];
    double best = NAN;
    gint64 p;

    g_return_if_fail(i < self->n);
    u = &self->up[i];
    if (!u->probing)
        return; /* stale: the uplink changed while the round was out */
    u->probing = FALSE;
    u->last_round = *round;
    u->last_round.n_results = MIN(round->n_results, CA_FAILOVER_MAX_PROBES);
    u->have_round = TRUE;
    u->last_round_at = now;
    if (!round->ok && planned(self, i, now)) {
        /* Shown in the link topic, but neither loss nor a failed round. */
        p = period(self, u);
        u->next_probe = p == G_MAXINT64 ? G_MAXINT64 : MAX(u->round_started + p, now);
        return;
    }
    for (guint k = 0; k < u->last_round.n_results; k++) {
        const CaProbeResult *r = &u->last_round.results[k];
        if (!r->sent)
            continue;
        u->loss[u->loss_pos] = r->ok ? 0 : 1;
        u->loss_pos = (u->loss_pos + 1) % LOSS_WINDOW;
        u->loss_n = MIN(u->loss_n + 1, LOSS_WINDOW);
        if (r->ok && (isnan(best) || r->rtt_ms < best))
            best = r->rtt_ms;
    }
    if (!isnan(best))
        u->rtt_ms = best;
    if (!u->hard_ok || u->state == CA_UPLINK_STATE_STANDBY)
        return;

    if (round->ok) {
        u->fails = 0;
        u->oks++;
        switch (u->state) {
        case CA_UPLINK_STATE_UNKNOWN:
        case CA_UPLINK_STATE_DOWN:
            if (u->oks >= c->up_after) {
                g_snprintf(why, sizeof why, "%u probe rounds answered", u->oks);
                set_state(self, i, CA_UPLINK_STATE_UP, why, now);
            }
            break;
        case CA_UPLINK_STATE_SUSPECT:
            set_state(self, i, CA_UPLINK_STATE_UP, "probes answered again", now);
            break;
        case CA_UPLINK_STATE_UP:
        case CA_UPLINK_STATE_STANDBY:
            break;
        }
    } else {
        guint fails = u->fails + 1;

        u->oks = 0;
        u->fails = fails;
        describe_failure(round, detail, sizeof detail);
        switch (u->state) {
        case CA_UPLINK_STATE_UP:
        case CA_UPLINK_STATE_SUSPECT:
        case CA_UPLINK_STATE_UNKNOWN:
            if (fails >= c->down_after) {
                g_snprintf(why, sizeof why, "%u probe rounds failed: %s", fails, detail);
                set_state(self, i, CA_UPLINK_STATE_DOWN, why, now);
            } else if (u->state == CA_UPLINK_STATE_UP) {
                g_snprintf(why, sizeof why, "probe round failed: %s", detail);
                set_state(self, i, CA_UPLINK_STATE_SUSPECT, why, now);
            }
            u->fails = fails; /* set_state clears it */
            break;
        case CA_UPLINK_STATE_DOWN:
        case CA_UPLINK_STATE_STANDBY:
            break;
        }
    }
    p = period(self, u);
    u->next_probe = p == G_MAXINT64 ? G_MAXINT64 : MAX(u->round_started + p, now);
}

/*****************************************************************************/
/* Choice of the active uplink */

static guint
health_rank(CaUplinkState s)
{
    switch (s) {
    case CA_UPLINK_STATE_UP:
        return 0;
    case CA_UPLINK_STATE_SUSPECT:
        return 1;
    case CA_UPLINK_STATE_UNKNOWN:
        return 2;
    case CA_UPLINK_STATE_DOWN:
        return 3;
    case CA_UPLINK_STATE_STANDBY:
        return 4;
    }
    g_assert_not_reached();
}

/* Best first: priority, then health, then the static order. */
static int
choice_order(const CaFailover *self, guint a, guint b)
{
    int pa = ucfg(self, a)->priority, pb = ucfg(self, b)->priority;
    guint ha = health_rank(self->up[a].state), hb = health_rank(self->up[b].state);

    if (pa != pb)
        return pa < pb ? -1 : 1;
    if (ha != hb)
        return ha < hb ? -1 : 1;
    return self->static_rank[a] < self->static_rank[b] ? -1 : 1;
}

/* May v take traffic from a usable uplink now? */
static gboolean
eligible(const CaFailover *self, guint v, gint64 now)
{
    const Uplink *u = &self->up[v];

    if (u->state != CA_UPLINK_STATE_UP)
        return FALSE;
    return !u->ever_down || now - u->up_since >= hold_down(self, v, now);
}

static void
choose(CaFailover *self, gint64 now)
{
    g_autofree guint *cand = g_new0(guint, self->n);
    guint nc = 0;
    int cur = self->active, pick = -1;
    CaFoSwitchKind kind = CA_FO_SWITCH_INITIAL;
    CaFoOut *o;

    for (guint i = 0; i < self->n; i++) {
        if (usable(self, i)) {
            guint k = nc++;
            /* insertion sort: a handful of uplinks */
            while (k > 0 && choice_order(self, i, cand[k - 1]) < 0) {
                cand[k] = cand[k - 1];
                k--;
            }
            cand[k] = i;
        }
    }
    if (nc == 0)
        return; /* nothing usable: leave the routes as they are and keep trying */

    if (self->forced >= 0 && usable(self, (guint) self->forced)) {
        /* Forced: stay on it while usable; move to it when it is up, or when the current
         * one cannot carry traffic (or none was chosen yet). */
        if (cur == self->forced)
            return;
        if (self->up[self->forced].state == CA_UPLINK_STATE_UP || cur < 0 ||
            !usable(self, (guint) cur)) {
            pick = self->forced;
            kind = CA_FO_SWITCH_FORCED;
        }
    }
    if (pick >= 0) {
        /* chosen above */
    } else if (cur >= 0 && usable(self, (guint) cur)) {
        for (guint k = 0; k < nc; k++) {
            guint v = cand[k];
            if ((int) v == cur)
                break;
            if (ucfg(self, v)->priority >= ucfg(self, (guint) cur)->priority)
                continue; /* same priority: stay where we are while it works */
            if (eligible(self, v, now)) {
                pick = (int) v;
                kind = CA_FO_SWITCH_FAILBACK;
                break;
            }
        }
        if (pick < 0)
            return;
    } else {
        for (guint k = 0; k < nc && pick < 0; k++) {
            if (eligible(self, cand[k], now))
                pick = (int) cand[k];
        }
        if (pick < 0)
            pick = (int) cand[0];
        kind = cur < 0 ? CA_FO_SWITCH_INITIAL : CA_FO_SWITCH_FAILOVER;
    }
    if (pick == cur)
        return;
    o = emit(self, CA_FO_OUT_SWITCH, pick);
    o->from = cur;
    o->kind = kind;
    switch (kind) {
    case CA_FO_SWITCH_INITIAL:
        g_snprintf(o->reason, sizeof o->reason, "%s is %s", ucfg(self, (guint) pick)->name,
                   ca_uplink_state_to_string(self->up[pick].state));
        break;
    case CA_FO_SWITCH_FAILOVER:
        g_snprintf(o->reason, sizeof o->reason, "%s %s: %s", ucfg(self, (guint) cur)->name,
                   ca_uplink_state_to_string(self->up[cur].state), self->up[cur].reason);
        break;
    case CA_FO_SWITCH_FAILBACK:
        g_snprintf(o->reason, sizeof o->reason,
                   "%s up for %" G_GINT64_FORMAT " s (hold-down %" G_GINT64_FORMAT " s)",
                   ucfg(self, (guint) pick)->name, (now - self->up[pick].up_since) / 1000,
                   hold_down(self, (guint) pick, now) / 1000);
        break;
    case CA_FO_SWITCH_FORCED:
        g_snprintf(o->reason, sizeof o->reason, "%s forced (%s)", ucfg(self, (guint) pick)->name,
                   ca_uplink_state_to_string(self->up[pick].state));
        break;
    }
    self->active = pick;
    emit(self, CA_FO_OUT_ROUTES, pick);
}

/* When a waiting better uplink becomes eligible (for the deadline). */
static gint64
failback_due(const CaFailover *self, gint64 now)
{
    gint64 due = G_MAXINT64;
    int cur = self->active;

    if (cur < 0 || !usable(self, (guint) cur) || cur == self->forced)
        return due; /* (no failback away from the forced uplink) */
    for (guint v = 0; v < self->n; v++) {
        const Uplink *u = &self->up[v];
        if ((int) v == cur || !usable(self, v) || u->state != CA_UPLINK_STATE_UP || !u->ever_down ||
            ucfg(self, v)->priority >= ucfg(self, (guint) cur)->priority)
            continue;
        due = MIN(due, u->up_since + hold_down(self, v, now));
        /* Flaps leaving the window shorten the hold-down: look again then. */
        for (guint k = 0; k < u->flaps->len; k++) {
            gint64 leaves = g_array_index(u->flaps, gint64, k) + self->config->flap_window_ms;
            if (leaves > now)
                due = MIN(due, leaves);
        }
    }
    return due;
}

/*****************************************************************************/
/* Activation of on-demand and fallen uplinks */

static gboolean
compute_wanted(const CaFailover *self, guint i)
{
    switch (ucfg(self, i)->activate) {
    case CA_ACTIVATE_ALWAYS:
        return TRUE;
    case CA_ACTIVATE_NEVER:
        return FALSE;
    case CA_ACTIVATE_ON_DEMAND:
        break;
    }
    if (self->active == (int) i || self->forced == (int) i)
        return TRUE;
    for (guint v = 0; v < self->n; v++) {
        if (v != i && usable(self, v) && static_order(self, v, i) < 0)
            return FALSE; /* a better uplink carries traffic (or could) */
    }
    return TRUE;
}

static void
manage_activation(CaFailover *self, guint i, gint64 now, gint64 *deadline)
{
    Uplink *u = &self->up[i];
    const CaUplinkFacts *f = &u->facts;
    CaFoOut *o;

    u->wanted = compute_wanted(self, i);
    if (!u->have_facts)
        return;
    if (planned(self, i, now)) {
        /* The operation's owner takes the modem down and brings it back; an activation
         * now would fight it. */
        *deadline = MIN(*deadline, self->planned_until);
        return;
    }
    if (!u->wanted) {
        if (ucfg(self, i)->activate != CA_ACTIVATE_ON_DEMAND)
            return;
        if (u->state != CA_UPLINK_STATE_STANDBY)
            set_state(self, i, CA_UPLINK_STATE_STANDBY, "not needed", now);
        u->probing = FALSE;
        u->next_probe = G_MAXINT64;
        if (f->activation == CA_ACTIVATION_ACTIVATING || f->activation == CA_ACTIVATION_ACTIVATED) {
            if (u->last_deactivate < 0 || now - u->last_deactivate >= DEACTIVATE_RETRY_MS) {
                o = emit(self, CA_FO_OUT_DEACTIVATE, (int) i);
                g_strlcpy(o->reason, "a better uplink carries traffic", sizeof o->reason);
                u->last_deactivate = now;
            }
            *deadline = MIN(*deadline, u->last_deactivate + DEACTIVATE_RETRY_MS);
        }
        u->inactive_since = -1;
        return;
    }
    u->last_deactivate = -1;
    if (f->activation != CA_ACTIVATION_NONE) {
        u->inactive_since = -1;
        if (f->activation == CA_ACTIVATION_ACTIVATED) {
            u->activate_backoff = ACTIVATE_BACKOFF_MIN_MS;
            u->next_activate = 0;
        }
        return;
    }
    if (!f->device_present || !f->device_ready || !f->carrier)
        return; /* nothing to activate on (no device, no cable); the watchdog deals with it */
    if (u->inactive_since < 0)
        u->inactive_since = now;
    {
        /* An on-demand uplink we want now goes up at once; otherwise give
         * NetworkManager's autoconnect a moment before doing it ourselves. */
        gint64 grace = ucfg(self, i)->activate == CA_ACTIVATE_ON_DEMAND ? 0 : ACTIVATE_GRACE_MS;
        gint64 due = MAX(u->inactive_since + grace, u->next_activate);

        if (now < due) {
            *deadline = MIN(*deadline, due);
            return;
        }
        o = emit(self, CA_FO_OUT_ACTIVATE, (int) i);
        g_snprintf(o->reason, sizeof o->reason, "%s, connection inactive (%s)",
                   ucfg(self, i)->activate == CA_ACTIVATE_ON_DEMAND ? "needed" : "always up",
                   u->hard_why);
        u->next_activate = now + u->activate_backoff;
        u->activate_backoff = MIN(u->activate_backoff * 2, ACTIVATE_BACKOFF_MAX_MS);
        *deadline = MIN(*deadline, u->next_activate);
    }
}

/* A wanted uplink that never came up and is not coming up is down, not standby. */
static void
mark_missing(CaFailover *self, guint i, gint64 now)
{
    Uplink *u = &self->up[i];
    const CaUplinkFacts *f = &u->facts;

    if (!u->wanted || !u->have_facts || u->state != CA_UPLINK_STATE_STANDBY || u->hard_ok ||
        f->activation != CA_ACTIVATION_NONE || planned(self, i, now))
        return;
    if (!f->device_present || !f->device_ready || !f->carrier ||
        (u->inactive_since >= 0 && now - u->inactive_since >= ACTIVATE_GRACE_MS))
        set_state(self, i, CA_UPLINK_STATE_DOWN, u->hard_why, now);
}

/*****************************************************************************/
/* The run */

static void
schedule_probes(CaFailover *self, guint i, gint64 now, gint64 *deadline)
{
    Uplink *u = &self->up[i];
    CaFoOut *o;

    if (!u->hard_ok || u->state == CA_UPLINK_STATE_STANDBY || u->probing ||
        ucfg(self, i)->activate == CA_ACTIVATE_NEVER)
        return;
    if (u->next_probe > now) {
        *deadline = MIN(*deadline, u->next_probe);
        return;
    }
    o = emit(self, CA_FO_OUT_PROBE, (int) i);
    o->mode = probe_mode(u);
    u->probing = TRUE;
    u->round_started = now;
}

static void
run_watchdog(CaFailover *self, guint i, gboolean all_down, gint64 now, gint64 wall_s,
             gint64 *deadline)
{
    Uplink *u = &self->up[i];
    CaWdSituation s = {
        .unhealthy = u->wanted && u->have_facts &&
                     (u->state == CA_UPLINK_STATE_DOWN || u->state == CA_UPLINK_STATE_STANDBY),
        .cellular = is_cellular(self, i),
        .all_down = all_down,
    };
    gint64 next = G_MAXINT64;
    CaWdStep step;

    if (ucfg(self, i)->activate == CA_ACTIVATE_NEVER)
        return;
    if (planned(self, i, now)) {
        /* No step for what the planned operation does; its end (or its limit) lets the
         * ladder decide again. */
        *deadline = MIN(*deadline, self->planned_until);
        return;
    }
    /* Activated again and the probes answer (or the first round is still out): it is
     * recovering; a step now would tear down what just came up. The probes decide. */
    if (s.unhealthy && u->hard_ok && (u->oks > 0 || (u->probing && u->fails == 0)))
        return;
    step = ca_watchdog_decide(self->watchdog, &u->ladder, &s, now, &next);
    if (step != CA_WD_STEP_NONE) {
        CaFoOut *o = emit(self, CA_FO_OUT_WATCHDOG, (int) i);

        o->step = step;
        g_snprintf(o->reason, sizeof o->reason, "%s for %" G_GINT64_FORMAT " s: %s",
                   ca_uplink_state_to_string(u->state), (now - u->ladder.unhealthy_since) / 1000,
                   u->hard_ok ? u->reason : u->hard_why);
        ca_watchdog_record(self->watchdog, &u->ladder, step, now, wall_s);
        /* Ask again after the step's cooldown. */
        step = ca_watchdog_decide(self->watchdog, &u->ladder, &s, now, &next);
        g_warn_if_fail(step == CA_WD_STEP_NONE);
    }
    u->ladder_next = next;
    *deadline = MIN(*deadline, next);
}

void
ca_failover_set_manager_running(CaFailover *self, gboolean running)
{
    self->manager_running = running;
}

/* The planned outage is over (ended or past its limit): judge the cellular uplink's
 * facts as they are now, and probe it at once for a fresh verdict. */
static void
end_planned(CaFailover *self, gint64 now)
{
    self->planned = FALSE;
    for (guint i = 0; i < self->n; i++) {
        Uplink *u = &self->up[i];
        char why[128];

        if (!is_cellular(self, i) || !u->have_facts)
            continue;
        if (hard_problem(self, i, &u->facts, why, sizeof why)) {
            u->hard_ok = FALSE;
            g_strlcpy(u->hard_why, why, sizeof u->hard_why);
            u->probing = FALSE;
            u->next_probe = G_MAXINT64;
            if (usable_state(u->state))
                set_state(self, i, CA_UPLINK_STATE_DOWN, why, now);
            continue;
        }
        u->hard_ok = TRUE;
        if (u->state != CA_UPLINK_STATE_STANDBY && !u->probing)
            u->next_probe = now;
    }
}

void
ca_failover_set_planned_outage(CaFailover *self, gboolean active, gint64 max_ms, gint64 now)
{
    if (active) {
        self->planned = TRUE;
        self->planned_until = now + MAX(max_ms, 0);
        return;
    }
    if (self->planned)
        end_planned(self, now);
}

gboolean
ca_failover_in_planned_outage(const CaFailover *self, gint64 now)
{
    return self->planned && now < self->planned_until;
}

void
ca_failover_run(CaFailover *self, gint64 now, gint64 wall_s)
{
    gint64 deadline = G_MAXINT64;
    gboolean all_down = TRUE;

    /* A planned outage that outlived its limit counts again: a hung operation must not
     * blind the policy and the watchdog. */
    if (self->planned && now >= self->planned_until)
        end_planned(self, now);
    choose(self, now);
    for (guint i = 0; i < self->n; i++) {
        manage_activation(self, i, now, &deadline);
        mark_missing(self, i, now);
    }
    /* Taking an on-demand uplink down may change nothing else; choose again in case
     * an activation made one usable. */
    choose(self, now);
    for (guint i = 0; i < self->n; i++) {
        schedule_probes(self, i, now, &deadline);
        if (usable(self, i))
            all_down = FALSE;
    }
    for (guint i = 0; self->manager_running && i < self->n; i++)
        run_watchdog(self, i, all_down, now, wall_s, &deadline);
    deadline = MIN(deadline, failback_due(self, now));
    self->next_deadline = deadline;
}

gint64
ca_failover_next_deadline(const CaFailover *self)
{
    return self->next_deadline;
}

/*****************************************************************************/
/* Queries */

gboolean
ca_failover_any_usable(const CaFailover *self)
{
    for (guint i = 0; i < self->n; i++) {
        if (usable(self, i))
            return TRUE;
    }
    return FALSE;
}

int
ca_failover_get_active(const CaFailover *self)
{
    return self->active;
}

CaUplinkState
ca_failover_get_state(const CaFailover *self, guint i)
{
    g_return_val_if_fail(i < self->n, CA_UPLINK_STATE_STANDBY);
    return self->up[i].state;
}

const CaUplinkFacts *
ca_failover_get_facts(const CaFailover *self, guint i)
{
    g_return_val_if_fail(i < self->n, NULL);
    return &self->up[i].facts;
}

guint32
ca_failover_get_metric(const CaFailover *self, guint i)
{
    g_return_val_if_fail(i < self->n, METRIC_OTHERS);
    if (self->active == (int) i)
        return METRIC_ACTIVE;
    return METRIC_OTHERS + 10 * self->static_rank[i];
}

gboolean
ca_failover_force(CaFailover *self, int uplink)
{
    if (uplink < -1 || uplink >= (int) self->n)
        return FALSE;
    if (uplink >= 0 && ucfg(self, (guint) uplink)->activate == CA_ACTIVATE_NEVER)
        return FALSE;
    self->forced = uplink;
    return TRUE;
}

int
ca_failover_get_forced(const CaFailover *self)
{
    return self->forced;
}

gboolean
ca_failover_is_wanted(const CaFailover *self, guint i)
{
    g_return_val_if_fail(i < self->n, FALSE);
    return compute_wanted(self, i);
}

guint
ca_failover_get_flaps(const CaFailover *self, guint i, gint64 now)
{
    g_return_val_if_fail(i < self->n, 0);
    return count_flaps(&self->up[i], now, self->config->flap_window_ms);
}

gint64
ca_failover_get_hold_down(const CaFailover *self, guint i, gint64 now)
{
    g_return_val_if_fail(i < self->n, 0);
    return hold_down(self, i, now);
}

double
ca_failover_get_loss(const CaFailover *self, guint i)
{
    const Uplink *u;
    guint lost = 0;

    g_return_val_if_fail(i < self->n, -1);
    u = &self->up[i];
    if (u->loss_n == 0)
        return -1;
    for (guint k = 0; k < u->loss_n; k++)
        lost += u->loss[k];
    return (double) lost / u->loss_n;
}

char *
ca_failover_status_line(const CaFailover *self)
{
    GString *s = g_string_new(NULL);

    if (self->active < 0) {
        g_string_append(s, "no uplink in use");
    } else {
        const Uplink *u = &self->up[self->active];
        g_string_append_printf(s, "uplink %s %s", ucfg(self, (guint) self->active)->name,
                               ca_uplink_state_to_string(u->state));
        if (u->facts.ip_iface[0] || u->facts.device[0])
            g_string_append_printf(s, " (%s)",
                                   u->facts.ip_iface[0] ? u->facts.ip_iface : u->facts.device);
        if (!isnan(u->rtt_ms))
            g_string_append_printf(s, ", rtt %.0f ms", u->rtt_ms);
    }
    for (guint i = 0; i < self->n; i++) {
        if ((int) i == self->active || ucfg(self, i)->activate == CA_ACTIVATE_NEVER)
            continue;
        g_string_append_printf(s, "; %s %s", ucfg(self, i)->name,
                               ca_uplink_state_to_string(self->up[i].state));
    }
    return g_string_free(s, FALSE);
}

/*****************************************************************************/
/* JSON */

static char *
iso_ts(gint64 wall_us)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(wall_us / G_USEC_PER_SEC);
    g_autofree char *base =
        dt ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S") : g_strdup("1970-01-01T00:00:00");

    return g_strdup_printf("%s.%03dZ", base, (int) ((wall_us % G_USEC_PER_SEC) / 1000));
}

static void
add_ts(cJSON *obj, const char *key, gint64 wall_us)
{
    g_autofree char *ts = iso_ts(wall_us);
    cJSON_AddStringToObject(obj, key, ts);
}

static void
add_str_or_null(cJSON *obj, const char *key, const char *value)
{
    if (value && *value)
        cJSON_AddStringToObject(obj, key, value);
    else
        cJSON_AddNullToObject(obj, key);
}

static double
round_ms(double v)
{
    return round(v * 100.0) / 100.0;
}

static cJSON *
probes_json(const Uplink *u)
{
    cJSON *arr = cJSON_CreateArray();

    for (guint k = 0; u->have_round && k < u->last_round.n_results; k++) {
        const CaProbeResult *r = &u->last_round.results[k];
        cJSON *p;

        if (!r->sent)
            continue;
        p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "target", r->target);
        cJSON_AddBoolToObject(p, "ok", r->ok);
        if (r->ok)
            cJSON_AddNumberToObject(p, "rtt_ms", round_ms(r->rtt_ms));
        else
            cJSON_AddStringToObject(p, "error", r->error[0] ? r->error : "failed");
        cJSON_AddItemToArray(arr, p);
    }
    return arr;
}

static void
add_modem_facts(cJSON *obj, const CaUplinkFacts *f)
{
    cJSON *m = cJSON_AddObjectToObject(obj, "modem");

    if (!f->modem_known) {
        cJSON_AddNullToObject(m, "state");
        return;
    }
    add_str_or_null(m, "state", f->modem_present ? f->modem_state : "absent");
    add_str_or_null(m, "registration", f->registration);
    if (f->signal_quality >= 0)
        cJSON_AddNumberToObject(m, "signal_quality", f->signal_quality);
    else
        cJSON_AddNullToObject(m, "signal_quality");
    cJSON_AddBoolToObject(m, "bearer_connected", f->bearer_connected);
}

cJSON *
ca_failover_evidence_json(const CaFailover *self, guint i, gint64 now)
{
    const Uplink *u = &self->up[i];
    const CaUplinkFacts *f = &u->facts;
    cJSON *e = cJSON_CreateObject();
    double loss = ca_failover_get_loss(self, i);

    cJSON_AddStringToObject(e, "state", ca_uplink_state_to_string(u->state));
    cJSON_AddStringToObject(e, "reason", u->hard_ok ? u->reason : u->hard_why);
    cJSON_AddItemToObject(e, "probes", probes_json(u));
    if (loss >= 0)
        cJSON_AddNumberToObject(e, "loss", round_ms(loss));
    else
        cJSON_AddNullToObject(e, "loss");
    add_str_or_null(e, "nm_state", f->nm_state);
    add_str_or_null(e, "nm_reason", f->nm_reason);
    cJSON_AddStringToObject(e, "connectivity", ca_connectivity_to_string(f->connectivity));
    cJSON_AddBoolToObject(e, "carrier", f->carrier);
    if (is_cellular(self, i))
        add_modem_facts(e, f);
    return e;
}

cJSON *
ca_failover_link_json(const CaFailover *self, gint64 now, gint64 now_wall_us)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *ups;

    add_ts(root, "ts", now_wall_us);
    add_str_or_null(root, "active",
                    self->active >= 0 ? ucfg(self, (guint) self->active)->name : NULL);
    add_str_or_null(root, "forced",
                    self->forced >= 0 ? ucfg(self, (guint) self->forced)->name : NULL);
    ups = cJSON_AddObjectToObject(root, "uplinks");
    for (guint i = 0; i < self->n; i++) {
        const Uplink *u = &self->up[i];
        const CaUplinkFacts *f = &u->facts;
        cJSON *o = cJSON_AddObjectToObject(ups, ucfg(self, i)->name);
        double loss = ca_failover_get_loss(self, i);
        guint flaps = count_flaps(u, now, self->config->flap_window_ms);

        cJSON_AddStringToObject(o, "state", ca_uplink_state_to_string(u->state));
        cJSON_AddStringToObject(o, "reason", u->hard_ok ? u->reason : u->hard_why);
        cJSON_AddStringToObject(o, "connection", ucfg(self, i)->connection);
        cJSON_AddNumberToObject(o, "priority", ucfg(self, i)->priority);
        cJSON_AddStringToObject(o, "activate", activate_mode_to_string(ucfg(self, i)->activate));
        cJSON_AddStringToObject(o, "type", is_cellular(self, i) ? "cellular" : "wired");
        add_str_or_null(o, "device", f->device);
        add_str_or_null(o, "interface", f->ip_iface[0] ? f->ip_iface : f->device);
        add_str_or_null(o, "nm_state", f->nm_state);
        cJSON_AddStringToObject(o, "connectivity", ca_connectivity_to_string(f->connectivity));
        cJSON_AddBoolToObject(o, "carrier", f->carrier);
        if (!isnan(u->rtt_ms))
            cJSON_AddNumberToObject(o, "rtt_ms", round_ms(u->rtt_ms));
        else
            cJSON_AddNullToObject(o, "rtt_ms");
        if (loss >= 0)
            cJSON_AddNumberToObject(o, "loss", round_ms(loss));
        else
            cJSON_AddNullToObject(o, "loss");
        cJSON_AddItemToObject(o, "probes", probes_json(u));
        if (u->have_round)
            add_ts(o, "last_probe", now_wall_us - (now - u->last_round_at) * 1000);
        else
            cJSON_AddNullToObject(o, "last_probe");
        add_ts(o, "since", now_wall_us - (now - u->state_since) * 1000);
        cJSON_AddNumberToObject(o, "metric", ca_failover_get_metric(self, i));
        cJSON_AddNumberToObject(o, "flaps", flaps);
        cJSON_AddNumberToObject(o, "hold_down", (double) (hold_down(self, i, now) / 1000));
        cJSON_AddBoolToObject(o, "damped", flaps > 1 && self->config->hold_down_ms > 0);
        if (u->ladder.last_step != CA_WD_STEP_NONE) {
            cJSON *w = cJSON_AddObjectToObject(o, "watchdog");
            cJSON_AddStringToObject(w, "last_step", ca_wd_step_to_string(u->ladder.last_step));
            add_ts(w, "last_step_at", now_wall_us - (now - u->ladder.last_step_at) * 1000);
            cJSON_AddNumberToObject(w, "steps", u->ladder.steps_taken);
        }
        if (is_cellular(self, i))
            add_modem_facts(o, f);
    }
    return root;
}
