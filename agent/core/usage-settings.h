/* usage-settings: CaUsageSettings, what usage accounting reads from the config: [usage]
 * (sampling, saving, publishing, the time zone of the billing calendar, the store's bound),
 * every [plan-NAME] group, [agent] state-dir. The pattern is in settings.h; the key table
 * (config-keys.c) validates, config.c's cross-checks reject plans the calendar cannot place.
 * Also the pure choice of a SIM's plan. */
#pragma once
#include "billing-cycle.h"
#include "config.h"
#include "settings.h"
#include "usage-counter.h"

G_BEGIN_DECLS

typedef enum {
    CA_USAGE_AT_LIMIT_ALERT,          /* events, SMS alert; traffic is not touched */
    CA_USAGE_AT_LIMIT_ESSENTIAL_ONLY, /* and cellular carries only the agent's own traffic */
    CA_USAGE_AT_LIMIT_DISCONNECT,     /* and the cellular connection is taken down */
    CA_USAGE_AT_LIMIT_NEXT_UPLINK,    /* and any other uplink first, else essential-only */
} CaUsageAtLimit;

/* "alert", "essential-only", "disconnect", "next-uplink" (the config's values). */
const char *ca_usage_at_limit_to_string(CaUsageAtLimit action);

#define CA_USAGE_MAX_ALERTS 8

typedef struct {
    char *name;                        /* NAME of [plan-NAME] */
    GStrv iccids;                      /* exact ICCIDs or prefixes ending in '*'; empty: any SIM */
    guint64 limit_bytes;               /* 0: no limit */
    CaBillingCycle cycle;              /* the billing calendar */
    guint alerts[CA_USAGE_MAX_ALERTS]; /* percentages, ascending, no repeats */
    guint n_alerts;
    CaUsageAtLimit at_limit;
    CaBillingModel model;
} CaUsagePlan;

typedef struct {
    gboolean enabled;
    guint sample_interval_ms;
    guint save_interval_ms;
    guint publish_interval_ms; /* least time between traffic-driven <base>/usage messages */
    char *timezone;            /* "" = the system's local zone */
    guint max_sims;            /* SIMs (ICCIDs) the store keeps */
    char *state_dir;           /* [agent] state-dir: usage.json */
    GPtrArray *plans;          /* CaUsagePlan*, in group name order */
} CaUsageSettings;

/* Fill out (zeroed or cleared first) from config. */
void ca_usage_settings_load(CaUsageSettings *out, const CaConfig *config);
/* Free what settings owns and zero it; NULL-safe. */
void ca_usage_settings_clear(CaUsageSettings *settings);
gboolean ca_usage_settings_equal(const CaUsageSettings *a, const CaUsageSettings *b);

/* The plan of the SIM iccid (NULL: unknown SIM): an exact ICCID first, then the longest
 * prefix, then a plan that names no ICCID; among equals the first group by name. NULL
 * when none applies (counting goes on in calendar months, without a limit). */
const CaUsagePlan *ca_usage_settings_find_plan(const CaUsageSettings *settings, const char *iccid);
/* The calendar used without a plan: monthly from the 1st, 00:00. */
void ca_usage_default_cycle(CaBillingCycle *out);
/* The time zone of settings->timezone (the local zone when empty or unknown). */
GTimeZone *ca_usage_settings_get_tz(const CaUsageSettings *settings);

/* Key table validators: an ICCID or ICCID prefix ("8925402*"); an alert percentage; an
 * anchor date (YYYY-MM-DD, empty allowed); a time zone identifier (empty allowed). */
gboolean ca_usage_check_iccid(const char *value, char **why);
gboolean ca_usage_check_percent(const char *value, char **why);
gboolean ca_usage_check_date(const char *value, char **why);
gboolean ca_usage_check_timezone(const char *value, char **why);

G_END_DECLS
