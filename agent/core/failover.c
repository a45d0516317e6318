/* failover: the pure uplink policy (see failover.h). Nothing here touches a clock,
 * a socket or a daemon: every function gets "now" (CLOCK_BOOTTIME ms) from the caller,
 * so the unit tests drive it through hours of simulated time in microseconds. */
#include "failover-private.h"

#include "probe-spec.h"

#include <math.h>
#include <string.h>

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
/* Construction */

/* Static order: priority, then wired before cellular, then name. */
int
ca_fo_static_order(const CaFailover *self, guint a, guint b)
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
            if (j != i && ca_fo_static_order(self, j, i) < 0)
                r++;
        }
        self->static_rank[i] = r;
    }
}

CaFailover *
ca_failover_new(const CaFoConfig *config, const char *boot_id, gint64 now)
{
    CaFailover *self = g_new0(CaFailover, 1);

    self->config = ca_fo_config_copy(config);
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
        u->alive_at = -1;
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

CaFoOut *
ca_fo_emit(CaFailover *self, CaFoOutType type, int uplink)
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

gint64
ca_fo_hold_down(const CaFailover *self, guint i, gint64 now)
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

void
ca_fo_set_state(CaFailover *self, guint i, CaUplinkState state, const char *why, gint64 now)
{
    Uplink *u = &self->up[i];
    CaFoOut *o;

    if (u->state == state)
        return;
    o = ca_fo_emit(self, CA_FO_OUT_STATE, (int) i);
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

static gboolean
economising(const CaFailover *self, const Uplink *u)
{
    return self->economy_ms > 0 && self->active >= 0 && u == &self->up[self->active];
}

static gint64
period(const CaFailover *self, const Uplink *u)
{
    switch (u->state) {
    case CA_UPLINK_STATE_UP:
        if (economising(self, u))
            return MAX(self->config->interval_ms, self->economy_ms);
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
        ca_fo_set_state(self, i, CA_UPLINK_STATE_SUSPECT, why, now);
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
            ca_fo_set_state(self, i, CA_UPLINK_STATE_DOWN, why, now);
        return;
    }
    if (!was_ok) {
        /* Newly activated: a never-judged or on-demand uplink is usable at once
         * (unknown); a failed one must prove itself (up-after). */
        if (u->state == CA_UPLINK_STATE_STANDBY)
            ca_fo_set_state(self, i, CA_UPLINK_STATE_UNKNOWN, "activated", now);
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

void
ca_failover_set_economy(CaFailover *self, gint64 interval_ms, gint64 now)
{
    interval_ms = MAX(interval_ms, 0);
    if (self->economy_ms == interval_ms)
        return;
    self->economy_ms = interval_ms;
    /* Leaving: back to the normal pace from the last round on, not after a long wait. */
    for (guint i = 0; i < self->n; i++) {
        Uplink *u = &self->up[i];
        gint64 p = period(self, u);

        if (!u->probing && u->next_probe != G_MAXINT64 && p != G_MAXINT64)
            u->next_probe = MIN(u->next_probe, MAX(u->round_started + p, now));
    }
}

void
ca_failover_note_alive(CaFailover *self, int uplink, gint64 now)
{
    if (uplink < 0)
        uplink = self->active;
    if (uplink < 0 || (guint) uplink >= self->n)
        return;
    self->up[uplink].alive_at = now;
}

guint64
ca_failover_get_passive_rounds(const CaFailover *self, guint uplink)
{
    g_return_val_if_fail(uplink < self->n, 0);
    return self->up[uplink].passive_rounds;
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
                ca_fo_set_state(self, i, CA_UPLINK_STATE_UP, why, now);
            }
            break;
        case CA_UPLINK_STATE_SUSPECT:
            ca_fo_set_state(self, i, CA_UPLINK_STATE_UP, "probes answered again", now);
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
                ca_fo_set_state(self, i, CA_UPLINK_STATE_DOWN, why, now);
            } else if (u->state == CA_UPLINK_STATE_UP) {
                g_snprintf(why, sizeof why, "probe round failed: %s", detail);
                ca_fo_set_state(self, i, CA_UPLINK_STATE_SUSPECT, why, now);
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
    if (economising(self, u) && u->state == CA_UPLINK_STATE_UP && u->alive_at >= 0 &&
        u->alive_at > u->round_started) {
        /* Passive health: traffic came in through it since the last round. */
        u->round_started = now;
        u->passive_rounds++;
        u->next_probe = now + period(self, u);
        *deadline = MIN(*deadline, u->next_probe);
        return;
    }
    o = ca_fo_emit(self, CA_FO_OUT_PROBE, (int) i);
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
        CaFoOut *o = ca_fo_emit(self, CA_FO_OUT_WATCHDOG, (int) i);

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
                ca_fo_set_state(self, i, CA_UPLINK_STATE_DOWN, why, now);
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
    ca_fo_choose(self, now);
    for (guint i = 0; i < self->n; i++) {
        ca_fo_manage_activation(self, i, now, &deadline);
        ca_fo_mark_missing(self, i, now);
    }
    /* Taking an on-demand uplink down may change nothing else; choose again in case
     * an activation made one usable. */
    ca_fo_choose(self, now);
    for (guint i = 0; i < self->n; i++) {
        schedule_probes(self, i, now, &deadline);
        if (usable(self, i))
            all_down = FALSE;
    }
    /* Offline because the data cap took cellular down is no reason to reboot. */
    if (self->cap == CA_FO_CAP_DISCONNECT)
        all_down = FALSE;
    for (guint i = 0; self->manager_running && i < self->n; i++)
        run_watchdog(self, i, all_down, now, wall_s, &deadline);
    deadline = MIN(deadline, ca_fo_failback_due(self, now));
    self->next_deadline = deadline;
}

const char *
ca_fo_cap_to_string(CaFoCap cap)
{
    switch (cap) {
    case CA_FO_CAP_NONE:
        return "none";
    case CA_FO_CAP_ESSENTIAL_ONLY:
        return "essential-only";
    case CA_FO_CAP_DISCONNECT:
        return "disconnect";
    case CA_FO_CAP_NEXT_UPLINK:
        return "next-uplink";
    }
    g_assert_not_reached();
}

void
ca_failover_set_cap(CaFailover *self, CaFoCap cap)
{
    if (self->cap == cap)
        return;
    self->cap = cap;
    /* The cellular uplink's routes depend on the cap when it carries the traffic. */
    if (self->active >= 0 && is_cellular(self, (guint) self->active))
        ca_fo_emit(self, CA_FO_OUT_ROUTES, self->active);
}

CaFoCap
ca_failover_get_cap(const CaFailover *self)
{
    return self->cap;
}

gboolean
ca_failover_is_restricted(const CaFailover *self, guint uplink)
{
    return (self->cap == CA_FO_CAP_ESSENTIAL_ONLY || self->cap == CA_FO_CAP_NEXT_UPLINK) &&
           self->active == (int) uplink && is_cellular(self, uplink);
}

gint64
ca_failover_next_deadline(const CaFailover *self)
{
    return self->next_deadline;
}
