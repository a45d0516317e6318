/* usage-settings: usage accounting's typed settings and plan choice (usage-settings.h). */
#include "usage-settings.h"

#include <stdlib.h>
#include <string.h>

const char *
ca_usage_at_limit_to_string(CaUsageAtLimit action)
{
    switch (action) {
    case CA_USAGE_AT_LIMIT_ALERT:
        return "alert";
    case CA_USAGE_AT_LIMIT_ESSENTIAL_ONLY:
        return "essential-only";
    case CA_USAGE_AT_LIMIT_DISCONNECT:
        return "disconnect";
    case CA_USAGE_AT_LIMIT_NEXT_UPLINK:
        return "next-uplink";
    }
    g_assert_not_reached();
}

void
ca_usage_default_cycle(CaBillingCycle *out)
{
    memset(out, 0, sizeof *out);
    out->kind = CA_BILLING_MONTHLY;
    out->start_day = 1;
    out->days = 30;
}

static void
plan_free(gpointer data)
{
    CaUsagePlan *p = data;

    g_free(p->name);
    g_strfreev(p->iccids);
    g_free(p);
}

static int
compare_uint(const void *a, const void *b)
{
    guint x = *(const guint *) a, y = *(const guint *) b;

    return x < y ? -1 : x > y;
}

static CaUsagePlan *
plan_load(const CaConfig *config, const char *group)
{
    CaUsagePlan *p = g_new0(CaUsagePlan, 1);
    gboolean binary = g_str_equal(ca_config_get_string(config, group, "units"), "binary");
    guint64 mb = binary ? 1024 * 1024 : 1000 * 1000, kb = binary ? 1024 : 1000;
    const char *const *alerts = ca_config_get_list(config, group, "alerts");
    guint n = 0;

    p->name = g_strdup(group + strlen("plan-"));
    p->iccids = g_strdupv((char **) ca_config_get_list(config, group, "iccid"));
    p->limit_bytes = (guint64) ca_config_get_int(config, group, "limit-mb") * mb;
    if (!ca_billing_kind_from_string(ca_config_get_string(config, group, "cycle"), &p->cycle.kind))
        g_assert_not_reached(); /* the key table's choices are the kinds' names */
    p->cycle.start_day = (guint) ca_config_get_int(config, group, "cycle-start-day");
    p->cycle.start_hour = (guint) ca_config_get_int(config, group, "cycle-start-hour");
    p->cycle.days = (guint) ca_config_get_int(config, group, "cycle-days");
    ca_billing_parse_date(ca_config_get_string(config, group, "cycle-anchor"),
                          &p->cycle.anchor_year, &p->cycle.anchor_month, &p->cycle.anchor_day);
    for (guint i = 0; alerts && alerts[i] && n < CA_USAGE_MAX_ALERTS; i++) {
        guint v = (guint) strtoul(alerts[i], NULL, 10);
        gboolean seen = FALSE;

        for (guint j = 0; j < n; j++)
            seen |= p->alerts[j] == v;
        if (!seen)
            p->alerts[n++] = v;
    }
    qsort(p->alerts, n, sizeof p->alerts[0], compare_uint);
    p->n_alerts = n;
    p->at_limit = CA_USAGE_AT_LIMIT_ALERT;
    for (CaUsageAtLimit a = CA_USAGE_AT_LIMIT_ALERT; a <= CA_USAGE_AT_LIMIT_NEXT_UPLINK; a++) {
        if (g_str_equal(ca_config_get_string(config, group, "at-limit"),
                        ca_usage_at_limit_to_string(a)))
            p->at_limit = a;
    }
    p->model.overhead_per_packet = (guint) ca_config_get_int(config, group, "packet-overhead");
    p->model.session_round = (guint64) ca_config_get_int(config, group, "session-rounding-kb") * kb;
    return p;
}

void
ca_usage_settings_load(CaUsageSettings *out, const CaConfig *config)
{
    g_auto(GStrv) groups = ca_config_get_groups_with_prefix(config, "plan-");

    memset(out, 0, sizeof *out);
    out->enabled = ca_config_get_bool(config, "usage", "enabled");
    out->sample_interval_ms = (guint) ca_config_get_int(config, "usage", "sample-interval") * 1000;
    out->save_interval_ms = (guint) ca_config_get_int(config, "usage", "save-interval") * 1000;
    out->publish_interval_ms =
        (guint) ca_config_get_int(config, "usage", "publish-interval") * 1000;
    out->timezone = g_strdup(ca_config_get_string(config, "usage", "timezone"));
    out->max_sims = (guint) ca_config_get_int(config, "usage", "max-sims");
    out->state_dir = g_strdup(ca_config_get_string(config, "agent", "state-dir"));
    out->plans = g_ptr_array_new_with_free_func(plan_free);
    for (int i = 0; groups[i]; i++)
        g_ptr_array_add(out->plans, plan_load(config, groups[i]));
}

void
ca_usage_settings_clear(CaUsageSettings *settings)
{
    if (!settings)
        return;
    g_free(settings->timezone);
    g_free(settings->state_dir);
    g_clear_pointer(&settings->plans, g_ptr_array_unref);
    memset(settings, 0, sizeof *settings);
}

static gboolean
plan_equal(const CaUsagePlan *a, const CaUsagePlan *b)
{
    return g_str_equal(a->name, b->name) &&
           ca_settings_strv_equal((const char *const *) a->iccids,
                                  (const char *const *) b->iccids) &&
           a->limit_bytes == b->limit_bytes && memcmp(&a->cycle, &b->cycle, sizeof a->cycle) == 0 &&
           a->n_alerts == b->n_alerts && memcmp(a->alerts, b->alerts, sizeof a->alerts) == 0 &&
           a->at_limit == b->at_limit &&
           a->model.overhead_per_packet == b->model.overhead_per_packet &&
           a->model.session_round == b->model.session_round;
}

gboolean
ca_usage_settings_equal(const CaUsageSettings *a, const CaUsageSettings *b)
{
    if (a->enabled != b->enabled || a->sample_interval_ms != b->sample_interval_ms ||
        a->save_interval_ms != b->save_interval_ms ||
        a->publish_interval_ms != b->publish_interval_ms ||
        !ca_settings_str_equal(a->timezone, b->timezone) || a->max_sims != b->max_sims ||
        !ca_settings_str_equal(a->state_dir, b->state_dir) || a->plans->len != b->plans->len)
        return FALSE;
    for (guint i = 0; i < a->plans->len; i++) {
        if (!plan_equal(g_ptr_array_index(a->plans, i), g_ptr_array_index(b->plans, i)))
            return FALSE;
    }
    return TRUE;
}

/* How well entry matches iccid: G_MAXINT exact, the prefix length for a prefix, -1 none. */
static int
match_score(const char *entry, const char *iccid)
{
    gsize n = strlen(entry);

    if (n > 0 && entry[n - 1] == '*')
        return strncmp(entry, iccid, n - 1) == 0 ? (int) n - 1 : -1;
    return g_str_equal(entry, iccid) ? G_MAXINT : -1;
}

const CaUsagePlan *
ca_usage_settings_find_plan(const CaUsageSettings *settings, const char *iccid)
{
    const CaUsagePlan *best = NULL, *any = NULL;
    int best_score = -1;

    for (guint i = 0; settings->plans && i < settings->plans->len; i++) {
        const CaUsagePlan *p = g_ptr_array_index(settings->plans, i);

        if (!p->iccids || !p->iccids[0]) {
            if (!any)
                any = p;
            continue;
        }
        for (int j = 0; iccid && p->iccids[j]; j++) {
            int score = match_score(p->iccids[j], iccid);

            if (score > best_score) {
                best_score = score;
                best = p;
            }
        }
    }
    return best ? best : any;
}

GTimeZone *
ca_usage_settings_get_tz(const CaUsageSettings *settings)
{
    GTimeZone *tz = NULL;

    if (settings->timezone && *settings->timezone)
        tz = g_time_zone_new_identifier(settings->timezone);
    return tz ? tz : g_time_zone_new_local();
}

/*****************************************************************************/
/* Validators */

gboolean
ca_usage_check_iccid(const char *value, char **why)
{
    gsize n = strlen(value);
    gboolean prefix = n > 0 && value[n - 1] == '*';

    if (prefix)
        n--;
    for (gsize i = 0; i < n; i++) {
        if (!g_ascii_isdigit(value[i])) {
            *why = g_strdup("an ICCID is digits (a prefix ends in *)");
            return FALSE;
        }
    }
    if (n < (prefix ? 2 : 18) || n > 22) {
        *why = g_strdup(prefix ? "a prefix has 2-22 digits before *"
                               : "an ICCID has 18-22 digits (a prefix ends in *)");
        return FALSE;
    }
    return TRUE;
}

gboolean
ca_usage_check_percent(const char *value, char **why)
{
    char *end = NULL;
    guint64 v = g_ascii_strtoull(value, &end, 10);

    if (!g_ascii_isdigit(value[0]) || *end != '\0' || v < 1 || v > 100) {
        *why = g_strdup("a percentage of the limit, 1-100");
        return FALSE;
    }
    return TRUE;
}

gboolean
ca_usage_check_date(const char *value, char **why)
{
    GDateYear y;
    GDateMonth m;
    GDateDay d;

    if (*value == '\0' || ca_billing_parse_date(value, &y, &m, &d))
        return TRUE;
    *why = g_strdup("a date YYYY-MM-DD");
    return FALSE;
}

gboolean
ca_usage_check_timezone(const char *value, char **why)
{
    g_autoptr(GTimeZone) tz = NULL;

    if (*value == '\0')
        return TRUE;
    tz = g_time_zone_new_identifier(value);
    if (tz)
        return TRUE;
    *why = g_strdup("not a time zone this system knows (an IANA name such as Africa/Nairobi, "
                    "or UTC)");
    return FALSE;
}
