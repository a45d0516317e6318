/* Unit tests for the failover policy. A small deterministic simulator plays
 * NetworkManager and the probe runner: it answers PROBE outputs after the RTT or the
 * timeout, completes activations, and records switches, states and watchdog steps, all
 * on an injected clock. Paths: /failover/<area>/<case>. */
#include "autocleanups.h"
#include "failover.h"
#include "probe-spec.h"

#include <math.h>
#include <string.h>

#define S(x)    (1000 * (gint64) (x))
#define MAXU    4
#define RTT_MS  10
#define BOOT_ID "6f1c2d3e-0000-4000-8000-00000000000a"

typedef struct {
    gint64 t;
    int from, to;
    CaFoSwitchKind kind;
} SwitchRec;

typedef struct {
    gint64 t;
    int uplink;
    CaUplinkState from, to;
} StateRec;

typedef struct {
    gint64 t;
    int uplink;
    CaWdStep step;
} StepRec;

typedef struct {
    CaFoConfig *cfg;
    CaFailover *fo;
    gint64 now;
    guint n;
    CaUplinkFacts facts[MAXU];
    gboolean path_ok[MAXU]; /* probes through this uplink get answers */
    double loss[MAXU];      /* per-probe random loss */
    gboolean activatable[MAXU];
    GRand *rand;
    gint64 probe_done_at[MAXU];
    CaProbeRound pending[MAXU];
    gint64 activate_done_at[MAXU];
    GArray *switches, *states, *steps;
    guint n_probe[MAXU], n_activate[MAXU], n_deactivate[MAXU], n_routes;
    guint probes_sent[MAXU];
    guint rounds_ok[MAXU];
} Sim;

/*****************************************************************************/
/* Config */

typedef struct {
    const char *name;
    int priority;
    CaActivateMode activate;
    gboolean cellular;
    guint n_probes;
} UpDef;

static CaFoConfig *
make_config(const UpDef *defs, guint n)
{
    CaFoConfig *c = g_new0(CaFoConfig, 1);

    c->interval_ms = S(20);
    c->fast_interval_ms = S(2);
    c->timeout_ms = S(2);
    c->down_after = 3;
    c->up_after = 3;
    c->hold_down_ms = S(60);
    c->max_hold_down_ms = S(1800);
    c->flap_window_ms = S(1800);
    c->dns_name = g_strdup(".");
    c->watchdog.enabled = TRUE;
    for (int s = CA_WD_STEP_REACTIVATE; s < CA_WD_N_STEPS; s++)
        c->watchdog.step_enabled[s] = TRUE;
    c->watchdog.start_after_ms = S(30);
    c->watchdog.cooldown_ms[CA_WD_STEP_REACTIVATE] = S(60);
    c->watchdog.cooldown_ms[CA_WD_STEP_MODEM_RESET] = S(600);
    c->watchdog.cooldown_ms[CA_WD_STEP_POWER_CYCLE] = S(1800);
    c->watchdog.cooldown_ms[CA_WD_STEP_REBOOT] = S(3600);
    c->watchdog.budget[CA_WD_STEP_MODEM_RESET] = 6;
    c->watchdog.budget[CA_WD_STEP_POWER_CYCLE] = 3;
    c->watchdog.budget[CA_WD_STEP_REBOOT] = 2;
    c->watchdog.healthy_reset_ms = S(600);
    c->watchdog.max_backoff_shift = 4;
    c->n_uplinks = n;
    c->uplinks = g_new0(CaFoUplinkConfig, n);
    for (guint i = 0; i < n; i++) {
        GPtrArray *p = g_ptr_array_new();
        c->uplinks[i].name = g_strdup(defs[i].name);
        c->uplinks[i].connection = g_strdup(defs[i].name);
        c->uplinks[i].priority = defs[i].priority;
        c->uplinks[i].activate = defs[i].activate;
        c->uplinks[i].cellular = defs[i].cellular;
        for (guint k = 0; k < MAX(defs[i].n_probes, 1); k++)
            g_ptr_array_add(p, g_strdup_printf("icmp:192.0.2.%u", k + 1));
        g_ptr_array_add(p, NULL);
        c->uplinks[i].probes = (GStrv) g_ptr_array_free(p, FALSE);
    }
    return c;
}

static const UpDef two_wired[] = {
    {"a-primary", 10, CA_ACTIVATE_ALWAYS, FALSE, 1},
    {"b-backup", 20, CA_ACTIVATE_ALWAYS, FALSE, 1},
};

/*****************************************************************************/
/* Simulator */

static void
activated_facts(CaUplinkFacts *f, const char *dev, gboolean cellular)
{
    ca_uplink_facts_init(f);
    f->device_present = TRUE;
    f->device_ready = TRUE;
    f->activation = CA_ACTIVATION_ACTIVATED;
    f->connectivity = CA_CONNECTIVITY_FULL;
    f->cellular = cellular;
    g_strlcpy(f->device, dev, sizeof f->device);
    g_strlcpy(f->ip_iface, dev, sizeof f->ip_iface);
    g_strlcpy(f->nm_state, "activated", sizeof f->nm_state);
    if (cellular) {
        f->modem_known = TRUE;
        f->modem_present = TRUE;
        f->modem_usable = TRUE;
        f->registered = TRUE;
        f->bearer_connected = TRUE;
        f->signal_quality = 70;
        g_strlcpy(f->modem_state, "connected", sizeof f->modem_state);
        g_strlcpy(f->registration, "home", sizeof f->registration);
    }
}

static Sim *
sim_new(CaFoConfig *cfg, guint32 seed)
{
    Sim *s = g_new0(Sim, 1);

    s->cfg = cfg;
    s->n = cfg->n_uplinks;
    s->now = S(1000);
    s->fo = ca_failover_new(cfg, BOOT_ID, s->now);
    s->rand = g_rand_new_with_seed(seed);
    s->switches = g_array_new(FALSE, FALSE, sizeof(SwitchRec));
    s->states = g_array_new(FALSE, FALSE, sizeof(StateRec));
    s->steps = g_array_new(FALSE, FALSE, sizeof(StepRec));
    for (guint i = 0; i < s->n; i++) {
        g_autofree char *dev = g_strdup_printf("eth%u", i + 1);
        activated_facts(&s->facts[i], dev, cfg->uplinks[i].cellular);
        if (cfg->uplinks[i].activate == CA_ACTIVATE_ON_DEMAND) {
            s->facts[i].activation = CA_ACTIVATION_NONE;
            g_strlcpy(s->facts[i].nm_state, "disconnected", sizeof s->facts[i].nm_state);
        }
        s->path_ok[i] = TRUE;
        s->activatable[i] = TRUE;
        s->probe_done_at[i] = -1;
        s->activate_done_at[i] = -1;
    }
    return s;
}

static void
sim_free(Sim *s)
{
    ca_failover_free(s->fo);
    ca_fo_config_free(s->cfg);
    g_rand_free(s->rand);
    g_array_unref(s->switches);
    g_array_unref(s->states);
    g_array_unref(s->steps);
    g_free(s);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Sim, sim_free)

static void
sim_push_facts(Sim *s, guint i)
{
    ca_failover_set_facts(s->fo, i, &s->facts[i], s->now);
}

static void
start_probe(Sim *s, guint i, CaProbeMode mode)
{
    CaProbeRound *r = &s->pending[i];
    guint n = g_strv_length(s->cfg->uplinks[i].probes);
    gint64 T = s->cfg->timeout_ms, done = 0;
    gboolean any = FALSE;

    memset(r, 0, sizeof *r);
    r->n_results = n;
    for (guint k = 0; k < n; k++) {
        CaProbeResult *p = &r->results[k];
        g_strlcpy(p->target, s->cfg->uplinks[i].probes[k], sizeof p->target);
        p->ok = s->path_ok[i] && !(s->loss[i] > 0 && g_rand_double(s->rand) < s->loss[i]);
        p->rtt_ms = RTT_MS;
        if (!p->ok)
            g_strlcpy(p->error, "timeout", sizeof p->error);
    }
    if (mode == CA_PROBE_MODE_LEAD && r->results[0].ok) {
        r->results[0].sent = TRUE;
        any = TRUE;
        done = RTT_MS;
    } else {
        gint64 base = 0;
        if (mode == CA_PROBE_MODE_LEAD) {
            r->results[0].sent = TRUE;
            base = T;
        }
        for (guint k = mode == CA_PROBE_MODE_LEAD ? 1 : 0; k < n; k++) {
            r->results[k].sent = TRUE;
            any |= r->results[k].ok;
        }
        done = base + (any ? RTT_MS : (n > 1 || base == 0 ? T : 0));
    }
    for (guint k = 0; k < n; k++)
        s->probes_sent[i] += r->results[k].sent;
    r->ok = any;
    s->probe_done_at[i] = s->now + done;
}

static void
drain(Sim *s)
{
    CaFoOut o;

    while (ca_failover_pop(s->fo, &o)) {
        switch (o.type) {
        case CA_FO_OUT_PROBE:
            s->n_probe[o.uplink]++;
            start_probe(s, (guint) o.uplink, o.mode);
            break;
        case CA_FO_OUT_ROUTES:
            s->n_routes++;
            break;
        case CA_FO_OUT_ACTIVATE:
            s->n_activate[o.uplink]++;
            if (s->activatable[o.uplink] && s->facts[o.uplink].device_present)
                s->activate_done_at[o.uplink] = s->now + 200;
            break;
        case CA_FO_OUT_DEACTIVATE:
            s->n_deactivate[o.uplink]++;
            s->facts[o.uplink].activation = CA_ACTIVATION_NONE;
            s->activate_done_at[o.uplink] = -1;
            sim_push_facts(s, (guint) o.uplink);
            break;
        case CA_FO_OUT_WATCHDOG: {
            StepRec r = {s->now, o.uplink, o.step};
            g_array_append_val(s->steps, r);
            if (o.step == CA_WD_STEP_REACTIVATE && s->facts[o.uplink].device_present &&
                s->activatable[o.uplink]) {
                s->facts[o.uplink].activation = CA_ACTIVATION_ACTIVATING;
                sim_push_facts(s, (guint) o.uplink);
                s->activate_done_at[o.uplink] = s->now + 200;
            }
            break;
        }
        case CA_FO_OUT_STATE: {
            StateRec r = {s->now, o.uplink, o.old_state, o.new_state};
            g_assert_cmpint(o.old_state, !=, o.new_state);
            g_array_append_val(s->states, r);
            break;
        }
        case CA_FO_OUT_SWITCH: {
            SwitchRec r = {s->now, o.from, o.uplink, o.kind};
            g_assert_cmpint(o.from, !=, o.uplink);
            g_assert_cmpint(o.from, ==,
                            s->switches->len
                                ? g_array_index(s->switches, SwitchRec, s->switches->len - 1).to
                                : -1);
            g_array_append_val(s->switches, r);
            break;
        }
        }
    }
}

static void
sim_run(Sim *s)
{
    ca_failover_run(s->fo, s->now, 1700000000 + s->now / 1000);
    drain(s);
}

/* Advance the simulated world to t, handling everything due on the way. */
static void
sim_until(Sim *s, gint64 t)
{
    int same = 0;

    sim_run(s);
    for (;;) {
        gint64 next = ca_failover_next_deadline(s->fo);

        for (guint i = 0; i < s->n; i++) {
            if (s->probe_done_at[i] >= 0)
                next = MIN(next, s->probe_done_at[i]);
            if (s->activate_done_at[i] >= 0)
                next = MIN(next, s->activate_done_at[i]);
        }
        if (next > t)
            break;
        g_assert_cmpint(next, >=, s->now);
        same = next == s->now ? same + 1 : 0;
        g_assert_cmpint(same, <, 50); /* no busy loop at one instant */
        s->now = next;
        for (guint i = 0; i < s->n; i++) {
            if (s->activate_done_at[i] >= 0 && s->activate_done_at[i] <= s->now) {
                s->activate_done_at[i] = -1;
                s->facts[i].activation = CA_ACTIVATION_ACTIVATED;
                g_strlcpy(s->facts[i].nm_state, "activated", sizeof s->facts[i].nm_state);
                sim_push_facts(s, i);
            }
            if (s->probe_done_at[i] >= 0 && s->probe_done_at[i] <= s->now) {
                s->probe_done_at[i] = -1;
                s->rounds_ok[i] += s->pending[i].ok;
                ca_failover_probe_done(s->fo, i, &s->pending[i], s->now);
            }
        }
        sim_run(s);
    }
    s->now = t;
    sim_run(s);
}

/* Start: all facts in, then run until every always-uplink is up. */
static Sim *
sim_start(const UpDef *defs, guint n, guint32 seed)
{
    Sim *s = sim_new(make_config(defs, n), seed);

    for (guint i = 0; i < s->n; i++)
        sim_push_facts(s, i);
    sim_until(s, s->now + S(30));
    return s;
}

/* Advance in small steps until uplink i is in state st (or fail after limit). */
static void
sim_until_state(Sim *s, guint i, CaUplinkState st, gint64 limit)
{
    gint64 end = s->now + limit;

    while (ca_failover_get_state(s->fo, i) != st) {
        g_assert_cmpint(s->now, <, end);
        sim_until(s, s->now + 100);
    }
}

static int
active(Sim *s)
{
    return ca_failover_get_active(s->fo);
}

static const SwitchRec *
last_switch(Sim *s)
{
    g_assert_cmpuint(s->switches->len, >, 0);
    return &g_array_index(s->switches, SwitchRec, s->switches->len - 1);
}

static gint64
first_state_time(Sim *s, int uplink, CaUplinkState to, gint64 after)
{
    for (guint k = 0; k < s->states->len; k++) {
        const StateRec *r = &g_array_index(s->states, StateRec, k);
        if (r->uplink == uplink && r->to == to && r->t >= after)
            return r->t;
    }
    return -1;
}

/*****************************************************************************/
/* Config from a CaConfig */

static CaConfig *
load(const char *text)
{
    g_autoptr(GError) error = NULL;
    CaConfig *c = ca_config_load_from_data("test.conf", text, strlen(text), &error);

    g_assert_no_error(error);
    return c;
}

static void
test_config_defaults(void)
{
    g_autoptr(CaConfig) c = load("[agent]\ndevice-id=d\n");
    g_autoptr(CaFoConfig) fc = ca_fo_config_new(c);
    guint64 bytes;
    gint64 worst;

    /* [uplink-cellular] is implied. */
    g_assert_cmpuint(fc->n_uplinks, ==, 1);
    g_assert_cmpstr(fc->uplinks[0].name, ==, "cellular");
    g_assert_true(fc->uplinks[0].cellular);
    g_assert_cmpstr(fc->uplinks[0].connection, ==, "cellular");
    g_assert_cmpint(fc->uplinks[0].priority, ==, 200);
    g_assert_cmpint(fc->uplinks[0].activate, ==, CA_ACTIVATE_ALWAYS);
    g_assert_cmpstr(fc->uplinks[0].probes[0], ==, "icmp:1.1.1.1");
    g_assert_cmpuint(g_strv_length(fc->uplinks[0].probes), ==, 3);
    g_assert_true(fc->watchdog.enabled);
    g_assert_false(fc->watchdog.step_enabled[CA_WD_STEP_REBOOT]);      /* reboot=false */
    g_assert_false(fc->watchdog.step_enabled[CA_WD_STEP_POWER_CYCLE]); /* no command */
    g_assert_true(fc->watchdog.step_enabled[CA_WD_STEP_MODEM_RESET]);

    /* The defaults meet the targets of docs/uplinks.md: idle probe traffic <= 15 MB a month per
     * uplink, silent failure detected well within 40 s (worst case: a lead probe
     * that fails after interval, its fallbacks, then down-after - 1 fast rounds). */
    bytes = ca_fo_idle_bytes_per_month(fc, 0);
    g_assert_cmpuint(bytes, ==, (guint64) (30 * 86400 / 20) * 72);
    g_assert_cmpuint(bytes, <=, 15 * 1000 * 1000);
    worst = fc->interval_ms + 2 * fc->timeout_ms +
            (fc->down_after - 1) * MAX(fc->fast_interval_ms, fc->timeout_ms);
    g_assert_cmpint(worst, <=, S(40) - S(5));
}

static void
test_config_uplinks(void)
{
    g_autoptr(CaConfig) c = load("[agent]\ndevice-id=d\n"
                                 "[cellular]\nconnection=lte\n"
                                 "[uplink-wan]\npriority=10\n"
                                 "[uplink-wifi]\nconnection=home-wifi\nactivate=on-demand\n"
                                 "probes=icmp:10.0.0.1;tcp:[2001:db8::1]:443\n"
                                 "[uplink-cellular]\npriority=50\nactivate=on-demand\n");
    g_autoptr(CaFoConfig) fc = ca_fo_config_new(c);
    int wan = ca_fo_config_find(fc, "wan"), wifi = ca_fo_config_find(fc, "wifi");
    int cell = ca_fo_config_find(fc, "cellular");

    g_assert_cmpuint(fc->n_uplinks, ==, 3);
    g_assert_cmpint(wan, >=, 0);
    g_assert_cmpint(ca_fo_config_find(fc, "nope"), ==, -1);
    g_assert_cmpstr(fc->uplinks[wan].connection, ==, "wan");
    g_assert_cmpint(fc->uplinks[wan].priority, ==, 10);
    g_assert_cmpstr(fc->uplinks[wifi].connection, ==, "home-wifi");
    g_assert_cmpint(fc->uplinks[wifi].priority, ==, 100);
    g_assert_cmpint(fc->uplinks[wifi].activate, ==, CA_ACTIVATE_ON_DEMAND);
    g_assert_cmpstr(fc->uplinks[wifi].probes[1], ==, "tcp:[2001:db8::1]:443");
    g_assert_cmpstr(fc->uplinks[cell].connection, ==, "lte");
    g_assert_cmpint(fc->uplinks[cell].priority, ==, 50);
    g_assert_true(fc->uplinks[cell].cellular);
    g_assert_false(fc->uplinks[wan].cellular);
}

static void
test_config_invalid(void)
{
    const char *const bad[] = {
        "[uplink-x]\nprobes=ping:1.2.3.4\n",
        "[uplink-x]\nprobes=\n",
        "[health]\nprobes=icmp:host.example\n",
        "[health]\nprobes=tcp:1.2.3.4\n",
        "[uplink-x]\nactivate=sometimes\n",
        "[watchdog]\nsteps=reactivate;explode\n",
        "[health]\ninterval=0\n",
        "[health]\ndns-name=a..b\n",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *text = g_strconcat("[agent]\ndevice-id=d\n", bad[i], NULL);
        g_autoptr(CaConfig) c = ca_config_load_from_data("t.conf", text, strlen(text), &error);
        g_assert_null(c);
        g_assert_nonnull(error);
    }
}

/*****************************************************************************/
/* Probe specs */

typedef struct {
    const char *text;
    gboolean ok;
    CaProbeKind kind;
    const char *host;
    guint port;
} SpecCase;

static const SpecCase spec_cases[] = {
    {"icmp:192.0.2.1", TRUE, CA_PROBE_ICMP, "192.0.2.1", 0},
    {"icmp:2001:db8::1", TRUE, CA_PROBE_ICMP, "2001:db8::1", 0},
    {"icmp:[2001:db8::1]", TRUE, CA_PROBE_ICMP, "2001:db8::1", 0},
    {"icmp:192.0.2.1:5", FALSE},
    {"icmp:example.com", FALSE},
    {"tcp:mqtt", TRUE, CA_PROBE_TCP, "mqtt", 0},
    {"tcp:broker.example.com:8883", TRUE, CA_PROBE_TCP, "broker.example.com", 8883},
    {"tcp:[2001:db8::1]:443", TRUE, CA_PROBE_TCP, "2001:db8::1", 443},
    {"tcp:192.0.2.1", FALSE},
    {"tcp:192.0.2.1:0", FALSE},
    {"tcp:192.0.2.1:70000", FALSE},
    {"tcp:bad host:1", FALSE},
    {"dns:192.0.2.53", TRUE, CA_PROBE_DNS, "192.0.2.53", 53},
    {"dns:192.0.2.53:5353", TRUE, CA_PROBE_DNS, "192.0.2.53", 5353},
    {"dns:resolver.example", FALSE},
    {"http:192.0.2.1", FALSE},
    {"icmp:", FALSE},
    {"", FALSE},
};

static void
test_probe_spec(gconstpointer data)
{
    const SpecCase *c = data;
    CaProbeSpec s;
    g_autofree char *why = NULL;
    gboolean ok = ca_probe_spec_parse(c->text, &s, &why);

    g_assert_cmpint(ok, ==, c->ok);
    if (!ok) {
        g_assert_nonnull(why);
        return;
    }
    g_assert_cmpint(s.kind, ==, c->kind);
    g_assert_cmpstr(s.host, ==, c->host);
    g_assert_cmpuint(s.port, ==, c->port);
    g_assert_cmpuint(ca_probe_spec_cost(&s), >, 0);
}

/*****************************************************************************/
/* Start-up and choice */

static void
test_initial_choice(void)
{
    g_autoptr(Sim) s = sim_start(two_wired, 2, 1);

    g_assert_cmpint(active(s), ==, 0);
    g_assert_cmpuint(s->switches->len, ==, 1);
    g_assert_cmpint(last_switch(s)->kind, ==, CA_FO_SWITCH_INITIAL);
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_UP);
    g_assert_cmpint(ca_failover_get_state(s->fo, 1), ==, CA_UPLINK_STATE_UP);
    g_assert_cmpuint(ca_failover_get_metric(s->fo, 0), <, ca_failover_get_metric(s->fo, 1));
    /* Both keep being probed, at interval, one probe per round. */
    {
        guint before = s->n_probe[1];
        sim_until(s, s->now + S(200));
        g_assert_cmpuint(s->n_probe[1] - before, ==, 10);
        g_assert_cmpuint(s->switches->len, ==, 1);
    }
}

static void
test_equal_priority_sticky(void)
{
    static const UpDef defs[] = {
        {"a", 10, CA_ACTIVATE_ALWAYS, FALSE, 1},
        {"b", 10, CA_ACTIVATE_ALWAYS, FALSE, 1},
    };
    g_autoptr(Sim) s = sim_start(defs, 2, 1);
    guint n;

    g_assert_cmpint(active(s), ==, 0);
    n = s->switches->len;
    /* a in doubt (one failed round) while b is fine: traffic stays on a. */
    s->path_ok[0] = FALSE;
    sim_until_state(s, 0, CA_UPLINK_STATE_SUSPECT, S(30));
    s->path_ok[0] = TRUE;
    sim_until(s, s->now + S(60));
    g_assert_cmpuint(s->switches->len, ==, n);
    g_assert_cmpint(active(s), ==, 0);
}

static void
test_wired_preferred_over_cellular_at_equal_priority(void)
{
    static const UpDef defs[] = {
        {"a-cell", 10, CA_ACTIVATE_ALWAYS, TRUE, 1},
        {"b-wired", 10, CA_ACTIVATE_ALWAYS, FALSE, 1},
    };
    g_autoptr(Sim) s = sim_start(defs, 2, 1);

    g_assert_cmpint(active(s), ==, 1);
}

/* NetworkManager 1.52 keeps a DHCP modem bearer's activation-time metric in the kernel
 * whatever is reapplied later, so each metric the cellular uplink is ever given must
 * route correctly in both roles: above the chosen uplink even with NetworkManager's
 * +20000 penalty, below every uplink that is not chosen. */
static void
test_cellular_metric_band(void)
{
    static const UpDef defs[] = {
        {"a-wired", 10, CA_ACTIVATE_ALWAYS, FALSE, 1},
        {"b-cell", 20, CA_ACTIVATE_ALWAYS, TRUE, 1},
    };
    g_autoptr(Sim) s = sim_start(defs, 2, 1);
    guint32 chosen_wired, demoted_wired, cell[2];

    g_assert_cmpint(active(s), ==, 0);
    chosen_wired = ca_failover_get_metric(s->fo, 0);
    cell[0] = ca_failover_get_metric(s->fo, 1);
    s->facts[0].carrier = FALSE;
    sim_push_facts(s, 0);
    sim_run(s);
    g_assert_cmpint(active(s), ==, 1);
    demoted_wired = ca_failover_get_metric(s->fo, 0);
    cell[1] = ca_failover_get_metric(s->fo, 1);
    g_assert_cmpuint(cell[1], <=, cell[0]);
    for (guint k = 0; k < 2; k++) {
        g_assert_cmpuint(chosen_wired + 20000, <, cell[k]);
        g_assert_cmpuint(cell[k], <, demoted_wired);
    }
}

/*****************************************************************************/
/* Failure kinds */

static void
test_carrier_loss_immediate(void)
{
    g_autoptr(Sim) s = sim_start(two_wired, 2, 1);
    gint64 t0;

    t0 = s->now + S(7);
    sim_until(s, t0);
    s->facts[0].carrier = FALSE;
    sim_push_facts(s, 0);
    sim_run(s);
    g_assert_cmpint(active(s), ==, 1);
    g_assert_cmpint(last_switch(s)->t, ==, t0);
    g_assert_cmpint(last_switch(s)->kind, ==, CA_FO_SWITCH_FAILOVER);
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_DOWN);
}

typedef struct {
    const char *name;
    void (*apply)(CaUplinkFacts *f);
} HardCase;

static void
hard_deactivated(CaUplinkFacts *f)
{
    f->activation = CA_ACTIVATION_NONE;
    g_strlcpy(f->nm_state, "disconnected", sizeof f->nm_state);
    g_strlcpy(f->nm_reason, "ip-config-unavailable", sizeof f->nm_reason);
}
static void
hard_deactivating(CaUplinkFacts *f)
{
    f->activation = CA_ACTIVATION_DEACTIVATING;
}
static void
hard_no_device(CaUplinkFacts *f)
{
    f->device_present = FALSE;
    f->device_ready = FALSE;
    f->activation = CA_ACTIVATION_NONE;
}
static void
hard_no_carrier(CaUplinkFacts *f)
{
    f->carrier = FALSE;
}
static void
hard_modem_absent(CaUplinkFacts *f)
{
    f->modem_present = FALSE;
}
static void
hard_modem_failed(CaUplinkFacts *f)
{
    f->modem_usable = FALSE;
    g_strlcpy(f->modem_state, "failed", sizeof f->modem_state);
}

static const HardCase hard_cases[] = {
    {"deactivated", hard_deactivated},   {"deactivating", hard_deactivating},
    {"no-device", hard_no_device},       {"no-carrier", hard_no_carrier},
    {"modem-absent", hard_modem_absent}, {"modem-failed", hard_modem_failed},
};

static void
test_hard_evidence(gconstpointer data)
{
    const HardCase *hc = data;
    static const UpDef defs[] = {
        {"a-cell", 10, CA_ACTIVATE_ALWAYS, TRUE, 1},
        {"b-wired", 20, CA_ACTIVATE_ALWAYS, FALSE, 1},
    };
    g_autoptr(Sim) s = sim_start(defs, 2, 1);
    g_autoptr(cJSON) ev = NULL;

    g_assert_cmpint(active(s), ==, 0);
    hc->apply(&s->facts[0]);
    s->activatable[0] = FALSE;
    sim_push_facts(s, 0);
    sim_run(s);
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_DOWN);
    g_assert_cmpint(active(s), ==, 1);
    ev = ca_failover_evidence_json(s->fo, 0, s->now);
    g_assert_cmpstr(cJSON_GetObjectItem(ev, "state")->valuestring, ==, "down");
    g_assert_nonnull(cJSON_GetObjectItem(ev, "modem"));
}

static void
test_silent_blackhole_bound(void)
{
    /* Break the primary's path at 50 phases across one probe interval; the switch
     * must always come within interval + 2 timeouts + (down-after - 1) fast rounds. */
    gint64 worst = 0, best = G_MAXINT64;

    for (int phase = 0; phase < 50; phase++) {
        g_autoptr(Sim) s = sim_start(two_wired, 2, 1);
        gint64 t0, dt;

        t0 = s->now + S(20) * phase / 50 + 1;
        sim_until(s, t0);
        s->path_ok[0] = FALSE;
        sim_until(s, t0 + S(60));
        g_assert_cmpint(active(s), ==, 1);
        g_assert_cmpint(last_switch(s)->kind, ==, CA_FO_SWITCH_FAILOVER);
        dt = last_switch(s)->t - t0;
        worst = MAX(worst, dt);
        best = MIN(best, dt);
    }
    /* One probe per round: the lead's timeout, then two fast rounds. */
    g_assert_cmpint(worst, <=, S(20) + S(2) + 2 * S(2));
    g_assert_cmpint(best, >=, 3 * S(2));
    g_test_message("silent failure detected in %" G_GINT64_FORMAT "..%" G_GINT64_FORMAT " ms", best,
                   worst);
}

static void
test_single_loss_no_switch(void)
{
    g_autoptr(Sim) s = sim_start(two_wired, 2, 1);
    guint n = s->switches->len;
    gint64 t0 = s->now;

    /* Two failed rounds in a row (one short of down-after), then answers again. */
    s->path_ok[0] = FALSE;
    sim_until_state(s, 0, CA_UPLINK_STATE_SUSPECT, S(30));
    /* The second (fast) round went out with the first verdict, and fails too. */
    s->path_ok[0] = TRUE;
    sim_until(s, t0 + S(120));
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_UP);
    g_assert_cmpuint(s->switches->len, ==, n);
    g_assert_cmpint(first_state_time(s, 0, CA_UPLINK_STATE_DOWN, t0), ==, -1);
}

static void
test_up_after_hysteresis(void)
{
    g_autoptr(Sim) s = sim_start(two_wired, 2, 1);
    gint64 t_fail, t_up;
    guint ok0;

    s->path_ok[0] = FALSE;
    sim_until(s, s->now + S(60));
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_DOWN);
    /* Answers again: needs up-after (3) good rounds; a failure in between restarts. */
    s->path_ok[0] = TRUE;
    ok0 = s->rounds_ok[0];
    while (s->rounds_ok[0] == ok0)
        sim_until(s, s->now + 100);
    s->path_ok[0] = FALSE; /* the confirming round goes out now and fails */
    sim_until(s, s->now + 100);
    t_fail = s->now;
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_DOWN);
    sim_until(s, s->now + S(3));
    s->path_ok[0] = TRUE;
    sim_until(s, s->now + S(60));
    t_up = first_state_time(s, 0, CA_UPLINK_STATE_UP, t_fail);
    g_assert_cmpint(t_up, >=, t_fail + 2 * S(2));
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_UP);
}

/*****************************************************************************/
/* Failback */

static void
test_failback_after_hold_down(void)
{
    g_autoptr(Sim) s = sim_start(two_wired, 2, 1);
    gint64 t_up, t_fail = s->now;

    s->facts[0].carrier = FALSE;
    sim_push_facts(s, 0);
    sim_until(s, s->now + S(5));
    g_assert_cmpint(active(s), ==, 1);
    s->facts[0].carrier = TRUE;
    sim_push_facts(s, 0);
    sim_until(s, s->now + S(30));
    t_up = first_state_time(s, 0, CA_UPLINK_STATE_UP, t_fail);
    g_assert_cmpint(t_up, >, 0);
    /* Not before hold-down ... */
    sim_until(s, t_up + S(60) - 1);
    g_assert_cmpint(active(s), ==, 1);
    /* ... and right when it ends. */
    sim_until(s, t_up + S(60));
    g_assert_cmpint(active(s), ==, 0);
    g_assert_cmpint(last_switch(s)->kind, ==, CA_FO_SWITCH_FAILBACK);
    g_assert_cmpint(last_switch(s)->t, ==, t_up + S(60));
}

static void
test_failover_to_recovering_primary_when_backup_dies(void)
{
    g_autoptr(Sim) s = sim_start(two_wired, 2, 1);

    s->facts[0].carrier = FALSE;
    sim_push_facts(s, 0);
    sim_until(s, s->now + S(5));
    s->facts[0].carrier = TRUE;
    sim_push_facts(s, 0);
    sim_until(s, s->now + S(20)); /* primary up again, in hold-down */
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_UP);
    g_assert_cmpint(active(s), ==, 1);
    s->facts[1].carrier = FALSE;
    sim_push_facts(s, 1);
    sim_run(s);
    g_assert_cmpint(active(s), ==, 0);
    g_assert_cmpint(last_switch(s)->kind, ==, CA_FO_SWITCH_FAILOVER);
}

static void
test_flap_damping(void)
{
    g_autoptr(Sim) s = sim_start(two_wired, 2, 1);
    gint64 t0 = s->now, end = t0 + S(3600);
    guint switches0 = s->switches->len, switches;
    g_autoptr(cJSON) link = NULL;
    cJSON *a;

    /* The primary's carrier flaps: 90 s up, 10 s down, for an hour. */
    while (s->now < end) {
        s->facts[0].carrier = FALSE;
        sim_push_facts(s, 0);
        sim_until(s, s->now + S(10));
        s->facts[0].carrier = TRUE;
        sim_push_facts(s, 0);
        sim_until(s, s->now + S(90));
    }
    switches = s->switches->len - switches0;
    /* Without damping: two switches per flap (72). The hold-down doubles per flap, so
     * failbacks get rare: at most one switch per (growing) hold-down. */
    g_assert_cmpuint(switches, <=, 3600 / 60);
    g_assert_cmpuint(switches, <=, 6);
    g_assert_cmpuint(ca_failover_get_flaps(s->fo, 0, s->now), >=, 10);
    g_assert_cmpint(ca_failover_get_hold_down(s->fo, 0, s->now), ==, S(1800));
    link = ca_failover_link_json(s->fo, s->now, 0);
    a = cJSON_GetObjectItem(cJSON_GetObjectItem(link, "uplinks"), "a-primary");
    g_assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a, "damped")));
    g_assert_cmpint(cJSON_GetObjectItem(a, "hold_down")->valueint, ==, 1800);
    /* Once it is stable for the flap window and the hold-down, traffic returns. */
    sim_until(s, s->now + S(1800) + S(1800) + S(60));
    g_assert_cmpint(active(s), ==, 0);
    g_assert_cmpint(ca_failover_get_flaps(s->fo, 0, s->now), ==, 0);
}

static void
run_loss(double loss, guint down_after, gint64 duration, guint32 seed, guint *out_switches,
         guint *out_downs)
{
    g_autoptr(Sim) s = sim_new(make_config(two_wired, 2), seed);
    guint sw0;

    s->cfg->down_after = down_after;
    ca_failover_free(s->fo);
    s->fo = ca_failover_new(s->cfg, BOOT_ID, s->now);
    for (guint i = 0; i < s->n; i++)
        sim_push_facts(s, i);
    sim_until(s, s->now + S(30));
    sw0 = s->switches->len;
    s->loss[0] = loss;
    sim_until(s, s->now + duration);
    *out_switches = s->switches->len - sw0;
    *out_downs = 0;
    for (guint k = 0; k < s->states->len; k++) {
        const StateRec *r = &g_array_index(s->states, StateRec, k);
        *out_downs += r->uplink == 0 && r->to == CA_UPLINK_STATE_DOWN;
    }
}

static void
test_loss_1pct(void)
{
    /* 1 % random loss on the primary's probes, a simulated day per seed: no switch. */
    for (guint32 seed = 1; seed <= 5; seed++) {
        guint sw, downs;
        run_loss(0.01, 3, S(86400), seed, &sw, &downs);
        g_assert_cmpuint(sw, ==, 0);
        g_assert_cmpuint(downs, ==, 0);
    }
}

static void
test_loss_10pct_damped(void)
{
    /* 10 % loss and a hair trigger (down-after=2): the primary does go down now and
     * then; switches stay within one per hold-down thanks to damping. */
    guint sw, downs;

    run_loss(0.10, 2, S(6 * 3600), 7, &sw, &downs);
    g_assert_cmpuint(downs, >, 0);
    g_assert_cmpuint(sw, <=, 6 * 3600 / 60);
    g_assert_cmpuint(sw, <=, 2 * downs);
    g_test_message("10%% loss, 6 h: %u downs, %u switches", downs, sw);
}

/*****************************************************************************/
/* On-demand, all down, activation */

static void
test_on_demand_backup(void)
{
    static const UpDef defs[] = {
        {"a-wired", 10, CA_ACTIVATE_ALWAYS, FALSE, 1},
        {"b-cell", 20, CA_ACTIVATE_ON_DEMAND, TRUE, 1},
    };
    g_autoptr(Sim) s = sim_start(defs, 2, 1);
    gint64 t_fail, t_up;
    guint probes_idle;

    g_assert_cmpint(active(s), ==, 0);
    g_assert_cmpuint(s->n_activate[1], ==, 0);
    g_assert_cmpint(ca_failover_get_state(s->fo, 1), ==, CA_UPLINK_STATE_STANDBY);
    probes_idle = s->n_probe[1];
    sim_until(s, s->now + S(600));
    g_assert_cmpuint(s->n_probe[1], ==, probes_idle); /* standby costs nothing */
    g_assert_cmpuint(probes_idle, ==, 0);

    /* Primary dies: the backup is activated at once and takes traffic when up. */
    t_fail = s->now;
    s->facts[0].carrier = FALSE;
    sim_push_facts(s, 0);
    sim_run(s);
    g_assert_cmpuint(s->n_activate[1], ==, 1);
    sim_until(s, s->now + S(1));
    g_assert_cmpint(active(s), ==, 1);
    g_assert_cmpint(last_switch(s)->t - t_fail, <=, 200);

    /* Primary back: failback after hold-down, then the backup goes down again. */
    s->facts[0].carrier = TRUE;
    sim_push_facts(s, 0);
    sim_until(s, s->now + S(120));
    t_up = first_state_time(s, 0, CA_UPLINK_STATE_UP, t_fail);
    g_assert_cmpint(active(s), ==, 0);
    g_assert_cmpint(last_switch(s)->t, ==, t_up + S(60));
    g_assert_cmpuint(s->n_deactivate[1], ==, 1);
    g_assert_cmpint(s->facts[1].activation, ==, CA_ACTIVATION_NONE);
    g_assert_cmpint(ca_failover_get_state(s->fo, 1), ==, CA_UPLINK_STATE_STANDBY);
}

static void
test_on_demand_autoconnected_is_taken_down(void)
{
    static const UpDef defs[] = {
        {"a-wired", 10, CA_ACTIVATE_ALWAYS, FALSE, 1},
        {"b-cell", 20, CA_ACTIVATE_ON_DEMAND, TRUE, 1},
    };
    g_autoptr(Sim) s = sim_new(make_config(defs, 2), 1);

    /* NetworkManager brought the backup up by itself. */
    s->facts[1].activation = CA_ACTIVATION_ACTIVATED;
    for (guint i = 0; i < s->n; i++)
        sim_push_facts(s, i);
    sim_until(s, s->now + S(30));
    g_assert_cmpint(active(s), ==, 0);
    g_assert_cmpuint(s->n_deactivate[1], ==, 1);
    g_assert_cmpint(ca_failover_get_state(s->fo, 1), ==, CA_UPLINK_STATE_STANDBY);
}

static void
test_all_down_keeps_trying(void)
{
    static const UpDef defs[] = {
        {"a-wired", 10, CA_ACTIVATE_ALWAYS, FALSE, 1},
        {"b-wired", 20, CA_ACTIVATE_ALWAYS, FALSE, 1},
    };
    g_autoptr(Sim) s = sim_start(defs, 2, 1);
    guint p0, p1, n;

    s->path_ok[0] = s->path_ok[1] = FALSE;
    sim_until(s, s->now + S(60));
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_DOWN);
    g_assert_cmpint(ca_failover_get_state(s->fo, 1), ==, CA_UPLINK_STATE_DOWN);
    /* The last choice stays (the routes are left alone), both keep being probed
     * and both get the watchdog. */
    n = s->switches->len;
    g_assert_cmpint(active(s), >=, 0);
    p0 = s->n_probe[0];
    p1 = s->n_probe[1];
    sim_until(s, s->now + S(600));
    g_assert_cmpuint(s->switches->len, ==, n);
    g_assert_cmpuint(s->n_probe[0] - p0, >=, 25);
    g_assert_cmpuint(s->n_probe[1] - p1, >=, 25);
    {
        guint w0 = 0, w1 = 0;
        for (guint k = 0; k < s->steps->len; k++) {
            const StepRec *r = &g_array_index(s->steps, StepRec, k);
            w0 += r->uplink == 0;
            w1 += r->uplink == 1;
        }
        g_assert_cmpuint(w0, >, 0);
        g_assert_cmpuint(w1, >, 0);
    }
    /* Whichever comes back first takes traffic. */
    s->path_ok[1] = TRUE;
    sim_until(s, s->now + S(60));
    g_assert_cmpint(active(s), ==, 1);
}

static void
test_activates_inactive_always_uplink(void)
{
    g_autoptr(Sim) s = sim_start(two_wired, 2, 1);
    gint64 t0;

    /* NetworkManager gave up on the backup (autoconnect blocked): it stays inactive
     * and cannot be activated for a while; our activations back off. */
    t0 = s->now;
    s->facts[1].activation = CA_ACTIVATION_NONE;
    s->activatable[1] = FALSE;
    sim_push_facts(s, 1);
    sim_until(s, t0 + S(3) - 1);
    g_assert_cmpuint(s->n_activate[1], ==, 0); /* NetworkManager's autoconnect first */
    sim_until(s, t0 + S(3));
    g_assert_cmpuint(s->n_activate[1], ==, 1);
    sim_until(s, t0 + S(3) + S(10) + S(20) + S(40));
    g_assert_cmpuint(s->n_activate[1], ==, 4);
    sim_until(s, t0 + S(3600));
    g_assert_cmpuint(s->n_activate[1], <=, 4 + 3600 / 300 + 1);
    /* Then it works again. */
    s->activatable[1] = TRUE;
    sim_until(s, s->now + S(400));
    g_assert_cmpint(s->facts[1].activation, ==, CA_ACTIVATION_ACTIVATED);
    g_assert_cmpint(ca_failover_get_state(s->fo, 1), ==, CA_UPLINK_STATE_UP);
}

/*****************************************************************************/
/* Passive evidence */

typedef struct {
    const char *name;
    void (*apply)(CaUplinkFacts *f);
} SoftCase;

static void
soft_limited(CaUplinkFacts *f)
{
    f->connectivity = CA_CONNECTIVITY_LIMITED;
}
static void
soft_none(CaUplinkFacts *f)
{
    f->connectivity = CA_CONNECTIVITY_NONE;
}
static void
soft_unregistered(CaUplinkFacts *f)
{
    f->registered = FALSE;
    g_strlcpy(f->registration, "searching", sizeof f->registration);
}
static void
soft_bearer(CaUplinkFacts *f)
{
    f->bearer_connected = FALSE;
}

static const SoftCase soft_cases[] = {
    {"connectivity-limited", soft_limited},
    {"connectivity-none", soft_none},
    {"registration-lost", soft_unregistered},
    {"bearer-dropped", soft_bearer},
};

static void
test_soft_evidence(gconstpointer data)
{
    const SoftCase *sc = data;
    static const UpDef defs[] = {
        {"a-cell", 10, CA_ACTIVATE_ALWAYS, TRUE, 2},
        {"b-wired", 20, CA_ACTIVATE_ALWAYS, FALSE, 1},
    };
    g_autoptr(Sim) s = sim_start(defs, 2, 1);
    guint probes;
    gint64 t0 = s->now;

    sim_until(s, t0 + S(5)); /* between rounds */
    probes = s->n_probe[0];
    sc->apply(&s->facts[0]);
    sim_push_facts(s, 0);
    sim_run(s);
    /* Probing fast at once, every probe, and the state says why ... */
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_SUSPECT);
    g_assert_cmpuint(s->n_probe[0], ==, probes + 1);
    /* ... but while probes answer, traffic stays (data still flows). */
    sim_until(s, s->now + S(60));
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_UP);
    g_assert_cmpint(active(s), ==, 0);
    /* The same evidence with a dead path: down after the fast rounds, not interval. */
    sim_until(s, s->now + S(5));
    {
        CaUplinkFacts ok;
        activated_facts(&ok, "eth1", TRUE);
        s->facts[0] = ok;
        sim_push_facts(s, 0);
        sim_run(s);
    }
    s->path_ok[0] = FALSE;
    t0 = s->now;
    sc->apply(&s->facts[0]);
    sim_push_facts(s, 0);
    sim_until(s, t0 + S(3) * 2 + 500);
    g_assert_cmpint(active(s), ==, 1);
}

static void
test_note_trouble(void)
{
    g_autoptr(Sim) s = sim_start(two_wired, 2, 1);
    guint probes;

    sim_until(s, s->now + S(5));
    probes = s->n_probe[0];
    ca_failover_note_trouble(s->fo, -1, "MQTT socket error", s->now);
    sim_run(s);
    g_assert_cmpuint(s->n_probe[0], ==, probes + 1);
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_SUSPECT);
}

/*****************************************************************************/
/* Every state x every fact change */

typedef enum {
    FACT_CARRIER_LOST,
    FACT_DEACTIVATED,
    FACT_DEVICE_GONE,
    FACT_ACTIVATED,
    FACT_CONNECTIVITY_LIMITED,
    FACT_REGISTRATION_LOST,
    FACT_MODEM_GONE,
    N_FACTS,
} FactChange;

static const char *const fact_names[] = {
    "carrier-lost",      "deactivated",       "device-gone", "activated",
    "connectivity-drop", "registration-lost", "modem-gone",
};

/* Bring uplink 0 (cellular, priority 10) into state st. */
static Sim *
sim_in_state(CaUplinkState st)
{
    static const UpDef defs[] = {
        {"a-cell", 10, CA_ACTIVATE_ALWAYS, TRUE, 1},
        {"b-wired", 20, CA_ACTIVATE_ALWAYS, FALSE, 1},
    };
    static const UpDef defs_od[] = {
        {"a-cell", 30, CA_ACTIVATE_ON_DEMAND, TRUE, 1},
        {"b-wired", 20, CA_ACTIVATE_ALWAYS, FALSE, 1},
    };
    Sim *s;

    switch (st) {
    case CA_UPLINK_STATE_STANDBY:
        s = sim_start(defs_od, 2, 1);
        break;
    case CA_UPLINK_STATE_UNKNOWN:
        s = sim_new(make_config(defs, 2), 1);
        for (guint i = 0; i < s->n; i++)
            sim_push_facts(s, i);
        sim_run(s);
        break;
    case CA_UPLINK_STATE_UP:
        s = sim_start(defs, 2, 1);
        break;
    case CA_UPLINK_STATE_SUSPECT:
        s = sim_start(defs, 2, 1);
        ca_failover_note_trouble(s->fo, 0, "test", s->now);
        sim_run(s);
        break;
    case CA_UPLINK_STATE_DOWN:
    default:
        s = sim_start(defs, 2, 1);
        s->path_ok[0] = FALSE;
        sim_until(s, s->now + S(60));
        s->path_ok[0] = TRUE;
        break;
    }
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, st);
    return s;
}

typedef struct {
    CaUplinkState from;
    FactChange change;
    CaUplinkState to;
} MatrixCase;

static void
test_matrix(gconstpointer data)
{
    const MatrixCase *mc = data;
    g_autoptr(Sim) s = sim_in_state(mc->from);
    CaUplinkFacts *f = &s->facts[0];

    if (mc->change == FACT_ACTIVATED) {
        /* From not activated to activated. */
        f->activation = CA_ACTIVATION_NONE;
        sim_push_facts(s, 0);
        f->activation = CA_ACTIVATION_ACTIVATED;
        sim_push_facts(s, 0);
        sim_run(s);
        g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, mc->to);
        return;
    }
    switch (mc->change) {
    case FACT_CARRIER_LOST:
        f->carrier = FALSE;
        break;
    case FACT_DEACTIVATED:
        f->activation = CA_ACTIVATION_NONE;
        break;
    case FACT_DEVICE_GONE:
        f->device_present = FALSE;
        f->device_ready = FALSE;
        f->activation = CA_ACTIVATION_NONE;
        break;
    case FACT_CONNECTIVITY_LIMITED:
        f->connectivity = CA_CONNECTIVITY_LIMITED;
        break;
    case FACT_REGISTRATION_LOST:
        f->registered = FALSE;
        break;
    case FACT_MODEM_GONE:
        f->modem_present = FALSE;
        break;
    case FACT_ACTIVATED:
    case N_FACTS:
        g_assert_not_reached();
    }
    s->activatable[0] = FALSE;
    sim_push_facts(s, 0);
    sim_run(s);
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, mc->to);
}

static GPtrArray *matrix_cases;

static void
add_matrix_tests(void)
{
    /* Expected state after each change, per starting state. */
    static const CaUplinkState D = CA_UPLINK_STATE_DOWN, SB = CA_UPLINK_STATE_STANDBY,
                               SU = CA_UPLINK_STATE_SUSPECT, UN = CA_UPLINK_STATE_UNKNOWN;
    static const CaUplinkState expect[5][N_FACTS] = {
        /* carrier deact  gone  activ  conn  reg   modem */
        [CA_UPLINK_STATE_STANDBY] = {SB, SB, SB, SB, SB, SB, SB},
        [CA_UPLINK_STATE_UNKNOWN] = {D, D, D, D, UN, UN, D},
        [CA_UPLINK_STATE_UP] = {D, D, D, D, SU, SU, D},
        [CA_UPLINK_STATE_SUSPECT] = {D, D, D, D, SU, SU, D},
        [CA_UPLINK_STATE_DOWN] = {D, D, D, D, D, D, D},
    };

    matrix_cases = g_ptr_array_new_with_free_func(g_free);
    for (int st = CA_UPLINK_STATE_STANDBY; st <= CA_UPLINK_STATE_DOWN; st++) {
        for (int fc = 0; fc < N_FACTS; fc++) {
            MatrixCase *mc = g_new0(MatrixCase, 1);
            g_autofree char *path = NULL;

            mc->from = st;
            mc->change = fc;
            mc->to = expect[st][fc];
            g_ptr_array_add(matrix_cases, mc);
            path = g_strdup_printf("/failover/matrix/%s/%s", ca_uplink_state_to_string(st),
                                   fact_names[fc]);
            g_test_add_data_func(path, mc, test_matrix);
        }
    }
}

/*****************************************************************************/
/* Watchdog through the policy */

static void
test_watchdog_cellular_only(void)
{
    static const UpDef defs[] = {{"cellular", 200, CA_ACTIVATE_ALWAYS, TRUE, 1}};
    g_autoptr(Sim) s = sim_start(defs, 1, 1);
    gint64 t0;
    static const CaWdStep order[] = {CA_WD_STEP_REACTIVATE, CA_WD_STEP_MODEM_RESET,
                                     CA_WD_STEP_POWER_CYCLE, CA_WD_STEP_REBOOT};

    /* The data session silently dies for good. */
    t0 = s->now;
    s->path_ok[0] = FALSE;
    sim_until(s, t0 + S(3 * 3600));
    g_assert_cmpuint(s->steps->len, >=, 4);
    for (guint k = 0; k < 4; k++)
        g_assert_cmpint(g_array_index(s->steps, StepRec, k).step, ==, order[k]);
    /* reactivate 30 s after down; the rest after each cooldown */
    {
        gint64 t_down = first_state_time(s, 0, CA_UPLINK_STATE_DOWN, t0);
        g_assert_cmpint(g_array_index(s->steps, StepRec, 0).t, ==, t_down + S(30));
        g_assert_cmpint(g_array_index(s->steps, StepRec, 1).t, ==, t_down + S(90));
        g_assert_cmpint(g_array_index(s->steps, StepRec, 2).t, ==, t_down + S(690));
        g_assert_cmpint(g_array_index(s->steps, StepRec, 3).t, ==, t_down + S(2490));
    }
    g_assert_cmpuint(ca_watchdog_used(ca_failover_get_watchdog(s->fo), CA_WD_STEP_REBOOT, s->now),
                     <=, 2);
}

static void
test_watchdog_holds_while_recovering(void)
{
    static const UpDef defs[] = {{"cellular", 200, CA_ACTIVATE_ALWAYS, TRUE, 1}};
    g_autoptr(Sim) s = sim_start(defs, 1, 1);
    gint64 t_down;

    s->path_ok[0] = FALSE;
    sim_until_state(s, 0, CA_UPLINK_STATE_DOWN, S(60));
    t_down = s->now;
    sim_until(s, t_down + S(29));
    /* The path answers again just before the first step is due: while the probes
     * confirm it (up-after), the watchdog must not tear it down. */
    s->path_ok[0] = TRUE;
    ca_failover_note_trouble(s->fo, 0, "test: probe now", s->now);
    sim_until(s, t_down + S(60));
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_UP);
    g_assert_cmpuint(s->steps->len, ==, 0);
}

static void
test_device_ready_resets_activation_backoff(void)
{
    g_autoptr(Sim) s = sim_start(two_wired, 2, 1);
    CaWdConfig wd = *ca_watchdog_get_config(ca_failover_get_watchdog(s->fo));
    gint64 t0;
    guint n;

    wd.enabled = FALSE; /* only the activation rule here */
    ca_watchdog_set_config(ca_failover_get_watchdog(s->fo), &wd);
    /* Long outage: our activations back off to minutes ... */
    s->facts[1].activation = CA_ACTIVATION_NONE;
    s->activatable[1] = FALSE;
    sim_push_facts(s, 1);
    sim_until(s, s->now + S(600));
    n = s->n_activate[1];
    /* ... then the device goes away and comes back ready: activation within the grace. */
    s->facts[1].device_ready = FALSE;
    sim_push_facts(s, 1);
    sim_run(s);
    s->facts[1].device_ready = TRUE;
    s->activatable[1] = TRUE;
    t0 = s->now;
    sim_push_facts(s, 1);
    sim_until(s, t0 + S(3) + 300);
    g_assert_cmpuint(s->n_activate[1], ==, n + 1);
    g_assert_cmpint(s->facts[1].activation, ==, CA_ACTIVATION_ACTIVATED);
}

static void
test_watchdog_holds_without_manager(void)
{
    static const UpDef defs[] = {{"cellular", 200, CA_ACTIVATE_ALWAYS, TRUE, 1}};
    g_autoptr(Sim) s = sim_start(defs, 1, 1);

    /* NetworkManager stopped: no device, nothing to re-activate, no reboot. */
    ca_failover_set_manager_running(s->fo, FALSE);
    s->facts[0].device_present = s->facts[0].device_ready = FALSE;
    s->facts[0].activation = CA_ACTIVATION_NONE;
    sim_push_facts(s, 0);
    sim_until(s, s->now + S(3600));
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_DOWN);
    g_assert_cmpuint(s->steps->len, ==, 0);
    /* Back: the ladder starts (the device is still missing). */
    ca_failover_set_manager_running(s->fo, TRUE);
    sim_until(s, s->now + S(31));
    g_assert_cmpuint(s->steps->len, ==, 1);
}

static void
test_watchdog_not_for_standby_or_while_another_works(void)
{
    static const UpDef defs[] = {
        {"a-wired", 10, CA_ACTIVATE_ALWAYS, FALSE, 1},
        {"b-cell", 20, CA_ACTIVATE_ON_DEMAND, TRUE, 1},
        {"c-cell", 30, CA_ACTIVATE_ALWAYS, TRUE, 1},
    };
    g_autoptr(Sim) s = sim_start(defs, 3, 1);

    /* c dies: only re-activation, modem reset and power cycle, never a reboot while
     * a works; the standby b gets nothing. */
    s->path_ok[2] = FALSE;
    sim_until(s, s->now + S(6 * 3600));
    g_assert_cmpuint(s->steps->len, >, 0);
    for (guint k = 0; k < s->steps->len; k++) {
        const StepRec *r = &g_array_index(s->steps, StepRec, k);
        g_assert_cmpint(r->uplink, ==, 2);
        g_assert_cmpint(r->step, !=, CA_WD_STEP_REBOOT);
    }
}

/*****************************************************************************/
/* Output */

static void
test_link_json(void)
{
    static const UpDef defs[] = {
        {"a-wired", 10, CA_ACTIVATE_ALWAYS, FALSE, 2},
        {"cellular", 200, CA_ACTIVATE_ALWAYS, TRUE, 1},
    };
    g_autoptr(Sim) s = sim_start(defs, 2, 1);
    g_autoptr(cJSON) j = ca_failover_link_json(s->fo, s->now, G_GINT64_CONSTANT(1700000000123456));
    cJSON *a, *c, *probes;
    g_autofree char *status = ca_failover_status_line(s->fo);

    g_assert_cmpstr(cJSON_GetObjectItem(j, "ts")->valuestring, ==, "2023-11-14T22:13:20.123Z");
    g_assert_cmpstr(cJSON_GetObjectItem(j, "active")->valuestring, ==, "a-wired");
    a = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "uplinks"), "a-wired");
    c = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "uplinks"), "cellular");
    g_assert_nonnull(a);
    g_assert_nonnull(c);
    g_assert_cmpstr(cJSON_GetObjectItem(a, "state")->valuestring, ==, "up");
    g_assert_cmpstr(cJSON_GetObjectItem(a, "device")->valuestring, ==, "eth1");
    g_assert_cmpstr(cJSON_GetObjectItem(a, "interface")->valuestring, ==, "eth1");
    g_assert_cmpstr(cJSON_GetObjectItem(a, "connectivity")->valuestring, ==, "full");
    g_assert_cmpstr(cJSON_GetObjectItem(a, "type")->valuestring, ==, "wired");
    g_assert_cmpfloat(cJSON_GetObjectItem(a, "rtt_ms")->valuedouble, ==, RTT_MS);
    g_assert_cmpfloat(cJSON_GetObjectItem(a, "loss")->valuedouble, ==, 0);
    g_assert_cmpint(cJSON_GetObjectItem(a, "metric")->valueint, ==, 100);
    g_assert_true(cJSON_IsString(cJSON_GetObjectItem(a, "since")));
    g_assert_true(cJSON_IsString(cJSON_GetObjectItem(a, "last_probe")));
    probes = cJSON_GetObjectItem(a, "probes");
    g_assert_cmpint(cJSON_GetArraySize(probes), ==, 1); /* lead probe only */
    g_assert_cmpstr(cJSON_GetObjectItem(c, "type")->valuestring, ==, "cellular");
    g_assert_cmpstr(
        cJSON_GetObjectItem(cJSON_GetObjectItem(c, "modem"), "registration")->valuestring, ==,
        "home");
    g_assert_nonnull(strstr(status, "uplink a-wired up (eth1)"));
    g_assert_nonnull(strstr(status, "cellular up"));
}

/*****************************************************************************/
/* Forced uplink (cmd/uplink) */

static void
test_force_and_auto(void)
{
    g_autoptr(Sim) s = sim_start(two_wired, 2, 1);
    guint switches;

    g_assert_cmpint(active(s), ==, 0);
    g_assert_cmpint(ca_failover_get_forced(s->fo), ==, -1);
    g_assert_false(ca_failover_force(s->fo, 2));
    g_assert_false(ca_failover_force(s->fo, -2));
    /* Forced to the backup: it takes over at once, whatever the priorities. */
    g_assert_true(ca_failover_force(s->fo, 1));
    sim_run(s);
    g_assert_cmpint(active(s), ==, 1);
    g_assert_cmpint(last_switch(s)->kind, ==, CA_FO_SWITCH_FORCED);
    g_assert_cmpstr(ca_fo_switch_kind_to_string(CA_FO_SWITCH_FORCED), ==, "forced");
    g_assert_cmpint(ca_failover_get_metric(s->fo, 1), <, ca_failover_get_metric(s->fo, 0));
    /* It stays there: no failback to the healthy primary, and no busy deadline. */
    switches = s->switches->len;
    sim_until(s, s->now + S(600));
    g_assert_cmpint(active(s), ==, 1);
    g_assert_cmpuint(s->switches->len, ==, switches);
    /* Back to automatic: the primary takes over at the next run (it has been up for
     * longer than hold-down). */
    g_assert_true(ca_failover_force(s->fo, -1));
    sim_run(s);
    g_assert_cmpint(active(s), ==, 0);
    g_assert_cmpint(last_switch(s)->kind, ==, CA_FO_SWITCH_FAILBACK);
}

static void
test_force_falls_back_while_down(void)
{
    g_autoptr(Sim) s = sim_start(two_wired, 2, 1);
    gint64 t_fail, t_up;

    g_assert_true(ca_failover_force(s->fo, 1));
    sim_run(s);
    g_assert_cmpint(active(s), ==, 1);
    /* The forced uplink dies: the device stays online on the other one. */
    t_fail = s->now;
    s->facts[1].carrier = FALSE;
    sim_push_facts(s, 1);
    sim_run(s);
    g_assert_cmpint(active(s), ==, 0);
    g_assert_cmpint(last_switch(s)->kind, ==, CA_FO_SWITCH_FAILOVER);
    /* Back once it is up again, without waiting for hold-down. */
    s->facts[1].carrier = TRUE;
    sim_push_facts(s, 1);
    sim_until(s, s->now + S(30));
    t_up = first_state_time(s, 1, CA_UPLINK_STATE_UP, t_fail);
    g_assert_cmpint(t_up, >, 0);
    g_assert_cmpint(active(s), ==, 1);
    g_assert_cmpint(last_switch(s)->kind, ==, CA_FO_SWITCH_FORCED);
    g_assert_cmpint(last_switch(s)->t, ==, t_up);
    g_assert_cmpint(ca_failover_get_forced(s->fo), ==, 1);
}

static void
test_force_on_demand(void)
{
    static const UpDef defs[] = {
        {"a-wired", 10, CA_ACTIVATE_ALWAYS, FALSE, 1},
        {"b-cell", 20, CA_ACTIVATE_ON_DEMAND, TRUE, 1},
        {"c-never", 30, CA_ACTIVATE_NEVER, FALSE, 1},
    };
    g_autoptr(Sim) s = sim_start(defs, 3, 1);

    g_assert_false(ca_failover_force(s->fo, 2)); /* not managed */
    g_assert_cmpint(ca_failover_get_state(s->fo, 1), ==, CA_UPLINK_STATE_STANDBY);
    g_assert_true(ca_failover_force(s->fo, 1));
    sim_run(s);
    /* Activated for the force, and it takes traffic once usable. */
    g_assert_cmpuint(s->n_activate[1], ==, 1);
    g_assert_true(ca_failover_is_wanted(s->fo, 1));
    sim_until(s, s->now + S(30));
    g_assert_cmpint(active(s), ==, 1);
    /* Automatic again: traffic back on the wired uplink, the on-demand one goes down. */
    g_assert_true(ca_failover_force(s->fo, -1));
    sim_until(s, s->now + S(5));
    g_assert_cmpint(active(s), ==, 0);
    g_assert_cmpuint(s->n_deactivate[1], ==, 1);
}

static void
test_force_link_json(void)
{
    g_autoptr(Sim) s = sim_start(two_wired, 2, 1);
    g_autoptr(cJSON) before = ca_failover_link_json(s->fo, s->now, 0);
    g_autoptr(cJSON) after = NULL;

    g_assert_true(cJSON_IsNull(cJSON_GetObjectItem(before, "forced")));
    ca_failover_force(s->fo, 1);
    sim_run(s);
    after = ca_failover_link_json(s->fo, s->now, 0);
    g_assert_cmpstr(cJSON_GetObjectItem(after, "forced")->valuestring, ==, "b-backup");
    g_assert_cmpstr(cJSON_GetObjectItem(after, "active")->valuestring, ==, "b-backup");
}

/*****************************************************************************/
/* Planned outages: the modem's owner disrupts the cellular uplink on purpose */

static const UpDef cellular_first[] = {
    {"cellular", 10, CA_ACTIVATE_ALWAYS, TRUE, 1},
    {"wan", 20, CA_ACTIVATE_ALWAYS, FALSE, 1},
};

/* What a modem reset or a resync's disable/enable looks like from the policy's side. */
static void
modem_goes_away(Sim *s, guint i)
{
    s->path_ok[i] = FALSE;
    s->activatable[i] = FALSE;
    s->facts[i].activation = CA_ACTIVATION_NONE;
    s->facts[i].modem_usable = FALSE;
    s->facts[i].registered = FALSE;
    s->facts[i].bearer_connected = FALSE;
    g_strlcpy(s->facts[i].nm_state, "disconnected", sizeof s->facts[i].nm_state);
    g_strlcpy(s->facts[i].modem_state, "disabled", sizeof s->facts[i].modem_state);
    sim_push_facts(s, i);
}

static void
modem_comes_back(Sim *s, guint i)
{
    g_autofree char *dev = g_strdup_printf("eth%u", i + 1);

    activated_facts(&s->facts[i], dev, TRUE);
    s->path_ok[i] = TRUE;
    s->activatable[i] = TRUE;
    sim_push_facts(s, i);
}

static guint
count_steps(Sim *s, int uplink)
{
    guint n = 0;

    for (guint k = 0; k < s->steps->len; k++)
        n += g_array_index(s->steps, StepRec, k).uplink == uplink;
    return n;
}

static void
test_planned_no_failover(void)
{
    g_autoptr(Sim) s = sim_start(cellular_first, 2, 1);
    guint states, switches, activations;

    g_assert_cmpint(active(s), ==, 0);
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_UP);
    states = s->states->len;
    switches = s->switches->len;
    activations = s->n_activate[0];
    /* A resync: the modem is disabled for 90 s (registration, bearer and connection
     * gone, probes fail, MQTT drops), within the 300 s limit. */
    ca_failover_set_planned_outage(s->fo, TRUE, S(300), s->now);
    g_assert_true(ca_failover_in_planned_outage(s->fo, s->now));
    modem_goes_away(s, 0);
    ca_failover_note_trouble(s->fo, -1, "MQTT connection lost", s->now);
    sim_until(s, s->now + S(90));
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_UP);
    g_assert_cmpuint(s->states->len, ==, states);
    g_assert_cmpuint(s->switches->len, ==, switches);
    g_assert_cmpuint(count_steps(s, 0), ==, 0);
    g_assert_cmpuint(s->n_activate[0], ==, activations); /* no fight with the owner */
    g_assert_cmpfloat(ca_failover_get_loss(s->fo, 0), <=, 0.0);
    /* It comes back and the owner says so: nothing moved, and it stays so. */
    modem_comes_back(s, 0);
    ca_failover_set_planned_outage(s->fo, FALSE, 0, s->now);
    g_assert_false(ca_failover_in_planned_outage(s->fo, s->now));
    sim_until(s, s->now + S(600));
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_UP);
    g_assert_cmpuint(s->states->len, ==, states);
    g_assert_cmpuint(s->switches->len, ==, switches);
    g_assert_cmpuint(count_steps(s, 0), ==, 0);
}

static void
test_planned_no_watchdog_step(void)
{
    static const UpDef defs[] = {{"cellular", 200, CA_ACTIVATE_ALWAYS, TRUE, 1}};
    g_autoptr(Sim) s = sim_start(defs, 1, 1);
    gint64 t_end;

    /* The only uplink: without the planned outage this is "all down" and the ladder
     * would climb to reactivate after 30 s and further. */
    ca_failover_set_planned_outage(s->fo, TRUE, S(1800), s->now);
    modem_goes_away(s, 0);
    sim_until(s, s->now + S(900));
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_UP);
    g_assert_cmpuint(s->steps->len, ==, 0);
    /* Ended while the modem is still gone: judged at once, the ladder starts then. */
    t_end = s->now;
    ca_failover_set_planned_outage(s->fo, FALSE, 0, s->now);
    sim_until(s, s->now + 1);
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_DOWN);
    sim_until(s, t_end + S(120));
    g_assert_cmpuint(s->steps->len, >=, 1);
    g_assert_cmpint(g_array_index(s->steps, StepRec, 0).step, ==, CA_WD_STEP_REACTIVATE);
    g_assert_cmpint(g_array_index(s->steps, StepRec, 0).t, ==, t_end + S(30));
}

static void
test_planned_limit(void)
{
    g_autoptr(Sim) s = sim_start(cellular_first, 2, 1);
    gint64 t0;

    /* A hung operation: it never ends. After its limit the failures count again. */
    t0 = s->now;
    ca_failover_set_planned_outage(s->fo, TRUE, S(120), s->now);
    modem_goes_away(s, 0);
    sim_until(s, t0 + S(119));
    g_assert_cmpint(active(s), ==, 0);
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_UP);
    sim_until(s, t0 + S(120));
    g_assert_false(ca_failover_in_planned_outage(s->fo, s->now));
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_DOWN);
    g_assert_cmpint(active(s), ==, 1);
    g_assert_cmpint(last_switch(s)->kind, ==, CA_FO_SWITCH_FAILOVER);
    g_assert_cmpint(last_switch(s)->t, ==, t0 + S(120));
    /* ... and the watchdog takes over from there. */
    sim_until(s, t0 + S(120 + 31));
    g_assert_cmpuint(count_steps(s, 0), ==, 1);
    g_assert_cmpint(g_array_index(s->steps, StepRec, 0).t, ==, t0 + S(150));
}

static void
test_planned_probe_failures_after_end(void)
{
    g_autoptr(Sim) s = sim_start(cellular_first, 2, 1);
    gint64 t_end;

    /* The connection is back at the end, but the path is not: the probes decide, with
     * their usual hysteresis, from the end on. */
    ca_failover_set_planned_outage(s->fo, TRUE, S(300), s->now);
    modem_goes_away(s, 0);
    sim_until(s, s->now + S(60));
    modem_comes_back(s, 0);
    s->path_ok[0] = FALSE;
    t_end = s->now;
    ca_failover_set_planned_outage(s->fo, FALSE, 0, s->now);
    sim_until_state(s, 0, CA_UPLINK_STATE_DOWN, S(30));
    g_assert_cmpint(first_state_time(s, 0, CA_UPLINK_STATE_SUSPECT, t_end), <=, t_end + S(3));
    g_assert_cmpint(active(s), ==, 1);
}

static void
test_planned_wired_unaffected(void)
{
    g_autoptr(Sim) s = sim_start(two_wired, 2, 1);

    /* Only the cellular uplink is exempt: a wired primary still fails over. */
    ca_failover_set_planned_outage(s->fo, TRUE, S(300), s->now);
    s->facts[0].carrier = FALSE;
    sim_push_facts(s, 0);
    sim_until(s, s->now + 1);
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_DOWN);
    g_assert_cmpint(active(s), ==, 1);
}

/*****************************************************************************/
/* Data caps (the plan's at-limit action) */

static const UpDef cellular_only[] = {{"cellular", 200, CA_ACTIVATE_ALWAYS, TRUE, 1}};

/* disconnect: the cellular connection goes down and stays down, no watchdog step for it,
 * no reboot although nothing is usable; lifted, it comes back. */
static void
test_cap_disconnect(void)
{
    g_autoptr(Sim) s = sim_start(cellular_only, 1, 1);
    guint activations;

    g_assert_cmpint(active(s), ==, 0);
    ca_failover_set_cap(s->fo, CA_FO_CAP_DISCONNECT);
    g_assert_cmpint(ca_failover_get_cap(s->fo), ==, CA_FO_CAP_DISCONNECT);
    sim_until(s, s->now + 1);
    g_assert_cmpuint(s->n_deactivate[0], ==, 1);
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_STANDBY);
    g_assert_false(ca_failover_is_wanted(s->fo, 0));
    g_assert_false(ca_failover_any_usable(s->fo));
    g_assert_false(ca_failover_is_restricted(s->fo, 0));
    activations = s->n_activate[0];
    /* A day offline by choice: no activation, no watchdog step (no reboot either). */
    sim_until(s, s->now + S(86400));
    g_assert_cmpuint(s->n_activate[0], ==, activations);
    g_assert_cmpuint(s->steps->len, ==, 0);
    g_assert_cmpuint(s->n_deactivate[0], ==, 1);
    /* The cycle ends: wanted again and activated. */
    ca_failover_set_cap(s->fo, CA_FO_CAP_NONE);
    sim_until_state(s, 0, CA_UPLINK_STATE_UP, S(120));
    g_assert_cmpuint(s->n_activate[0], >, activations);
    g_assert_cmpint(active(s), ==, 0);
}

/* With a wired uplink down as well, disconnect still never reboots the device. */
static void
test_cap_disconnect_no_reboot(void)
{
    static const UpDef defs[] = {{"cellular", 200, CA_ACTIVATE_ALWAYS, TRUE, 1},
                                 {"wan", 10, CA_ACTIVATE_ALWAYS, FALSE, 1}};
    g_autoptr(Sim) s = sim_start(defs, 2, 1);

    s->path_ok[1] = FALSE;
    ca_failover_set_cap(s->fo, CA_FO_CAP_DISCONNECT);
    sim_until(s, s->now + S(6 * 3600));
    for (guint k = 0; k < s->steps->len; k++) {
        g_assert_cmpint(g_array_index(s->steps, StepRec, k).uplink, ==, 1);
        g_assert_cmpint(g_array_index(s->steps, StepRec, k).step, !=, CA_WD_STEP_REBOOT);
    }
    g_assert_cmpuint(count_steps(s, 0), ==, 0);
}

/* essential-only: cellular keeps its place; restricted only while it carries the traffic. */
static void
test_cap_essential_only(void)
{
    g_autoptr(Sim) s = sim_start(cellular_first, 2, 1);
    guint routes = s->n_routes, switches = s->switches->len;

    g_assert_cmpint(active(s), ==, 0);
    g_assert_false(ca_failover_is_restricted(s->fo, 0));
    ca_failover_set_cap(s->fo, CA_FO_CAP_ESSENTIAL_ONLY);
    g_assert_true(ca_failover_is_restricted(s->fo, 0));
    g_assert_false(ca_failover_is_restricted(s->fo, 1));
    g_assert_cmpuint(s->n_routes, ==, routes); /* queued: popped at the next run */
    sim_until(s, s->now + S(600));
    g_assert_cmpuint(s->n_routes, ==, routes + 1);
    g_assert_cmpuint(s->switches->len, ==, switches); /* no switch, no deactivation */
    g_assert_cmpuint(s->n_deactivate[0], ==, 0);
    /* Cellular fails: wan carries the traffic, cellular is not restricted then. */
    s->path_ok[0] = FALSE;
    sim_until_state(s, 0, CA_UPLINK_STATE_DOWN, S(60));
    g_assert_cmpint(active(s), ==, 1);
    g_assert_false(ca_failover_is_restricted(s->fo, 0));
    ca_failover_set_cap(s->fo, CA_FO_CAP_NONE);
    g_assert_false(ca_failover_is_restricted(s->fo, 0));
}

/* next-uplink: a worse wired uplink takes the traffic at once (no hold-down); cellular
 * is restricted only while nothing else is usable; lifted, cellular gets it back after the
 * usual hold-down. */
static void
test_cap_next_uplink(void)
{
    g_autoptr(Sim) s = sim_start(cellular_first, 2, 1);
    gint64 t_cap;

    g_assert_cmpint(active(s), ==, 0);
    t_cap = s->now;
    ca_failover_set_cap(s->fo, CA_FO_CAP_NEXT_UPLINK);
    sim_until(s, s->now + 1);
    g_assert_cmpint(active(s), ==, 1);
    g_assert_cmpint(last_switch(s)->kind, ==, CA_FO_SWITCH_FAILOVER);
    g_assert_cmpint(last_switch(s)->t, <=, t_cap + 1);
    g_assert_false(ca_failover_is_restricted(s->fo, 0));
    g_assert_cmpuint(s->n_deactivate[0], ==, 0); /* stays up as the last resort */
    /* wan fails: cellular carries the traffic again, restricted. */
    s->path_ok[1] = FALSE;
    sim_until_state(s, 1, CA_UPLINK_STATE_DOWN, S(60));
    g_assert_cmpint(active(s), ==, 0);
    g_assert_true(ca_failover_is_restricted(s->fo, 0));
    /* wan recovers: back to it as soon as it is up (no hold-down for a demoted uplink). */
    s->path_ok[1] = TRUE;
    sim_until_state(s, 1, CA_UPLINK_STATE_UP, S(60));
    sim_until(s, s->now + 1);
    g_assert_cmpint(active(s), ==, 1);
    /* Lifted: cellular is the better priority again, after its hold-down. */
    ca_failover_set_cap(s->fo, CA_FO_CAP_NONE);
    sim_until(s, s->now + S(120));
    g_assert_cmpint(active(s), ==, 0);
}

static void
test_cap_link_json(void)
{
    g_autoptr(Sim) s = sim_start(cellular_first, 2, 1);
    g_autoptr(cJSON) none = ca_failover_link_json(s->fo, s->now, 0);
    g_autoptr(cJSON) capped = NULL;

    g_assert_true(cJSON_IsNull(cJSON_GetObjectItem(none, "cap")));
    ca_failover_set_cap(s->fo, CA_FO_CAP_ESSENTIAL_ONLY);
    capped = ca_failover_link_json(s->fo, s->now, 0);
    g_assert_cmpstr(cJSON_GetStringValue(cJSON_GetObjectItem(capped, "cap")), ==, "essential-only");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/failover/config/defaults", test_config_defaults);
    g_test_add_func("/failover/cap/disconnect", test_cap_disconnect);
    g_test_add_func("/failover/cap/disconnect-no-reboot", test_cap_disconnect_no_reboot);
    g_test_add_func("/failover/cap/essential-only", test_cap_essential_only);
    g_test_add_func("/failover/cap/next-uplink", test_cap_next_uplink);
    g_test_add_func("/failover/cap/link-json", test_cap_link_json);
    g_test_add_func("/failover/config/uplinks", test_config_uplinks);
    g_test_add_func("/failover/config/invalid", test_config_invalid);
    for (gsize i = 0; i < G_N_ELEMENTS(spec_cases); i++) {
        g_autofree char *path = g_strdup_printf("/failover/probe-spec/%zu", i);
        g_test_add_data_func(path, &spec_cases[i], test_probe_spec);
    }
    g_test_add_func("/failover/choice/initial", test_initial_choice);
    g_test_add_func("/failover/choice/equal-priority-sticky", test_equal_priority_sticky);
    g_test_add_func("/failover/choice/cellular-metric-band", test_cellular_metric_band);
    g_test_add_func("/failover/choice/wired-before-cellular",
                    test_wired_preferred_over_cellular_at_equal_priority);
    g_test_add_func("/failover/fail/carrier-loss", test_carrier_loss_immediate);
    for (gsize i = 0; i < G_N_ELEMENTS(hard_cases); i++) {
        g_autofree char *path = g_strdup_printf("/failover/fail/hard/%s", hard_cases[i].name);
        g_test_add_data_func(path, &hard_cases[i], test_hard_evidence);
    }
    g_test_add_func("/failover/fail/silent-blackhole-bound", test_silent_blackhole_bound);
    g_test_add_func("/failover/hysteresis/single-loss", test_single_loss_no_switch);
    g_test_add_func("/failover/hysteresis/up-after", test_up_after_hysteresis);
    g_test_add_func("/failover/failback/hold-down", test_failback_after_hold_down);
    g_test_add_func("/failover/failback/backup-dies-in-hold-down",
                    test_failover_to_recovering_primary_when_backup_dies);
    g_test_add_func("/failover/flap/damping", test_flap_damping);
    g_test_add_func("/failover/flap/loss-1pct", test_loss_1pct);
    g_test_add_func("/failover/flap/loss-10pct", test_loss_10pct_damped);
    g_test_add_func("/failover/on-demand/backup", test_on_demand_backup);
    g_test_add_func("/failover/on-demand/autoconnected",
                    test_on_demand_autoconnected_is_taken_down);
    g_test_add_func("/failover/all-down/keeps-trying", test_all_down_keeps_trying);
    g_test_add_func("/failover/activation/inactive-always", test_activates_inactive_always_uplink);
    for (gsize i = 0; i < G_N_ELEMENTS(soft_cases); i++) {
        g_autofree char *path = g_strdup_printf("/failover/passive/%s", soft_cases[i].name);
        g_test_add_data_func(path, &soft_cases[i], test_soft_evidence);
    }
    g_test_add_func("/failover/passive/note-trouble", test_note_trouble);
    add_matrix_tests();
    g_test_add_func("/failover/watchdog/cellular-only", test_watchdog_cellular_only);
    g_test_add_func("/failover/watchdog/scope",
                    test_watchdog_not_for_standby_or_while_another_works);
    g_test_add_func("/failover/watchdog/holds-without-manager",
                    test_watchdog_holds_without_manager);
    g_test_add_func("/failover/watchdog/holds-while-recovering",
                    test_watchdog_holds_while_recovering);
    g_test_add_func("/failover/activation/device-ready-resets-backoff",
                    test_device_ready_resets_activation_backoff);
    g_test_add_func("/failover/output/link-json", test_link_json);
    g_test_add_func("/failover/force/and-auto", test_force_and_auto);
    g_test_add_func("/failover/force/falls-back-while-down", test_force_falls_back_while_down);
    g_test_add_func("/failover/force/on-demand", test_force_on_demand);
    g_test_add_func("/failover/force/link-json", test_force_link_json);
    g_test_add_func("/failover/planned/no-failover", test_planned_no_failover);
    g_test_add_func("/failover/planned/no-watchdog-step", test_planned_no_watchdog_step);
    g_test_add_func("/failover/planned/limit", test_planned_limit);
    g_test_add_func("/failover/planned/probes-after-end", test_planned_probe_failures_after_end);
    g_test_add_func("/failover/planned/wired-unaffected", test_planned_wired_unaffected);
    {
        int rc = g_test_run();
        g_ptr_array_unref(matrix_cases);
        return rc;
    }
}
