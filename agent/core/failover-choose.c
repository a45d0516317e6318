/* failover-choose: which uplink carries the default route, and which uplinks are
 * activated (see failover.h). Pure like the rest of the policy. */
#include "failover-private.h"

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
    gint64 pa = choice_priority(self, a), pb = choice_priority(self, b);
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
    return !u->ever_down || now - u->up_since >= ca_fo_hold_down(self, v, now);
}

void
ca_fo_choose(CaFailover *self, gint64 now)
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
    if (pick < 0 && cur >= 0 && usable(self, (guint) cur) && demoted(self, (guint) cur) &&
        (int) cand[0] != cur) {
        /* The data cap puts the cellular uplink last: the best other usable uplink takes
         * the traffic now, up or not yet judged (no hold-down: it is what the plan asks). */
        pick = (int) cand[0];
        kind = CA_FO_SWITCH_FAILOVER;
    }
    if (pick >= 0) {
        /* chosen above */
    } else if (cur >= 0 && usable(self, (guint) cur)) {
        for (guint k = 0; k < nc; k++) {
            guint v = cand[k];
            if ((int) v == cur)
                break;
            if (choice_priority(self, v) >= choice_priority(self, (guint) cur))
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
    o = ca_fo_emit(self, CA_FO_OUT_SWITCH, pick);
    o->from = cur;
    o->kind = kind;
    switch (kind) {
    case CA_FO_SWITCH_INITIAL:
        g_snprintf(o->reason, sizeof o->reason, "%s is %s", ucfg(self, (guint) pick)->name,
                   ca_uplink_state_to_string(self->up[pick].state));
        break;
    case CA_FO_SWITCH_FAILOVER:
        if (usable(self, (guint) cur) && demoted(self, (guint) cur))
            g_snprintf(o->reason, sizeof o->reason, "%s: data plan limit reached (next-uplink)",
                       ucfg(self, (guint) cur)->name);
        else
            g_snprintf(o->reason, sizeof o->reason, "%s %s: %s", ucfg(self, (guint) cur)->name,
                       ca_uplink_state_to_string(self->up[cur].state), self->up[cur].reason);
        break;
    case CA_FO_SWITCH_FAILBACK:
        g_snprintf(o->reason, sizeof o->reason,
                   "%s up for %" G_GINT64_FORMAT " s (hold-down %" G_GINT64_FORMAT " s)",
                   ucfg(self, (guint) pick)->name, (now - self->up[pick].up_since) / 1000,
                   ca_fo_hold_down(self, (guint) pick, now) / 1000);
        break;
    case CA_FO_SWITCH_FORCED:
        g_snprintf(o->reason, sizeof o->reason, "%s forced (%s)", ucfg(self, (guint) pick)->name,
                   ca_uplink_state_to_string(self->up[pick].state));
        break;
    }
    self->active = pick;
    ca_fo_emit(self, CA_FO_OUT_ROUTES, pick);
}

/* When a waiting better uplink becomes eligible (for the deadline). */
gint64
ca_fo_failback_due(const CaFailover *self, gint64 now)
{
    gint64 due = G_MAXINT64;
    int cur = self->active;

    if (cur < 0 || !usable(self, (guint) cur) || cur == self->forced)
        return due; /* (no failback away from the forced uplink) */
    for (guint v = 0; v < self->n; v++) {
        const Uplink *u = &self->up[v];
        if ((int) v == cur || !usable(self, v) || u->state != CA_UPLINK_STATE_UP || !u->ever_down ||
            choice_priority(self, v) >= choice_priority(self, (guint) cur))
            continue;
        due = MIN(due, u->up_since + ca_fo_hold_down(self, v, now));
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

gboolean
ca_fo_compute_wanted(const CaFailover *self, guint i)
{
    if (capped_off(self, i))
        return FALSE;
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
        if (v != i && usable(self, v) && ca_fo_static_order(self, v, i) < 0)
            return FALSE; /* a better uplink carries traffic (or could) */
    }
    return TRUE;
}

void
ca_fo_manage_activation(CaFailover *self, guint i, gint64 now, gint64 *deadline)
{
    Uplink *u = &self->up[i];
    const CaUplinkFacts *f = &u->facts;
    CaFoOut *o;

    u->wanted = ca_fo_compute_wanted(self, i);
    if (!u->have_facts)
        return;
    if (planned(self, i, now)) {
        /* The operation's owner takes the modem down and brings it back; an activation
         * now would fight it. */
        *deadline = MIN(*deadline, self->planned_until);
        return;
    }
    if (!u->wanted) {
        gboolean cap = capped_off(self, i);

        if (ucfg(self, i)->activate != CA_ACTIVATE_ON_DEMAND && !cap)
            return;
        if (u->state != CA_UPLINK_STATE_STANDBY)
            ca_fo_set_state(self, i, CA_UPLINK_STATE_STANDBY,
                            cap ? "data plan limit reached (disconnect)" : "not needed", now);
        u->probing = FALSE;
        u->next_probe = G_MAXINT64;
        if (f->activation == CA_ACTIVATION_ACTIVATING || f->activation == CA_ACTIVATION_ACTIVATED) {
            if (u->last_deactivate < 0 || now - u->last_deactivate >= DEACTIVATE_RETRY_MS) {
                o = ca_fo_emit(self, CA_FO_OUT_DEACTIVATE, (int) i);
                g_strlcpy(o->reason,
                          cap ? "data plan limit reached (at-limit=disconnect)"
                              : "a better uplink carries traffic",
                          sizeof o->reason);
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
        o = ca_fo_emit(self, CA_FO_OUT_ACTIVATE, (int) i);
        g_snprintf(o->reason, sizeof o->reason, "%s, connection inactive (%s)",
                   ucfg(self, i)->activate == CA_ACTIVATE_ON_DEMAND ? "needed" : "always up",
                   u->hard_why);
        u->next_activate = now + u->activate_backoff;
        u->activate_backoff = MIN(u->activate_backoff * 2, ACTIVATE_BACKOFF_MAX_MS);
        *deadline = MIN(*deadline, u->next_activate);
    }
}

/* A wanted uplink that never came up and is not coming up is down, not standby. */
void
ca_fo_mark_missing(CaFailover *self, guint i, gint64 now)
{
    Uplink *u = &self->up[i];
    const CaUplinkFacts *f = &u->facts;

    if (!u->wanted || !u->have_facts || u->state != CA_UPLINK_STATE_STANDBY || u->hard_ok ||
        f->activation != CA_ACTIVATION_NONE || planned(self, i, now))
        return;
    if (!f->device_present || !f->device_ready || !f->carrier ||
        (u->inactive_since >= 0 && now - u->inactive_since >= ACTIVATE_GRACE_MS))
        ca_fo_set_state(self, i, CA_UPLINK_STATE_DOWN, u->hard_why, now);
}
