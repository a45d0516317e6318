/* Unit tests for alerts: the outage state machine with an injected clock (one alert per
 * incident, one recovery after an alert, the rate limit, unreported outages), a randomised
 * run checked against the rules, and the message texts. */
#include "alerts.h"
#include "autocleanups.h"

#include <string.h>

#define S G_GINT64_CONSTANT(1000) /* ms */

static const CaAlertsConfig cfg = {.down_after_ms = 600 * S, .min_interval_ms = 3600 * S};

static void
assert_none(CaAlert a)
{
    g_assert_cmpint(a.kind, ==, CA_ALERT_NONE);
}

static void
test_short_outage(void)
{
    g_autoptr(CaAlerts) a = ca_alerts_new(&cfg, 0);

    /* Data comes up at start: nothing. */
    assert_none(ca_alerts_set_data(a, TRUE, 5 * S));
    g_assert_cmpint(ca_alerts_get_state(a), ==, CA_ALERTS_UP);
    g_assert_cmpint(ca_alerts_next_deadline(a), ==, G_MAXINT64);
    /* An outage shorter than down-after: nothing, before or after. */
    assert_none(ca_alerts_set_data(a, FALSE, 100 * S));
    g_assert_cmpint(ca_alerts_next_deadline(a), ==, 700 * S);
    assert_none(ca_alerts_tick(a, 700 * S - 1));
    assert_none(ca_alerts_set_data(a, TRUE, 700 * S - 1));
    assert_none(ca_alerts_tick(a, 10000 * S));
    g_assert_false(ca_alerts_get_last_alert(a, NULL));
}

static void
test_one_alert_one_recovery(void)
{
    g_autoptr(CaAlerts) a = ca_alerts_new(&cfg, 0);
    CaAlert r;
    gint64 last = -1;

    assert_none(ca_alerts_set_data(a, TRUE, 1 * S));
    assert_none(ca_alerts_set_data(a, FALSE, 1000 * S));
    /* Repeated "still down" facts do not move the start. */
    assert_none(ca_alerts_set_data(a, FALSE, 1300 * S));
    g_assert_cmpint(ca_alerts_next_deadline(a), ==, 1600 * S);
    r = ca_alerts_tick(a, 1600 * S);
    g_assert_cmpint(r.kind, ==, CA_ALERT_DOWN);
    g_assert_cmpint(r.down_since, ==, 1000 * S);
    g_assert_cmpint(r.duration_ms, ==, 600 * S);
    g_assert_cmpuint(r.unreported, ==, 0);
    g_assert_true(ca_alerts_get_last_alert(a, &last));
    g_assert_cmpint(last, ==, 1600 * S);
    /* Exactly one per incident. */
    g_assert_cmpint(ca_alerts_next_deadline(a), ==, G_MAXINT64);
    for (int i = 1; i < 100; i++) {
        assert_none(ca_alerts_tick(a, (1600 + 100 * i) * S));
        assert_none(ca_alerts_set_data(a, FALSE, (1600 + 100 * i) * S + 1));
    }
    r = ca_alerts_set_data(a, TRUE, 20000 * S);
    g_assert_cmpint(r.kind, ==, CA_ALERT_RECOVERED);
    g_assert_cmpint(r.down_since, ==, 1000 * S);
    g_assert_cmpint(r.duration_ms, ==, 19000 * S);
    /* One recovery. */
    assert_none(ca_alerts_set_data(a, TRUE, 20001 * S));
    assert_none(ca_alerts_tick(a, 30000 * S));
}

static void
test_down_from_start(void)
{
    g_autoptr(CaAlerts) a = ca_alerts_new(&cfg, 50 * S);
    CaAlert r;

    g_assert_cmpint(ca_alerts_get_state(a), ==, CA_ALERTS_PENDING);
    g_assert_cmpint(ca_alerts_next_deadline(a), ==, 650 * S);
    assert_none(ca_alerts_set_data(a, FALSE, 60 * S));
    r = ca_alerts_tick(a, 700 * S); /* late ticks report the real duration */
    g_assert_cmpint(r.kind, ==, CA_ALERT_DOWN);
    g_assert_cmpint(r.down_since, ==, 50 * S);
    g_assert_cmpint(r.duration_ms, ==, 650 * S);
}

static void
test_rate_limit(void)
{
    g_autoptr(CaAlerts) a = ca_alerts_new(&cfg, 0);
    CaAlert r;

    /* First outage 0..1000 s: alert at 600, recovery at 1000. */
    g_assert_cmpint(ca_alerts_tick(a, 600 * S).kind, ==, CA_ALERT_DOWN);
    g_assert_cmpint(ca_alerts_set_data(a, TRUE, 1000 * S).kind, ==, CA_ALERT_RECOVERED);
    /* Second outage from 1100 s: down-after passes at 1700, but the last alert was at 600:
     * suppressed until 4200, and it ends at 2000: no alert, no recovery, counted. */
    assert_none(ca_alerts_set_data(a, FALSE, 1100 * S));
    assert_none(ca_alerts_tick(a, 1700 * S));
    g_assert_cmpint(ca_alerts_get_state(a), ==, CA_ALERTS_SUPPRESSED);
    g_assert_cmpint(ca_alerts_next_deadline(a), ==, 4200 * S);
    assert_none(ca_alerts_set_data(a, TRUE, 2000 * S));
    g_assert_cmpint(ca_alerts_get_state(a), ==, CA_ALERTS_UP);
    /* Third outage from 3000 s lasts: suppressed at 3600, alerted at 4200 with the count. */
    assert_none(ca_alerts_set_data(a, FALSE, 3000 * S));
    assert_none(ca_alerts_tick(a, 3600 * S));
    g_assert_cmpint(ca_alerts_next_deadline(a), ==, 4200 * S);
    assert_none(ca_alerts_tick(a, 4200 * S - 1));
    r = ca_alerts_tick(a, 4200 * S);
    g_assert_cmpint(r.kind, ==, CA_ALERT_DOWN);
    g_assert_cmpint(r.down_since, ==, 3000 * S);
    g_assert_cmpint(r.duration_ms, ==, 1200 * S);
    g_assert_cmpuint(r.unreported, ==, 1);
    r = ca_alerts_set_data(a, TRUE, 5000 * S);
    g_assert_cmpint(r.kind, ==, CA_ALERT_RECOVERED);
    g_assert_cmpuint(r.unreported, ==, 0);
    /* The count was reported: the next alert starts from zero. */
    assert_none(ca_alerts_set_data(a, FALSE, 9000 * S));
    r = ca_alerts_tick(a, 9600 * S);
    g_assert_cmpint(r.kind, ==, CA_ALERT_DOWN);
    g_assert_cmpuint(r.unreported, ==, 0);
}

static void
test_no_rate_limit(void)
{
    const CaAlertsConfig c0 = {.down_after_ms = 10 * S, .min_interval_ms = 0};
    g_autoptr(CaAlerts) a = ca_alerts_new(&c0, 0);
    gint64 t = 0;

    assert_none(ca_alerts_set_data(a, TRUE, t));
    for (int i = 0; i < 20; i++) {
        assert_none(ca_alerts_set_data(a, FALSE, t += S));
        g_assert_cmpint(ca_alerts_tick(a, t += 10 * S).kind, ==, CA_ALERT_DOWN);
        g_assert_cmpint(ca_alerts_set_data(a, TRUE, t += S).kind, ==, CA_ALERT_RECOVERED);
    }
}

static void
test_restore_and_config(void)
{
    g_autoptr(CaAlerts) a = ca_alerts_new(&cfg, 0);
    CaAlertsConfig shorter = {.down_after_ms = 60 * S, .min_interval_ms = 600 * S};
    gint64 last = 0;

    /* An alert 1000 s before this clock's zero (persisted by the previous run). */
    ca_alerts_restore_last_alert(a, -1000 * S);
    g_assert_true(ca_alerts_get_last_alert(a, &last));
    g_assert_cmpint(last, ==, -1000 * S);
    assert_none(ca_alerts_tick(a, 600 * S));
    g_assert_cmpint(ca_alerts_get_state(a), ==, CA_ALERTS_SUPPRESSED);
    g_assert_cmpint(ca_alerts_next_deadline(a), ==, 2600 * S);
    /* A reload with a shorter interval moves the deadline and lets it out. */
    ca_alerts_set_config(a, &shorter);
    g_assert_cmpint(ca_alerts_next_deadline(a), ==, -400 * S);
    g_assert_cmpint(ca_alerts_tick(a, 601 * S).kind, ==, CA_ALERT_DOWN);
    g_assert_cmpstr(ca_alerts_state_to_string(ca_alerts_get_state(a)), ==, "alerted");
}

/* A random walk of facts and ticks (ticks at every deadline, as the adapter does) checked
 * against the rules alerts.h states. */
static void
test_random(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(8);
    guint total_alerts = 0, total_unreported = 0;

    for (int run = 0; run < 200; run++) {
        CaAlertsConfig c = {.down_after_ms = g_rand_int_range(rand, 1, 30) * S,
                            .min_interval_ms = g_rand_int_range(rand, 0, 60) * S};
        g_autoptr(CaAlerts) a = ca_alerts_new(&c, 0);
        gboolean data = FALSE;
        gint64 t = 0, down_since = 0, last_alert = G_MININT64 / 2;
        gboolean alerted = FALSE; /* for the current outage */
        guint alerts = 0, recoveries = 0;

        for (int step = 0; step < 400; step++) {
            gint64 next_fact = t + g_rand_int_range(rand, 1, 40) * S;
            gint64 deadline = ca_alerts_next_deadline(a);
            CaAlert r;
            gboolean fact;

            if (deadline <= next_fact) {
                /* Ticks exactly at the deadline. */
                g_assert_cmpint(deadline, >=, t);
                t = deadline;
                r = ca_alerts_tick(a, t);
            } else {
                t = next_fact;
                fact = g_rand_int_range(rand, 0, 3) == 0 ? !data : data;
                if (!fact && data)
                    down_since = t;
                r = ca_alerts_set_data(a, fact, t);
                if (fact && !data) {
                    /* Data back: a recovery exactly when this outage was alerted. */
                    g_assert_cmpint(r.kind, ==, alerted ? CA_ALERT_RECOVERED : CA_ALERT_NONE);
                    if (alerted) {
                        g_assert_cmpint(r.down_since, ==, down_since);
                        g_assert_cmpint(r.duration_ms, ==, t - down_since);
                        recoveries++;
                    }
                    alerted = FALSE;
                    data = fact;
                    continue;
                }
                data = fact;
            }
            if (r.kind == CA_ALERT_DOWN) {
                g_assert_false(data);
                g_assert_false(alerted); /* one per incident */
                g_assert_cmpint(t - down_since, >=, c.down_after_ms);
                g_assert_cmpint(t - last_alert, >=, c.min_interval_ms);
                g_assert_cmpint(r.down_since, ==, down_since);
                alerted = TRUE;
                last_alert = t;
                alerts++;
                total_unreported += r.unreported;
            } else {
                g_assert_cmpint(r.kind, ==, CA_ALERT_NONE);
            }
            /* Liveness: an outage past both limits has been reported. */
            if (!data && t - down_since >= c.down_after_ms && t - last_alert >= c.min_interval_ms)
                g_assert_true(alerted);
        }
        g_assert_cmpuint(recoveries, <=, alerts);
        g_assert_cmpuint(alerts - recoveries, <=, 1);
        total_alerts += alerts;
    }
    /* The walk reached every branch: alerts, and rate-limited outages counted into them. */
    g_assert_cmpuint(total_alerts, >, 1000);
    g_assert_cmpuint(total_unreported, >, 10);
}

static void
test_durations(void)
{
    static const struct {
        gint64 ms;
        const char *text;
    } cases[] = {
        {-5, "0 s"},
        {0, "0 s"},
        {999, "0 s"},
        {59 * S, "59 s"},
        {60 * S, "1 min"},
        {3599 * S, "59 min"},
        {3600 * S, "1 h"},
        {3900 * S, "1 h 5 min"},
        {86399 * S, "23 h 59 min"},
        {86400 * S, "1 d"},
        {86400 * S + 3 * 3600 * S + 59 * S, "1 d 3 h"},
        {400 * 86400 * (gint64) S, "400 d"},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *t = ca_alerts_format_duration(cases[i].ms);
        g_assert_cmpstr(t, ==, cases[i].text);
    }
}

static gboolean
gsm7_safe(const char *s)
{
    for (; *s; s++) {
        if (!g_ascii_isalnum(*s) && !strchr(" .:;-_()+", *s))
            return FALSE;
    }
    return TRUE;
}

static void
test_texts(void)
{
    /* 2026-11-23 14:12:00 UTC is 1795443120. */
    const gint64 wall_us = G_GINT64_CONSTANT(1795443120) * G_USEC_PER_SEC;
    CaAlert down = {.kind = CA_ALERT_DOWN, .down_since = 400 * S, .duration_ms = 600 * S};
    CaAlert back = {.kind = CA_ALERT_RECOVERED, .down_since = 400 * S, .duration_ms = 3900 * S};
    CaAlert nothing = {.kind = CA_ALERT_NONE};
    g_autofree char *t1 = ca_alerts_format(&down, "pump-7", 1000 * S, wall_us, NULL);
    g_autofree char *t2 = NULL;
    g_autofree char *t3 = NULL;
    g_autofree char *t4 = NULL;
    g_autofree char *none = NULL;

    g_assert_cmpstr(t1, ==, "pump-7: no data link for 10 min (since 2026-11-23 14:02 UTC).");
    down.unreported = 2;
    t2 = ca_alerts_format(&down, "pump-7", 1000 * S, wall_us, "x");
    g_assert_cmpstr(t2, ==,
                    "pump-7: no data link for 10 min (since 2026-11-23 14:02 UTC); 2 earlier "
                    "outages unreported.");
    t3 = ca_alerts_format(&back, "pump-7", 4300 * S, wall_us + (gint64) 3300 * G_USEC_PER_SEC,
                          "wired");
    g_assert_cmpstr(t3, ==,
                    "pump-7: data link back after 1 h 5 min (down since 2026-11-23 14:02 UTC) via "
                    "wired.");
    /* Characters outside the GSM alphabet never reach the SMS. */
    t4 = ca_alerts_format(&back, "pump-7", 4300 * S, wall_us, "w\xc3\xa9{i}r[e]d");
    g_assert_true(g_str_has_suffix(t4, " via wired."));
    none = ca_alerts_format(&nothing, "d", 0, wall_us, NULL);
    g_assert_cmpstr(none, ==, "");

    /* The longest inputs still make one SMS. */
    {
        g_autofree char *dev = g_strnfill(64, 'd');
        g_autofree char *up = g_strnfill(100, 'u');
        CaAlert worst_down = {.kind = CA_ALERT_DOWN,
                              .duration_ms = 9999 * 86400 * (gint64) S + 23 * 3600 * S,
                              .unreported = 100000};
        CaAlert worst_back = worst_down;
        g_autofree char *a = NULL;
        g_autofree char *b = NULL;

        worst_back.kind = CA_ALERT_RECOVERED;
        a = ca_alerts_format(&worst_down, dev, 0, wall_us, up);
        b = ca_alerts_format(&worst_back, dev, 0, wall_us, up);
        g_assert_cmpuint(strlen(a), <=, 160);
        g_assert_cmpuint(strlen(b), <=, 160);
        g_assert_true(gsm7_safe(a));
        g_assert_true(gsm7_safe(b));
        g_assert_nonnull(strstr(a, "999 earlier outages"));
    }
}

static void
test_link_healthy(void)
{
    static const struct {
        const char *link;
        gboolean healthy;
    } cases[] = {
        {"{}", FALSE},
        {"{\"uplinks\":{}}", FALSE},
        {"{\"active\":null,\"uplinks\":{\"wired\":{\"state\":\"down\"},"
         "\"cellular\":{\"state\":\"standby\"}}}",
         FALSE},
        {"{\"uplinks\":{\"wired\":{\"state\":\"suspect\"},\"c\":{\"state\":\"unknown\"}}}", FALSE},
        {"{\"active\":\"wired\",\"uplinks\":{\"wired\":{\"state\":\"up\"}}}", TRUE},
        {"{\"uplinks\":{\"a\":{\"state\":\"down\"},\"b\":{\"state\":\"up\"}}}", TRUE},
        {"{\"uplinks\":{\"a\":{\"state\":1}}}", FALSE},
        {"{\"uplinks\":[{\"state\":\"up\"}]}", TRUE},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(cJSON) link = cJSON_Parse(cases[i].link);
        g_assert_nonnull(link);
        g_assert_true(ca_alerts_link_is_healthy(link) == cases[i].healthy);
    }
    g_assert_false(ca_alerts_link_is_healthy(NULL));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/alerts/short-outage", test_short_outage);
    g_test_add_func("/alerts/one-alert-one-recovery", test_one_alert_one_recovery);
    g_test_add_func("/alerts/down-from-start", test_down_from_start);
    g_test_add_func("/alerts/rate-limit", test_rate_limit);
    g_test_add_func("/alerts/no-rate-limit", test_no_rate_limit);
    g_test_add_func("/alerts/restore-and-config", test_restore_and_config);
    g_test_add_func("/alerts/random", test_random);
    g_test_add_func("/alerts/durations", test_durations);
    g_test_add_func("/alerts/texts", test_texts);
    g_test_add_func("/alerts/link-healthy", test_link_healthy);
    return g_test_run();
}
