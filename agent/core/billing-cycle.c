/* billing-cycle: cycle boundaries in a plan's local calendar (billing-cycle.h). Every
 * boundary is a civil date plus the start hour, turned into an instant by GDateTime in the
 * plan's zone, so month lengths, leap years and DST come from the calendar, never from
 * adding seconds. */
#include "billing-cycle.h"

#include <stdio.h>
#include <string.h>

const char *
ca_billing_kind_to_string(CaBillingKind kind)
{
    switch (kind) {
    case CA_BILLING_MONTHLY:
        return "monthly";
    case CA_BILLING_WEEKLY:
        return "weekly";
    case CA_BILLING_DAILY:
        return "daily";
    case CA_BILLING_DAYS:
        return "days";
    }
    g_assert_not_reached();
}

gboolean
ca_billing_kind_from_string(const char *name, CaBillingKind *out_kind)
{
    static const CaBillingKind all[] = {CA_BILLING_MONTHLY, CA_BILLING_WEEKLY, CA_BILLING_DAILY,
                                        CA_BILLING_DAYS};

    for (gsize i = 0; i < G_N_ELEMENTS(all); i++) {
        if (g_strcmp0(name, ca_billing_kind_to_string(all[i])) == 0) {
            *out_kind = all[i];
            return TRUE;
        }
    }
    return FALSE;
}

gboolean
ca_billing_parse_date(const char *text, GDateYear *out_year, GDateMonth *out_month,
                      GDateDay *out_day)
{
    unsigned y, m, d;
    char tail;

    if (!text || strlen(text) != 10 || text[4] != '-' || text[7] != '-' ||
        sscanf(text, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3)
        return FALSE;
    if (y < 1970 || y > 9999 || !g_date_valid_dmy((GDateDay) d, (GDateMonth) m, (GDateYear) y))
        return FALSE;
    *out_year = (GDateYear) y;
    *out_month = (GDateMonth) m;
    *out_day = (GDateDay) d;
    return TRUE;
}

/* The instant a cycle starting on date begins: date at start_hour in tz. GDateTime takes
 * the standard-time reading of an ambiguous hour and moves an hour that does not exist
 * (the spring-forward gap) to the first one that does. */
static gboolean
boundary(const GDate *date, guint hour, GTimeZone *tz, gint64 *out_s)
{
    g_autoptr(GDateTime) dt = NULL;

    if (!g_date_valid(date))
        return FALSE;
    dt = g_date_time_new(tz, g_date_get_year(date), g_date_get_month(date), g_date_get_day(date),
                         (int) hour, 0, 0);
    if (!dt)
        return FALSE;
    *out_s = g_date_time_to_unix(dt);
    return TRUE;
}

/* The monthly start date in year/month: start_day clamped to the month's last day. */
static void
month_start(GDate *out, GDateYear year, GDateMonth month, guint start_day)
{
    guint8 last = g_date_get_days_in_month(month, year);

    g_date_clear(out, 1);
    g_date_set_dmy(out, (GDateDay) MIN(start_day, last), month, year);
}

/* The start date of the cycle that holds the civil date today (ignoring the hour). */
static gboolean
start_on_or_before(const CaBillingCycle *c, const GDate *today, GDate *out)
{
    GDateYear y = g_date_get_year(today);
    GDateMonth m = g_date_get_month(today);

    switch (c->kind) {
    case CA_BILLING_MONTHLY:
        month_start(out, y, m, c->start_day);
        if (g_date_compare(out, today) > 0) {
            if (m == G_DATE_JANUARY) {
                m = G_DATE_DECEMBER;
                y--;
            } else {
                m--;
            }
            month_start(out, y, m, c->start_day);
        }
        return TRUE;
    case CA_BILLING_WEEKLY:
        *out = *today;
        g_date_subtract_days(out, ((guint) g_date_get_weekday(today) + 7 - c->start_day) % 7);
        return TRUE;
    case CA_BILLING_DAILY:
        *out = *today;
        return TRUE;
    case CA_BILLING_DAYS: {
        GDate anchor;
        gint64 diff, k;

        g_date_clear(&anchor, 1);
        if (!g_date_valid_dmy(c->anchor_day, c->anchor_month, c->anchor_year))
            return FALSE;
        g_date_set_dmy(&anchor, c->anchor_day, c->anchor_month, c->anchor_year);
        diff = (gint64) g_date_get_julian(today) - (gint64) g_date_get_julian(&anchor);
        k = diff >= 0 ? diff / c->days : -((-diff + c->days - 1) / c->days);
        g_date_clear(out, 1);
        g_date_set_julian(out, (guint32) ((gint64) g_date_get_julian(&anchor) + k * c->days));
        return TRUE;
    }
    }
    g_assert_not_reached();
}

/* The start date of the cycle after the one starting on start. */
static void
next_start(const CaBillingCycle *c, const GDate *start, GDate *out)
{
    GDateYear y = g_date_get_year(start);
    GDateMonth m = g_date_get_month(start);

    switch (c->kind) {
    case CA_BILLING_MONTHLY:
        if (m == G_DATE_DECEMBER) {
            m = G_DATE_JANUARY;
            y++;
        } else {
            m++;
        }
        month_start(out, y, m, c->start_day);
        return;
    case CA_BILLING_WEEKLY:
        *out = *start;
        g_date_add_days(out, 7);
        return;
    case CA_BILLING_DAILY:
        *out = *start;
        g_date_add_days(out, 1);
        return;
    case CA_BILLING_DAYS:
        *out = *start;
        g_date_add_days(out, c->days);
        return;
    }
    g_assert_not_reached();
}

/* The start date of the cycle before the one starting on start. */
static void
prev_start(const CaBillingCycle *c, const GDate *start, GDate *out)
{
    GDate day = *start;

    /* The cycle holding the day before start began before start. */
    g_date_subtract_days(&day, 1);
    start_on_or_before(c, &day, out);
}

static gboolean
cycle_valid(const CaBillingCycle *c)
{
    if (c->start_hour > 23)
        return FALSE;
    switch (c->kind) {
    case CA_BILLING_MONTHLY:
        return c->start_day >= 1 && c->start_day <= 31;
    case CA_BILLING_WEEKLY:
        return c->start_day >= 1 && c->start_day <= 7;
    case CA_BILLING_DAILY:
        return TRUE;
    case CA_BILLING_DAYS:
        return c->days >= 1 && c->days <= 3660;
    }
    g_assert_not_reached();
}

gboolean
ca_billing_cycle_find(const CaBillingCycle *cycle, GTimeZone *tz, gint64 now_s, gint64 *out_start,
                      gint64 *out_end)
{
    g_autoptr(GDateTime) now = NULL;
    GDate today, start, next;
    gint64 start_s, end_s;

    if (!cycle_valid(cycle))
        return FALSE;
    {
        g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc(now_s);

        if (!utc)
            return FALSE;
        now = g_date_time_to_timezone(utc, tz);
    }
    if (!now)
        return FALSE;
    g_date_clear(&today, 1);
    g_date_set_dmy(&today, (GDateDay) g_date_time_get_day_of_month(now),
                   (GDateMonth) g_date_time_get_month(now), (GDateYear) g_date_time_get_year(now));
    if (!start_on_or_before(cycle, &today, &start) ||
        !boundary(&start, cycle->start_hour, tz, &start_s))
        return FALSE;
    /* Before the start hour on the start day: still the previous cycle. */
    if (start_s > now_s) {
        prev_start(cycle, &start, &next);
        start = next;
        if (!boundary(&start, cycle->start_hour, tz, &start_s))
            return FALSE;
    }
    next_start(cycle, &start, &next);
    if (!boundary(&next, cycle->start_hour, tz, &end_s))
        return FALSE;
    /* start <= now < end by construction; checked so a calendar surprise can never hand
     * the caller an empty or inverted cycle. */
    if (end_s <= now_s || start_s > now_s)
        return FALSE;
    *out_start = start_s;
    *out_end = end_s;
    return TRUE;
}
