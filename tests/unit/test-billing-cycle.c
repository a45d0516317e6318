/* Unit tests for billing-cycle: monthly cycles (start day clamped to February 28/29 and to
 * 30-day months, start day 31, year change), weekly, daily, every N days from an anchor
 * (before and after it), the start hour, and DST (spring forward, fall back, a start hour
 * in the gap), in fixed time zones. */
#include "billing-cycle.h"

#include <stdio.h>
#include <string.h>

/* "YYYY-MM-DD HH:MM:SS" in tz as unix seconds. */
static gint64
at(GTimeZone *tz, const char *text)
{
    int y, mo, d, h, mi, s;
    g_autoptr(GDateTime) dt = NULL;

    g_assert_cmpint(sscanf(text, "%d-%d-%d %d:%d:%d", &y, &mo, &d, &h, &mi, &s), ==, 6);
    dt = g_date_time_new(tz, y, mo, d, h, mi, s);
    g_assert_nonnull(dt);
    return g_date_time_to_unix(dt);
}

typedef struct {
    const char *name;
    const char *tz;
    CaBillingKind kind;
    guint start_day, start_hour, days;
    const char *anchor;
    const char *now, *start, *end; /* local times in tz */
} Case;

static const Case cases[] = {
    {"monthly/mid", "UTC", CA_BILLING_MONTHLY, 1, 0, 0, NULL, "2026-03-15 12:00:00",
     "2026-03-01 00:00:00", "2026-04-01 00:00:00"},
    {"monthly/first-second", "UTC", CA_BILLING_MONTHLY, 1, 0, 0, NULL, "2026-03-01 00:00:00",
     "2026-03-01 00:00:00", "2026-04-01 00:00:00"},
    {"monthly/last-second", "UTC", CA_BILLING_MONTHLY, 1, 0, 0, NULL, "2026-02-28 23:59:59",
     "2026-02-01 00:00:00", "2026-03-01 00:00:00"},
    {"monthly/year-change", "UTC", CA_BILLING_MONTHLY, 15, 0, 0, NULL, "2026-01-10 00:00:00",
     "2025-12-15 00:00:00", "2026-01-15 00:00:00"},
    /* Start day 31: the month's last day in shorter months. */
    {"day31/feb-before", "UTC", CA_BILLING_MONTHLY, 31, 0, 0, NULL, "2026-02-15 00:00:00",
     "2026-01-31 00:00:00", "2026-02-28 00:00:00"},
    {"day31/feb28", "UTC", CA_BILLING_MONTHLY, 31, 0, 0, NULL, "2026-02-28 00:00:00",
     "2026-02-28 00:00:00", "2026-03-31 00:00:00"},
    {"day31/leap-feb28", "UTC", CA_BILLING_MONTHLY, 31, 0, 0, NULL, "2024-02-28 23:00:00",
     "2024-01-31 00:00:00", "2024-02-29 00:00:00"},
    {"day31/leap-feb29", "UTC", CA_BILLING_MONTHLY, 31, 0, 0, NULL, "2024-02-29 05:00:00",
     "2024-02-29 00:00:00", "2024-03-31 00:00:00"},
    {"day31/april", "UTC", CA_BILLING_MONTHLY, 31, 0, 0, NULL, "2026-04-15 00:00:00",
     "2026-03-31 00:00:00", "2026-04-30 00:00:00"},
    {"day31/april30", "UTC", CA_BILLING_MONTHLY, 31, 0, 0, NULL, "2026-04-30 01:00:00",
     "2026-04-30 00:00:00", "2026-05-31 00:00:00"},
    {"day31/december", "UTC", CA_BILLING_MONTHLY, 31, 0, 0, NULL, "2026-12-31 00:00:00",
     "2026-12-31 00:00:00", "2027-01-31 00:00:00"},
    {"day30/march1", "UTC", CA_BILLING_MONTHLY, 30, 0, 0, NULL, "2026-03-01 00:00:00",
     "2026-02-28 00:00:00", "2026-03-30 00:00:00"},
    {"day30/april30", "UTC", CA_BILLING_MONTHLY, 30, 0, 0, NULL, "2026-04-30 00:00:00",
     "2026-04-30 00:00:00", "2026-05-30 00:00:00"},
    {"day29/leap", "UTC", CA_BILLING_MONTHLY, 29, 0, 0, NULL, "2028-02-29 00:00:00",
     "2028-02-29 00:00:00", "2028-03-29 00:00:00"},
    {"day29/common", "UTC", CA_BILLING_MONTHLY, 29, 0, 0, NULL, "2027-03-01 00:00:00",
     "2027-02-28 00:00:00", "2027-03-29 00:00:00"},
    /* The start hour: the day's first hours still belong to the cycle before. */
    {"hour/before", "UTC", CA_BILLING_MONTHLY, 1, 6, 0, NULL, "2026-03-01 05:59:59",
     "2026-02-01 06:00:00", "2026-03-01 06:00:00"},
    {"hour/at", "UTC", CA_BILLING_MONTHLY, 1, 6, 0, NULL, "2026-03-01 06:00:00",
     "2026-03-01 06:00:00", "2026-04-01 06:00:00"},
    {"hour/day31-clamped", "UTC", CA_BILLING_MONTHLY, 31, 23, 0, NULL, "2026-02-28 22:00:00",
     "2026-01-31 23:00:00", "2026-02-28 23:00:00"},
    {"hour/local-zone", "Africa/Nairobi", CA_BILLING_MONTHLY, 1, 0, 0, NULL, "2026-03-01 00:30:00",
     "2026-03-01 00:00:00", "2026-04-01 00:00:00"},
    {"weekly/monday", "UTC", CA_BILLING_WEEKLY, 1, 0, 0, NULL, "2026-12-06 10:00:00",
     "2026-11-30 00:00:00", "2026-12-07 00:00:00"},
    {"weekly/sunday-on-day", "UTC", CA_BILLING_WEEKLY, 7, 0, 0, NULL, "2026-12-06 10:00:00",
     "2026-12-06 00:00:00", "2026-12-13 00:00:00"},
    {"weekly/hour-before", "UTC", CA_BILLING_WEEKLY, 7, 12, 0, NULL, "2026-12-06 10:00:00",
     "2026-11-29 12:00:00", "2026-12-06 12:00:00"},
    {"daily/after", "UTC", CA_BILLING_DAILY, 0, 6, 0, NULL, "2026-12-06 07:00:00",
     "2026-12-06 06:00:00", "2026-12-07 06:00:00"},
    {"daily/before", "UTC", CA_BILLING_DAILY, 0, 6, 0, NULL, "2026-12-06 05:00:00",
     "2026-12-05 06:00:00", "2026-12-06 06:00:00"},
    {"daily/new-year", "UTC", CA_BILLING_DAILY, 0, 0, 0, NULL, "2026-12-31 23:59:59",
     "2026-12-31 00:00:00", "2027-01-01 00:00:00"},
    {"days/after-anchor", "UTC", CA_BILLING_DAYS, 0, 0, 28, "2026-01-01", "2026-03-01 00:00:00",
     "2026-02-26 00:00:00", "2026-03-26 00:00:00"},
    {"days/on-anchor", "UTC", CA_BILLING_DAYS, 0, 0, 28, "2026-01-01", "2026-01-01 00:00:00",
     "2026-01-01 00:00:00", "2026-01-29 00:00:00"},
    {"days/before-anchor", "UTC", CA_BILLING_DAYS, 0, 0, 28, "2026-01-01", "2025-12-20 00:00:00",
     "2025-12-04 00:00:00", "2026-01-01 00:00:00"},
    {"days/hour-before", "UTC", CA_BILLING_DAYS, 0, 8, 10, "2026-01-01", "2026-01-11 07:00:00",
     "2026-01-01 08:00:00", "2026-01-11 08:00:00"},
    {"days/leap-span", "UTC", CA_BILLING_DAYS, 0, 0, 30, "2024-02-01", "2024-03-02 00:00:00",
     "2024-03-02 00:00:00", "2024-04-01 00:00:00"},
    /* DST (Europe/Berlin 2026: +1 h on Mar 29 at 02:00, -1 h on Oct 25 at 03:00). Cycles
     * keep their local start times, so they are an hour shorter or longer. */
    {"dst/month-spring", "Europe/Berlin", CA_BILLING_MONTHLY, 1, 0, 0, NULL, "2026-03-30 12:00:00",
     "2026-03-01 00:00:00", "2026-04-01 00:00:00"},
    {"dst/month-fall", "Europe/Berlin", CA_BILLING_MONTHLY, 1, 0, 0, NULL, "2026-10-31 23:30:00",
     "2026-10-01 00:00:00", "2026-11-01 00:00:00"},
    {"dst/day-fall", "Europe/Berlin", CA_BILLING_DAILY, 0, 0, 0, NULL, "2026-10-25 23:59:00",
     "2026-10-25 00:00:00", "2026-10-26 00:00:00"},
    {"dst/week-spring", "America/New_York", CA_BILLING_WEEKLY, 1, 0, 0, NULL, "2026-03-09 12:00:00",
     "2026-03-09 00:00:00", "2026-03-16 00:00:00"},
};

static void
test_case(gconstpointer data)
{
    const Case *c = data;
    g_autoptr(GTimeZone) tz = g_time_zone_new_identifier(c->tz);
    CaBillingCycle cycle;
    gint64 start = 0, end = 0;

    if (!tz) {
        g_test_skip("time zone data missing");
        return;
    }
    memset(&cycle, 0, sizeof cycle);
    cycle.kind = c->kind;
    cycle.start_day = c->start_day;
    cycle.start_hour = c->start_hour;
    cycle.days = c->days;
    if (c->anchor)
        g_assert_true(ca_billing_parse_date(c->anchor, &cycle.anchor_year, &cycle.anchor_month,
                                            &cycle.anchor_day));
    g_assert_true(ca_billing_cycle_find(&cycle, tz, at(tz, c->now), &start, &end));
    g_assert_cmpint(start, ==, at(tz, c->start));
    g_assert_cmpint(end, ==, at(tz, c->end));
    /* The neighbours: the second before the start is in the previous cycle, the end
     * second begins the next one. */
    {
        gint64 s2 = 0, e2 = 0;

        g_assert_true(ca_billing_cycle_find(&cycle, tz, start - 1, &s2, &e2));
        g_assert_cmpint(e2, ==, start);
        g_assert_true(ca_billing_cycle_find(&cycle, tz, end, &s2, &e2));
        g_assert_cmpint(s2, ==, end);
    }
}

/* Lengths across DST in seconds: a day of 23 and one of 25 hours, March an hour short. */
static void
test_dst_lengths(void)
{
    g_autoptr(GTimeZone) tz = g_time_zone_new_identifier("Europe/Berlin");
    CaBillingCycle daily = {CA_BILLING_DAILY, 0, 0, 0, 0, 0, 0};
    CaBillingCycle monthly = {CA_BILLING_MONTHLY, 1, 0, 0, 0, 0, 0};
    gint64 s, e;

    g_assert_true(ca_billing_cycle_find(&daily, tz, at(tz, "2026-03-29 12:00:00"), &s, &e));
    g_assert_cmpint(e - s, ==, 23 * 3600);
    g_assert_true(ca_billing_cycle_find(&daily, tz, at(tz, "2026-10-25 12:00:00"), &s, &e));
    g_assert_cmpint(e - s, ==, 25 * 3600);
    g_assert_true(ca_billing_cycle_find(&monthly, tz, at(tz, "2026-03-15 12:00:00"), &s, &e));
    g_assert_cmpint(e - s, ==, 31 * 86400 - 3600);
}

/* A start hour that does not exist on the day (02:00 on Mar 29 in Berlin) begins at the
 * first instant that does (03:00 CEST = 01:00 UTC); the ambiguous 02:00 on Oct 25 is read
 * as standard time (CET, the later of the two). */
static void
test_dst_gap(void)
{
    g_autoptr(GTimeZone) tz = g_time_zone_new_identifier("Europe/Berlin");
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    CaBillingCycle daily = {CA_BILLING_DAILY, 0, 2, 0, 0, 0, 0};
    gint64 s, e;

    g_assert_true(ca_billing_cycle_find(&daily, tz, at(utc, "2026-03-29 12:00:00"), &s, &e));
    g_assert_cmpint(s, ==, at(utc, "2026-03-29 01:00:00"));
    g_assert_cmpint(e, ==, at(utc, "2026-03-30 00:00:00"));
    /* The cycle before ends where this one starts: no instant belongs to none. */
    g_assert_true(ca_billing_cycle_find(&daily, tz, s - 1, &s, &e));
    g_assert_cmpint(s, ==, at(utc, "2026-03-28 01:00:00"));
    g_assert_cmpint(e, ==, at(utc, "2026-03-29 01:00:00"));
    g_assert_true(ca_billing_cycle_find(&daily, tz, at(utc, "2026-10-25 12:00:00"), &s, &e));
    g_assert_cmpint(s, ==, at(utc, "2026-10-25 01:00:00"));
}

static void
test_invalid(void)
{
    g_autoptr(GTimeZone) utc = g_time_zone_new_utc();
    CaBillingCycle c = {CA_BILLING_WEEKLY, 8, 0, 0, 0, 0, 0};
    GDateYear y;
    GDateMonth m;
    GDateDay d;
    gint64 s, e;

    g_assert_false(ca_billing_cycle_find(&c, utc, 1000000000, &s, &e));
    c.kind = CA_BILLING_MONTHLY;
    c.start_day = 0;
    g_assert_false(ca_billing_cycle_find(&c, utc, 1000000000, &s, &e));
    c.start_day = 1;
    c.start_hour = 24;
    g_assert_false(ca_billing_cycle_find(&c, utc, 1000000000, &s, &e));
    c.kind = CA_BILLING_DAYS;
    c.start_hour = 0;
    c.days = 10; /* no anchor */
    g_assert_false(ca_billing_cycle_find(&c, utc, 1000000000, &s, &e));
    g_assert_false(ca_billing_parse_date("2026-02-29", &y, &m, &d));
    g_assert_false(ca_billing_parse_date("2026-1-01", &y, &m, &d));
    g_assert_false(ca_billing_parse_date("2026-01-01x", &y, &m, &d));
    g_assert_true(ca_billing_parse_date("2028-02-29", &y, &m, &d));
    g_assert_cmpint(d, ==, 29);
}

static void
test_kind_names(void)
{
    CaBillingKind k;

    g_assert_true(ca_billing_kind_from_string("days", &k));
    g_assert_cmpint(k, ==, CA_BILLING_DAYS);
    g_assert_cmpstr(ca_billing_kind_to_string(CA_BILLING_WEEKLY), ==, "weekly");
    g_assert_false(ca_billing_kind_from_string("yearly", &k));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *path = g_strdup_printf("/billing-cycle/%s", cases[i].name);
        g_test_add_data_func(path, &cases[i], test_case);
    }
    g_test_add_func("/billing-cycle/dst-lengths", test_dst_lengths);
    g_test_add_func("/billing-cycle/dst-gap", test_dst_gap);
    g_test_add_func("/billing-cycle/invalid", test_invalid);
    g_test_add_func("/billing-cycle/kind-names", test_kind_names);
    return g_test_run();
}
