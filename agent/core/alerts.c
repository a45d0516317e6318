/* alerts: when to send the "no data link" and "data link back" SMS.
 * Owns: the outage state machine, the rate limit between alerts, the message texts.
 * Does not own: the health verdicts (failover), timers or sending (agent.c). */
#define CA_LOG_MODULE "alerts"
#include "alerts.h"

#include <string.h>

/* One SMS of the GSM 7-bit alphabet. */
#define SMS_MAX 160

struct _CaAlerts {
    CaAlertsConfig config;
    CaAlertsState state;
    gint64 down_since; /* PENDING, SUPPRESSED, ALERTED */
    gboolean have_last_alert;
    gint64 last_alert;
    guint unreported; /* outages since the last alert that never got one */
};

const char *
ca_alerts_state_to_string(CaAlertsState state)
{
    switch (state) {
    case CA_ALERTS_UP:
        return "up";
    case CA_ALERTS_PENDING:
        return "pending";
    case CA_ALERTS_SUPPRESSED:
        return "suppressed";
    case CA_ALERTS_ALERTED:
        return "alerted";
    }
    return "?";
}

CaAlerts *
ca_alerts_new(const CaAlertsConfig *config, gint64 now)
{
    CaAlerts *self = g_new0(CaAlerts, 1);

    self->config = *config;
    self->state = CA_ALERTS_PENDING;
    self->down_since = now;
    return self;
}

void
ca_alerts_free(CaAlerts *self)
{
    g_free(self);
}

void
ca_alerts_set_config(CaAlerts *self, const CaAlertsConfig *config)
{
    self->config = *config;
}

void
ca_alerts_restore_last_alert(CaAlerts *self, gint64 last_alert)
{
    self->have_last_alert = TRUE;
    self->last_alert = last_alert;
}

gboolean
ca_alerts_get_last_alert(const CaAlerts *self, gint64 *out_last_alert)
{
    if (self->have_last_alert && out_last_alert)
        *out_last_alert = self->last_alert;
    return self->have_last_alert;
}

CaAlertsState
ca_alerts_get_state(const CaAlerts *self)
{
    return self->state;
}

static gboolean
rate_allows(const CaAlerts *self, gint64 now)
{
    return !self->have_last_alert || now - self->last_alert >= self->config.min_interval_ms;
}

CaAlert
ca_alerts_tick(CaAlerts *self, gint64 now)
{
    CaAlert out = {.kind = CA_ALERT_NONE};

    switch (self->state) {
    case CA_ALERTS_UP:
    case CA_ALERTS_ALERTED:
        return out;
    case CA_ALERTS_PENDING:
        if (now - self->down_since < self->config.down_after_ms)
            return out;
        if (!rate_allows(self, now)) {
            self->state = CA_ALERTS_SUPPRESSED;
            return out;
        }
        break;
    case CA_ALERTS_SUPPRESSED:
        if (!rate_allows(self, now))
            return out;
        break;
    }
    out.kind = CA_ALERT_DOWN;
    out.down_since = self->down_since;
    out.duration_ms = now - self->down_since;
    out.unreported = self->unreported;
    self->unreported = 0;
    self->have_last_alert = TRUE;
    self->last_alert = now;
    self->state = CA_ALERTS_ALERTED;
    return out;
}

CaAlert
ca_alerts_set_data(CaAlerts *self, gboolean data_ok, gint64 now)
{
    CaAlert out = {.kind = CA_ALERT_NONE};

    if (!data_ok) {
        if (self->state == CA_ALERTS_UP) {
            self->state = CA_ALERTS_PENDING;
            self->down_since = now;
        }
        return ca_alerts_tick(self, now);
    }
    switch (self->state) {
    case CA_ALERTS_UP:
    case CA_ALERTS_PENDING:
        break;
    case CA_ALERTS_SUPPRESSED:
        /* Long enough to alert, but rate-limited: mention it in the next alert. */
        self->unreported++;
        break;
    case CA_ALERTS_ALERTED:
        out.kind = CA_ALERT_RECOVERED;
        out.down_since = self->down_since;
        out.duration_ms = now - self->down_since;
        break;
    }
    self->state = CA_ALERTS_UP;
    return out;
}

gint64
ca_alerts_next_deadline(const CaAlerts *self)
{
    switch (self->state) {
    case CA_ALERTS_UP:
    case CA_ALERTS_ALERTED:
        return G_MAXINT64;
    case CA_ALERTS_PENDING:
        return self->down_since + self->config.down_after_ms;
    case CA_ALERTS_SUPPRESSED:
        return self->last_alert + self->config.min_interval_ms;
    }
    return G_MAXINT64;
}

gboolean
ca_alerts_link_is_healthy(const cJSON *link)
{
    const cJSON *uplinks = cJSON_GetObjectItemCaseSensitive(link, "uplinks");
    const cJSON *u;

    cJSON_ArrayForEach(u, uplinks)
    {
        const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(u, "state"));
        if (state && strcmp(state, "up") == 0)
            return TRUE;
    }
    return FALSE;
}

/*****************************************************************************/
/* Texts */

char *
ca_alerts_format_duration(gint64 ms)
{
    gint64 s = MAX(ms, 0) / 1000;

    if (s < 60)
        return g_strdup_printf("%" G_GINT64_FORMAT " s", s);
    if (s < 3600)
        return g_strdup_printf("%" G_GINT64_FORMAT " min", s / 60);
    if (s < 86400) {
        if ((s % 3600) / 60 == 0)
            return g_strdup_printf("%" G_GINT64_FORMAT " h", s / 3600);
        return g_strdup_printf("%" G_GINT64_FORMAT " h %" G_GINT64_FORMAT " min", s / 3600,
                               (s % 3600) / 60);
    }
    if ((s % 86400) / 3600 == 0)
        return g_strdup_printf("%" G_GINT64_FORMAT " d", s / 86400);
    return g_strdup_printf("%" G_GINT64_FORMAT " d %" G_GINT64_FORMAT " h", s / 86400,
                           (s % 86400) / 3600);
}

/* Keep A-Z a-z 0-9 . _ - (all in the GSM 7-bit default alphabet), at most max. */
static char *
sms_safe(const char *s, gsize max)
{
    GString *out = g_string_new(NULL);

    for (; s && *s && out->len < max; s++) {
        if (g_ascii_isalnum(*s) || *s == '.' || *s == '_' || *s == '-')
            g_string_append_c(out, *s);
    }
    return g_string_free(out, FALSE);
}

char *
ca_alerts_format(const CaAlert *alert, const char *device_id, gint64 now, gint64 now_wall_us,
                 const char *uplink)
{
    g_autofree char *dev = sms_safe(device_id, 64);
    g_autofree char *dur = ca_alerts_format_duration(alert->duration_ms);
    gint64 since_wall_s = (now_wall_us - (now - alert->down_since) * 1000) / G_USEC_PER_SEC;
    g_autoptr(GDateTime) since = g_date_time_new_from_unix_utc(since_wall_s);
    g_autofree char *since_text = since ? g_date_time_format(since, "%Y-%m-%d %H:%M") : NULL;
    g_autofree char *via = sms_safe(uplink, 32);
    GString *s = g_string_new(NULL);

    switch (alert->kind) {
    case CA_ALERT_DOWN:
        g_string_append_printf(s, "%s: no data link for %s (since %s UTC)", dev, dur,
                               since_text ? since_text : "?");
        if (alert->unreported > 0)
            g_string_append_printf(s, "; %u earlier outage%s unreported",
                                   MIN(alert->unreported, 999u), alert->unreported == 1 ? "" : "s");
        g_string_append_c(s, '.');
        break;
    case CA_ALERT_RECOVERED:
        g_string_append_printf(s, "%s: data link back after %s (down since %s UTC)", dev, dur,
                               since_text ? since_text : "?");
        if (*via && s->len + strlen(" via .") + strlen(via) <= SMS_MAX)
            g_string_append_printf(s, " via %s", via);
        g_string_append_c(s, '.');
        break;
    case CA_ALERT_NONE:
        break;
    }
    return g_string_free(s, FALSE);
}
