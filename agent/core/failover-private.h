/* failover-private: the policy's state, shared by the files of the failover module
 * (failover.c: evidence and the run; failover-choose.c: the choice of the active uplink
 * and activation; failover-config.c: its typed settings; failover-report.c: queries,
 * status line and JSON). Nothing outside them includes it. */
#pragma once
#include "failover.h"

#define LOSS_WINDOW             20
#define ACTIVATE_GRACE_MS       3000   /* let NetworkManager's own autoconnect go first */
#define ACTIVATE_BACKOFF_MIN_MS 10000  /* then retry our own activation at this pace */
#define ACTIVATE_BACKOFF_MAX_MS 300000 /* ... doubling up to this */
#define DEACTIVATE_RETRY_MS     30000
#define METRIC_ACTIVE           100   /* the chosen uplink's default route */
#define METRIC_OTHERS           30000 /* + 10 x rank: above NetworkManager's +20000 penalty */
#define METRIC_CELLULAR         25000 /* cellular uplinks, chosen or not: see get_metric */
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
    gint64 alive_at;        /* ca_failover_note_alive, -1 never */
    guint64 passive_rounds; /* rounds passed on that evidence */
    double rtt_ms;          /* last good round's best RTT; NAN when none */
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
    CaFoCap cap;          /* data cap on the cellular uplink */
    gint64 economy_ms;    /* ca_failover_set_economy, 0: off */
};

static inline const CaFoUplinkConfig *
ucfg(const CaFailover *self, guint i)
{
    return &self->config->uplinks[i];
}

static inline gboolean
is_cellular(const CaFailover *self, guint i)
{
    return ucfg(self, i)->cellular || self->up[i].facts.cellular;
}

static inline gboolean
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

static inline gboolean
usable(const CaFailover *self, guint i)
{
    return ucfg(self, i)->activate != CA_ACTIVATE_NEVER && self->up[i].hard_ok &&
           usable_state(self->up[i].state);
}

/* Is uplink i inside a planned outage (the modem's owner disrupts it on purpose) at now?
 * Its failures are then no evidence: no state falls, no failover, no watchdog step. */
static inline gboolean
planned(const CaFailover *self, guint i, gint64 now)
{
    return self->planned && now < self->planned_until && is_cellular(self, i);
}

/* Is uplink i the cellular uplink taken down by a data cap? */
static inline gboolean
capped_off(const CaFailover *self, guint i)
{
    return self->cap == CA_FO_CAP_DISCONNECT && is_cellular(self, i);
}

/* Is uplink i the cellular uplink put last by a data cap? */
static inline gboolean
demoted(const CaFailover *self, guint i)
{
    return self->cap == CA_FO_CAP_NEXT_UPLINK && is_cellular(self, i);
}

/* The priority the choice uses: a demoted uplink comes after every other. */
static inline gint64
choice_priority(const CaFailover *self, guint i)
{
    return demoted(self, i) ? G_MAXINT64 : ucfg(self, i)->priority;
}

static inline guint
count_flaps(const Uplink *u, gint64 now, gint64 window)
{
    guint n = 0;

    for (guint k = 0; k < u->flaps->len; k++) {
        if (now - g_array_index(u->flaps, gint64, k) < window)
            n++;
    }
    return n;
}

gint64 ca_fo_hold_down(const CaFailover *self, guint i, gint64 now);
void ca_fo_set_state(CaFailover *self, guint i, CaUplinkState state, const char *why, gint64 now);
CaFoOut *ca_fo_emit(CaFailover *self, CaFoOutType type, int uplink);
int ca_fo_static_order(const CaFailover *self, guint a, guint b);
CaFoConfig *ca_fo_config_copy(const CaFoConfig *src);
const char *ca_activate_mode_to_string(CaActivateMode m);
void ca_fo_choose(CaFailover *self, gint64 now);
gint64 ca_fo_failback_due(const CaFailover *self, gint64 now);
void ca_fo_manage_activation(CaFailover *self, guint i, gint64 now, gint64 *deadline);
gboolean ca_fo_compute_wanted(const CaFailover *self, guint i);
void ca_fo_mark_missing(CaFailover *self, guint i, gint64 now);
