/* Unit tests for clock-source: which clock TOTP trusts, with injected times (no clock). */
#include "clock-source.h"

#define S                G_GINT64_CONSTANT(1000000)
#define T0               G_GINT64_CONSTANT(1800000000) /* a valid unix time (2027) */
#define MONO0            G_GINT64_CONSTANT(5000000000) /* the first reading, monotonic */
#define NET_AT(offset_s) ((T0 + (offset_s)) * S)

static void
test_names(void)
{
    CaClockMode mode;

    g_assert_cmpstr(ca_clock_source_to_string(CA_CLOCK_SOURCE_NTP), ==, "ntp");
    g_assert_cmpstr(ca_clock_source_to_string(CA_CLOCK_SOURCE_SYSTEM), ==, "system");
    g_assert_cmpstr(ca_clock_source_to_string(CA_CLOCK_SOURCE_NETWORK), ==, "network");
    g_assert_true(ca_clock_mode_from_string("use", &mode));
    g_assert_cmpint(mode, ==, CA_CLOCK_MODE_USE);
    g_assert_cmpstr(ca_clock_mode_to_string(CA_CLOCK_MODE_SET), ==, "set");
    g_assert_false(ca_clock_mode_from_string("sometimes", &mode));
    g_assert_false(ca_clock_mode_from_string(NULL, &mode));
}

/* One row: inputs, then the decision expected. */
typedef struct {
    const char *name;
    CaClockMode mode;
    gboolean ntp_known, ntp_synced;
    gboolean have_network;
    gint64 offset_s; /* network time - system time when read */
    CaClockSource source;
    gboolean uses_network; /* now_us is the network time */
    gboolean want_set;
} Row;

static const Row rows[] = {
    {"ntp-synced-ignores-network", CA_CLOCK_MODE_SET, TRUE, TRUE, TRUE, 600, CA_CLOCK_SOURCE_NTP,
     FALSE, FALSE},
    {"ntp-synced-no-network", CA_CLOCK_MODE_SET, TRUE, TRUE, FALSE, 0, CA_CLOCK_SOURCE_NTP, FALSE,
     FALSE},
    {"unsynced-no-network", CA_CLOCK_MODE_SET, TRUE, FALSE, FALSE, 0, CA_CLOCK_SOURCE_SYSTEM, FALSE,
     FALSE},
    {"unsynced-agrees", CA_CLOCK_MODE_SET, TRUE, FALSE, TRUE, 60, CA_CLOCK_SOURCE_SYSTEM, FALSE,
     FALSE},
    {"unsynced-agrees-behind", CA_CLOCK_MODE_SET, TRUE, FALSE, TRUE, -60, CA_CLOCK_SOURCE_SYSTEM,
     FALSE, FALSE},
    {"unsynced-ahead", CA_CLOCK_MODE_SET, TRUE, FALSE, TRUE, 61, CA_CLOCK_SOURCE_NETWORK, TRUE,
     TRUE},
    {"unsynced-behind", CA_CLOCK_MODE_SET, TRUE, FALSE, TRUE, -3600, CA_CLOCK_SOURCE_NETWORK, TRUE,
     TRUE},
    {"timedated-unknown", CA_CLOCK_MODE_SET, FALSE, FALSE, TRUE, 600, CA_CLOCK_SOURCE_NETWORK, TRUE,
     TRUE},
    {"mode-use-never-sets", CA_CLOCK_MODE_USE, TRUE, FALSE, TRUE, 600, CA_CLOCK_SOURCE_NETWORK,
     TRUE, FALSE},
    {"mode-off", CA_CLOCK_MODE_OFF, TRUE, FALSE, TRUE, 600, CA_CLOCK_SOURCE_SYSTEM, FALSE, FALSE},
    {"mode-off-ntp", CA_CLOCK_MODE_OFF, TRUE, TRUE, TRUE, 600, CA_CLOCK_SOURCE_NTP, FALSE, FALSE},
};

static void
test_table(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(rows); i++) {
        const Row *r = &rows[i];
        CaClock c;
        CaClockDecision d;
        gint64 later = 7 * S; /* decided a few seconds after the reading */

        g_test_message("%s", r->name);
        ca_clock_init(&c, r->mode);
        ca_clock_set_ntp(&c, r->ntp_known, r->ntp_synced);
        if (r->have_network)
            g_assert_true(ca_clock_set_network(&c, NET_AT(r->offset_s), MONO0));
        ca_clock_decide(&c, T0 * S + later, MONO0 + later, &d);
        g_assert_cmpstr(ca_clock_source_to_string(d.source), ==,
                        ca_clock_source_to_string(r->source));
        g_assert_cmpint(d.offset_s, ==, r->have_network ? r->offset_s : 0);
        g_assert_cmpint(d.now_us, ==,
                        r->uses_network ? NET_AT(r->offset_s) + later : T0 * S + later);
        g_assert_cmpint(d.want_set, ==, r->want_set);
        if (d.want_set)
            g_assert_cmpint(d.set_to_us, ==, NET_AT(r->offset_s) + later);
        g_assert_false(d.set);
    }
}

/* A modem whose clock was never set by the network reports 1980 or 2000: ignored. */
static void
test_unset_modem_clock(void)
{
    CaClock c;
    CaClockDecision d;

    ca_clock_init(&c, CA_CLOCK_MODE_SET);
    ca_clock_set_ntp(&c, TRUE, FALSE);
    g_assert_false(ca_clock_set_network(&c, (gint64) 946684800 * S, MONO0));
    ca_clock_decide(&c, T0 * S, MONO0, &d);
    g_assert_cmpint(d.source, ==, CA_CLOCK_SOURCE_SYSTEM);
    g_assert_false(d.want_set);
    g_assert_true(ca_clock_wants_network(&c, MONO0, 600));
}

/* SetTime is asked once; while it is in flight and after it the answer is kept. */
static void
test_set_once(void)
{
    CaClock c;
    CaClockDecision d;
    gint64 mono = MONO0;

    ca_clock_init(&c, CA_CLOCK_MODE_SET);
    ca_clock_set_ntp(&c, TRUE, FALSE);
    ca_clock_set_network(&c, NET_AT(600), mono);
    ca_clock_decide(&c, T0 * S, mono, &d);
    g_assert_true(d.want_set);
    ca_clock_set_started(&c, mono);
    ca_clock_decide(&c, T0 * S, mono, &d);
    g_assert_false(d.want_set); /* in flight */
    g_assert_cmpint(d.source, ==, CA_CLOCK_SOURCE_NETWORK);
    ca_clock_set_finished(&c, TRUE);
    /* The system clock now agrees: still reported as network time, set. */
    mono += 2 * S;
    ca_clock_decide(&c, NET_AT(600) + 2 * S, mono, &d);
    g_assert_cmpint(d.source, ==, CA_CLOCK_SOURCE_NETWORK);
    g_assert_true(d.set);
    g_assert_false(d.want_set);
    g_assert_cmpint(d.offset_s, ==, 0);
    g_assert_cmpint(d.now_us, ==, NET_AT(600) + 2 * S);
    /* Off again within the hour (timedated said yes but the clock did not move): no new
     * request before CA_CLOCK_SET_MIN_INTERVAL_S, one after. */
    mono += 60 * S;
    ca_clock_decide(&c, T0 * S + 62 * S, mono, &d);
    g_assert_cmpint(d.source, ==, CA_CLOCK_SOURCE_NETWORK);
    g_assert_false(d.want_set);
    g_assert_cmpint(d.now_us, ==, NET_AT(600) + 62 * S);
    mono = MONO0 + CA_CLOCK_SET_MIN_INTERVAL_S * S;
    ca_clock_decide(&c, T0 * S + CA_CLOCK_SET_MIN_INTERVAL_S * S, mono, &d);
    g_assert_true(d.want_set);
}

/* Refused: network time for TOTP, never asked again. */
static void
test_refused(void)
{
    CaClock c;
    CaClockDecision d;

    ca_clock_init(&c, CA_CLOCK_MODE_SET);
    ca_clock_set_ntp(&c, TRUE, FALSE);
    ca_clock_set_network(&c, NET_AT(-900), MONO0);
    ca_clock_set_started(&c, MONO0);
    ca_clock_set_finished(&c, FALSE);
    ca_clock_decide(&c, T0 * S + 10 * S * 3600, MONO0 + 10 * S * 3600, &d);
    g_assert_cmpint(d.source, ==, CA_CLOCK_SOURCE_NETWORK);
    g_assert_false(d.set);
    g_assert_false(d.want_set);
    g_assert_cmpint(d.offset_s, ==, -900);
    g_assert_cmpint(d.now_us, ==, NET_AT(-900) + 10 * S * 3600);
}

/* The reading follows the monotonic clock: a system clock moved after it changes the offset,
 * not the network time. */
static void
test_system_clock_moved(void)
{
    CaClock c;
    CaClockDecision d;

    ca_clock_init(&c, CA_CLOCK_MODE_USE);
    ca_clock_set_ntp(&c, TRUE, FALSE);
    ca_clock_set_network(&c, NET_AT(600), MONO0);
    ca_clock_decide(&c, (T0 + 600 + 30) * S, MONO0 + 30 * S, &d);
    g_assert_cmpint(d.source, ==, CA_CLOCK_SOURCE_SYSTEM);
    g_assert_cmpint(d.offset_s, ==, 0);
    g_assert_cmpint(d.now_us, ==, (T0 + 600 + 30) * S);
}

static void
test_wants_network(void)
{
    CaClock c;

    ca_clock_init(&c, CA_CLOCK_MODE_SET);
    g_assert_true(ca_clock_wants_network(&c, MONO0, 600)); /* nothing known */
    ca_clock_set_network(&c, NET_AT(0), MONO0);
    g_assert_false(ca_clock_wants_network(&c, MONO0 + 600 * S, 600));
    g_assert_true(ca_clock_wants_network(&c, MONO0 + 601 * S, 600));
    ca_clock_set_ntp(&c, TRUE, TRUE);
    g_assert_false(ca_clock_wants_network(&c, MONO0 + 601 * S, 600));
    ca_clock_set_ntp(&c, FALSE, TRUE); /* an unknown answer is not synchronised */
    g_assert_true(ca_clock_wants_network(&c, MONO0 + 601 * S, 600));
    ca_clock_set_mode(&c, CA_CLOCK_MODE_OFF);
    g_assert_false(ca_clock_wants_network(&c, MONO0 + 601 * S, 600));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/clock-source/names", test_names);
    g_test_add_func("/clock-source/table", test_table);
    g_test_add_func("/clock-source/unset-modem-clock", test_unset_modem_clock);
    g_test_add_func("/clock-source/set-once", test_set_once);
    g_test_add_func("/clock-source/refused", test_refused);
    g_test_add_func("/clock-source/system-clock-moved", test_system_clock_moved);
    g_test_add_func("/clock-source/wants-network", test_wants_network);
    return g_test_run();
}
