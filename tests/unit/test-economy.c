/* Unit tests for economy mode: the metered mapping, the decision, the figures' arithmetic
 * and settings, the telemetry publisher's economy policy, and passive health in the
 * failover policy (rounds passed on traffic, leaving economy within one normal round).
 * Paths: /economy/<area>/<case>. */
#include "autocleanups.h"
#include "economy-settings.h"
#include "economy.h"
#include "failover.h"
#include "telemetry-publisher.h"

#include <string.h>

#define S(x)    (1000 * (gint64) (x))
#define BOOT_ID "6f1c2d3e-0000-4000-8000-00000000000b"

/*****************************************************************************/
/* The decision */

typedef struct {
    CaEconomyMode mode;
    gboolean have;
    CaMetered metered;
    gboolean on;
} DecideCase;

static const DecideCase decide_cases[] = {
    {CA_ECONOMY_MODE_AUTO, TRUE, CA_METERED_YES, TRUE},
    {CA_ECONOMY_MODE_AUTO, TRUE, CA_METERED_GUESS_YES, TRUE},
    {CA_ECONOMY_MODE_AUTO, TRUE, CA_METERED_NO, FALSE},
    {CA_ECONOMY_MODE_AUTO, TRUE, CA_METERED_GUESS_NO, FALSE},
    {CA_ECONOMY_MODE_AUTO, TRUE, CA_METERED_UNKNOWN, FALSE},
    {CA_ECONOMY_MODE_AUTO, FALSE, CA_METERED_YES, FALSE},
    {CA_ECONOMY_MODE_ON, FALSE, CA_METERED_UNKNOWN, TRUE},
    {CA_ECONOMY_MODE_ON, TRUE, CA_METERED_NO, TRUE},
    {CA_ECONOMY_MODE_OFF, TRUE, CA_METERED_YES, FALSE},
    {CA_ECONOMY_MODE_OFF, TRUE, CA_METERED_GUESS_YES, FALSE},
};

static void
test_decide(void)
{
    for (guint i = 0; i < G_N_ELEMENTS(decide_cases); i++) {
        const DecideCase *c = &decide_cases[i];
        const char *why = NULL;

        g_assert_cmpint(ca_economy_decide(c->mode, c->have, c->metered, &why), ==, c->on);
        g_assert_nonnull(why);
    }
    g_assert_cmpstr(ca_metered_to_string(CA_METERED_GUESS_YES), ==, "guess-yes");
    g_assert_cmpstr(ca_metered_to_string(CA_METERED_GUESS_NO), ==, "guess-no");
    g_assert_cmpstr(ca_metered_to_string(CA_METERED_UNKNOWN), ==, "unknown");
    g_assert_cmpstr(ca_economy_mode_to_string(CA_ECONOMY_MODE_AUTO), ==, "auto");
}

static void
test_figures(void)
{
    CaTelemetryPolicy normal = {60, 10, 5, 3.0}, out;
    CaEconomyPolicy e = {.telemetry = {3600, 1800, 15, 8.0}};

    /* Never more frequent nor more sensitive than the normal setting; 0 stays 0. */
    g_assert_cmpuint(ca_economy_longer(60, 3600), ==, 3600);
    g_assert_cmpuint(ca_economy_longer(7200, 3600), ==, 7200);
    g_assert_cmpuint(ca_economy_longer(0, 3600), ==, 0);
    ca_economy_telemetry_policy(&normal, &e, &out);
    g_assert_cmpuint(out.interval_s, ==, 3600);
    g_assert_cmpuint(out.min_spacing_s, ==, 1800);
    g_assert_cmpuint(out.quality_deadband, ==, 15);
    g_assert_cmpfloat(out.signal_deadband, ==, 8.0);
    normal = (CaTelemetryPolicy){0, 3600, 30, 10.0};
    ca_economy_telemetry_policy(&normal, &e, &out);
    g_assert_cmpuint(out.interval_s, ==, 0);
    g_assert_cmpuint(out.min_spacing_s, ==, 3600);
    g_assert_cmpuint(out.quality_deadband, ==, 30);
    g_assert_cmpfloat(out.signal_deadband, ==, 10.0);
}

static CaConfig *
load(const char *text)
{
    g_autoptr(GError) error = NULL;
    CaConfig *c = ca_config_load_from_data("test.conf", text, strlen(text), &error);

    g_assert_no_error(error);
    return c;
}

static void
test_settings(void)
{
    g_autoptr(CaConfig) defaults = load("");
    g_autoptr(CaConfig) set =
        load("[economy]\nmode=on\ntelemetry-interval=7200\nmin-spacing=600\nquality-deadband=20\n"
             "signal-deadband=6\nkeepalive=300\nprobe-interval=600\nlink-interval=0\n"
             "usage-interval=3600\ntopic-aliases=false\n");
    CaEconomySettings a, b;
    const CaEconomyPolicy *p;

    ca_economy_settings_load(&a, defaults);
    p = &a.policy;
    g_assert_cmpint(p->mode, ==, CA_ECONOMY_MODE_AUTO);
    g_assert_cmpuint(p->telemetry.interval_s, ==, 21600);
    g_assert_cmpuint(p->telemetry.min_spacing_s, ==, 3600);
    g_assert_cmpuint(p->telemetry.quality_deadband, ==, 15);
    g_assert_cmpfloat(p->telemetry.signal_deadband, ==, 8.0);
    g_assert_cmpuint(p->keepalive_s, ==, 280);
    g_assert_cmpint(p->probe_interval_ms, ==, S(300));
    g_assert_cmpint(p->report_interval_ms, ==, S(21600));
    g_assert_cmpuint(p->usage_interval_s, ==, 21600);
    g_assert_true(p->topic_aliases);
    /* Passive health needs a PINGRESP inside every round: keepalive + 1 < probe-interval. */
    g_assert_cmpint(S(p->keepalive_s + 1), <, p->probe_interval_ms);
    /* keepalive + 10 s (the latest PINGREQ after the last packet, mqtt.c) within 5 minutes,
     * with 10 s to spare for timers and latency. */
    g_assert_cmpuint(p->keepalive_s + 10, <=, 300 - 10);

    ca_economy_settings_load(&b, set);
    p = &b.policy;
    g_assert_cmpint(p->mode, ==, CA_ECONOMY_MODE_ON);
    g_assert_cmpuint(p->telemetry.interval_s, ==, 7200);
    g_assert_cmpuint(p->telemetry.min_spacing_s, ==, 600);
    g_assert_cmpuint(p->telemetry.quality_deadband, ==, 20);
    g_assert_cmpfloat(p->telemetry.signal_deadband, ==, 6.0);
    g_assert_cmpuint(p->keepalive_s, ==, 300);
    g_assert_cmpint(p->probe_interval_ms, ==, S(600));
    g_assert_cmpint(p->report_interval_ms, ==, 0);
    g_assert_cmpuint(p->usage_interval_s, ==, 3600);
    g_assert_false(p->topic_aliases);
    g_assert_false(ca_economy_settings_equal(&a, &b));
    ca_economy_settings_load(&b, defaults);
    g_assert_true(ca_economy_settings_equal(&a, &b));
    ca_economy_settings_clear(&a);
    ca_economy_settings_clear(&b);
}

static void
test_settings_invalid(void)
{
    static const char *const bad[] = {
        "[economy]\nmode=sometimes\n",
        "[economy]\nkeepalive=4\n",
        "[economy]\nprobe-interval=0\n",
        "[economy]\nquality-deadband=0\n",
    };

    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(CaConfig) c =
            ca_config_load_from_data("bad.conf", bad[i], strlen(bad[i]), &error);

        g_assert_null(c);
        g_assert_nonnull(strstr(error->message, "[economy]"));
    }
}

/*****************************************************************************/
/* Telemetry publisher: economy's policy in force */

typedef struct {
    guint published;
} Pub;

static void
count_publish(const cJSON *telemetry, gpointer user_data)
{
    ((Pub *) user_data)->published++;
}

static void
ignore_event(const char *type, const cJSON *event, gpointer user_data)
{
}

static void
test_publisher(void)
{
    g_autoptr(CaConfig) config = load("[telemetry]\ninterval=0\nmin-spacing=0\n");
    Pub pub = {0};
    g_autoptr(CaTelemetryPublisher) tp =
        ca_telemetry_publisher_new(config, count_publish, ignore_event, &pub);
    CaTelemetryPolicy economy = {3600, 0, 15, 8.0};
    CaModemFacts facts;

    ca_modem_facts_init(&facts);
    facts.present = TRUE;
    facts.signal_quality_valid = TRUE;
    facts.signal_quality = 50;
    ca_telemetry_publisher_update(tp, &facts);
    g_assert_cmpuint(pub.published, ==, 1);
    /* 10 points: beyond the normal deadband (5) */
    facts.signal_quality = 60;
    ca_telemetry_publisher_update(tp, &facts);
    g_assert_cmpuint(pub.published, ==, 2);
    /* Economy: 10 points are inside its deadband (15), 20 are not. */
    ca_telemetry_publisher_set_economy(tp, &economy);
    facts.signal_quality = 70;
    ca_telemetry_publisher_update(tp, &facts);
    g_assert_cmpuint(pub.published, ==, 2);
    facts.signal_quality = 80;
    ca_telemetry_publisher_update(tp, &facts);
    g_assert_cmpuint(pub.published, ==, 3);
    /* Leaving economy: the normal deadband again. */
    ca_telemetry_publisher_set_economy(tp, NULL);
    facts.signal_quality = 86;
    ca_telemetry_publisher_update(tp, &facts);
    g_assert_cmpuint(pub.published, ==, 4);
    ca_modem_facts_clear(&facts);
}

/*****************************************************************************/
/* Passive health in the failover policy */

typedef struct {
    CaFoConfig *cfg;
    CaFailover *fo;
    gint64 now;
    guint probes;     /* rounds asked for */
    gboolean path_ok; /* rounds answer */
} Sim;

static CaFoConfig *
one_cellular(void)
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
    c->n_uplinks = 1;
    c->uplinks = g_new0(CaFoUplinkConfig, 1);
    c->uplinks[0].name = g_strdup("cellular");
    c->uplinks[0].connection = g_strdup("cellular");
    c->uplinks[0].priority = 200;
    c->uplinks[0].activate = CA_ACTIVATE_ALWAYS;
    c->uplinks[0].cellular = TRUE;
    c->uplinks[0].probes = g_strsplit("icmp:192.0.2.1", ";", -1);
    return c;
}

static void
sim_step(Sim *s)
{
    CaFoOut o;

    ca_failover_run(s->fo, s->now, 1700000000 + s->now / 1000);
    while (ca_failover_pop(s->fo, &o)) {
        if (o.type == CA_FO_OUT_PROBE) {
            CaProbeRound r = {.ok = s->path_ok, .n_results = 1};

            g_strlcpy(r.results[0].target, "icmp:192.0.2.1", sizeof r.results[0].target);
            r.results[0].sent = TRUE;
            r.results[0].ok = s->path_ok;
            r.results[0].rtt_ms = 10;
            s->probes++;
            ca_failover_probe_done(s->fo, 0, &r, s->now);
        }
    }
}

/* Advance second by second to t; alive_every > 0: traffic every that many seconds. */
static void
sim_until(Sim *s, gint64 t, int alive_every)
{
    while (s->now < t) {
        s->now += S(1);
        if (alive_every > 0 && (s->now / 1000) % alive_every == 0)
            ca_failover_note_alive(s->fo, -1, s->now);
        sim_step(s);
    }
}

static Sim *
sim_new(void)
{
    Sim *s = g_new0(Sim, 1);
    CaUplinkFacts f;

    s->cfg = one_cellular();
    s->now = S(1000);
    s->fo = ca_failover_new(s->cfg, BOOT_ID, s->now);
    s->path_ok = TRUE;
    ca_uplink_facts_init(&f);
    f.device_present = f.device_ready = TRUE;
    f.activation = CA_ACTIVATION_ACTIVATED;
    f.connectivity = CA_CONNECTIVITY_FULL;
    f.cellular = TRUE;
    f.metered = CA_METERED_GUESS_YES;
    g_strlcpy(f.device, "ttyUSB0", sizeof f.device);
    ca_failover_set_facts(s->fo, 0, &f, s->now);
    sim_until(s, s->now + S(30), 0);
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_UP);
    g_assert_cmpint(ca_failover_get_active(s->fo), ==, 0);
    return s;
}

static void
sim_free(Sim *s)
{
    ca_failover_free(s->fo);
    ca_fo_config_free(s->cfg);
    g_free(s);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Sim, sim_free)

static void
test_passive_rounds(void)
{
    g_autoptr(Sim) s = sim_new();
    guint before;

    /* Normal: a round every 20 s, traffic or not. */
    before = s->probes;
    sim_until(s, s->now + S(600), 281);
    g_assert_cmpuint(s->probes - before, >=, 29);
    g_assert_cmpuint(ca_failover_get_passive_rounds(s->fo, 0), ==, 0);

    /* Economy, 300 s rounds, a PINGRESP every 281 s: no probe at all. */
    ca_failover_set_economy(s->fo, S(300), s->now);
    sim_until(s, s->now + S(300), 281); /* the round already due at the old pace */
    before = s->probes;
    sim_until(s, s->now + S(3600), 281);
    g_assert_cmpuint(s->probes - before, ==, 0);
    g_assert_cmpuint(ca_failover_get_passive_rounds(s->fo, 0), >=, 11);

    /* No traffic: the rounds probe, at the economy pace. */
    before = s->probes;
    sim_until(s, s->now + S(3000), 0);
    g_assert_cmpuint(s->probes - before, >=, 9);
    g_assert_cmpuint(s->probes - before, <=, 11);
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_UP);
}

static void
test_passive_not_when_down(void)
{
    g_autoptr(Sim) s = sim_new();
    gint64 t0;

    ca_failover_set_economy(s->fo, S(300), s->now);
    sim_until(s, s->now + S(600), 281);
    /* The path dies; MQTT still "received" something (stale) just before. Traffic stops,
     * so the next round probes and the failures take it down as usual. */
    s->path_ok = FALSE;
    t0 = s->now;
    sim_until(s, s->now + S(400), 0);
    g_assert_cmpint(ca_failover_get_state(s->fo, 0), ==, CA_UPLINK_STATE_DOWN);
    g_assert_cmpint(s->now - t0, <=, S(300 + 3 * 2 + 100));
}

static void
test_leave_within_one_round(void)
{
    g_autoptr(Sim) s = sim_new();
    guint before;

    ca_failover_set_economy(s->fo, S(300), s->now);
    sim_until(s, s->now + S(900), 281);
    /* Economy ends mid-round: probing is back at the normal pace within one normal round
     * (20 s), not after the rest of the 300 s one. */
    before = s->probes;
    ca_failover_set_economy(s->fo, 0, s->now);
    sim_until(s, s->now + S(21), 281);
    g_assert_cmpuint(s->probes - before, >=, 1);
    before = s->probes;
    sim_until(s, s->now + S(200), 281);
    g_assert_cmpuint(s->probes - before, >=, 9);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/economy/decide/table", test_decide);
    g_test_add_func("/economy/figures/longer", test_figures);
    g_test_add_func("/economy/settings/load", test_settings);
    g_test_add_func("/economy/settings/invalid", test_settings_invalid);
    g_test_add_func("/economy/telemetry/publisher", test_publisher);
    g_test_add_func("/economy/health/passive-rounds", test_passive_rounds);
    g_test_add_func("/economy/health/not-when-down", test_passive_not_when_down);
    g_test_add_func("/economy/health/leave-within-one-round", test_leave_within_one_round);
    return g_test_run();
}
