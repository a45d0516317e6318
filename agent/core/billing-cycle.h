/* billing-cycle: the billing calendar of a data plan. Given a local time zone and an
 * instant, which cycle it falls in: [start, end) as unix seconds. Cycles begin at a start
 * hour on a civil date in the plan's time zone: monthly on a day of the month (clamped to
 * the month's last day: day 31 starts on Feb 28 or 29, Apr 30), weekly on a weekday, daily,
 * or every N days counted from an anchor date. Civil dates, not fixed durations: a cycle
 * that crosses a DST change is an hour shorter or longer, and a start hour that does not
 * exist on the day (the spring-forward gap) is the first existing instant after it.
 * Owns: calendar arithmetic (GDate, GDateTime). Does not own: the clock, the settings. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

typedef enum {
    CA_BILLING_MONTHLY, /* start_day of each month, clamped to the month's end */
    CA_BILLING_WEEKLY,  /* start_day = ISO weekday, 1 Monday .. 7 Sunday */
    CA_BILLING_DAILY,   /* every day */
    CA_BILLING_DAYS,    /* every days days, counted from the anchor date */
} CaBillingKind;

/* "monthly", "weekly", "daily", "days". */
const char *ca_billing_kind_to_string(CaBillingKind kind);
/* The reverse; FALSE for an unknown name. */
gboolean ca_billing_kind_from_string(const char *name, CaBillingKind *out_kind);

typedef struct {
    CaBillingKind kind;
    guint start_day;  /* monthly 1-31, weekly 1-7; ignored otherwise */
    guint start_hour; /* 0-23, local */
    guint days;       /* CA_BILLING_DAYS: cycle length, >= 1 */
    GDateYear anchor_year;
    GDateMonth anchor_month;
    GDateDay anchor_day; /* CA_BILLING_DAYS: a date on which a cycle starts */
} CaBillingCycle;

/* The cycle holding now_s (unix seconds) in tz: *out_start <= now_s < *out_end. FALSE only
 * for a cycle the calendar cannot place (invalid fields, dates outside GLib's range). */
gboolean ca_billing_cycle_find(const CaBillingCycle *cycle, GTimeZone *tz, gint64 now_s,
                               gint64 *out_start, gint64 *out_end);

/* Parse "YYYY-MM-DD" (a valid civil date) into the anchor fields. */
gboolean ca_billing_parse_date(const char *text, GDateYear *out_year, GDateMonth *out_month,
                               GDateDay *out_day);

G_END_DECLS
