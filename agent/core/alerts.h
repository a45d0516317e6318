/* alerts: the pure policy of [sms-alerts]. From one fact, "some uplink passed its health
 * check", and an injected monotonic clock it decides when an outage has lasted
 * data-down-after (one alert per incident), when it is over (one recovery with the outage
 * duration, only after an alert), and keeps alert SMS at least min-interval apart: an
 * outage that starts sooner is reported once the interval has passed if it still lasts,
 * and outages that came and went unreported are counted into the next message.
 * Owns: decisions and message texts. Does not own: clocks, timers, sending (agent.c). */
#pragma once
#include "config.h"

#include <cjson/cJSON.h>
#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    gint64 down_after_ms;   /* data-down-after */
    gint64 min_interval_ms; /* min-interval between two alerts */
} CaAlertsConfig;

/* Loaded from [sms-alerts] by ca_remote_settings_load (remote-settings.h). */

typedef enum {
    CA_ALERTS_UP,         /* data flows (or an outage shorter than down-after ended) */
    CA_ALERTS_PENDING,    /* no data since down_since, not yet down-after long */
    CA_ALERTS_SUPPRESSED, /* down-after passed but the last alert is too recent */
    CA_ALERTS_ALERTED,    /* the alert for this outage went out */
} CaAlertsState;

const char *ca_alerts_state_to_string(CaAlertsState state);

typedef enum {
    CA_ALERT_NONE,      /* nothing to send */
    CA_ALERT_DOWN,      /* send the alert */
    CA_ALERT_RECOVERED, /* send the recovery */
} CaAlertKind;

typedef struct {
    CaAlertKind kind;
    gint64 down_since;  /* monotonic ms the outage began */
    gint64 duration_ms; /* DOWN: so far; RECOVERED: the whole outage */
    guint unreported;   /* outages that came and went without an alert since the last one */
} CaAlert;

typedef struct _CaAlerts CaAlerts;

/* A policy that starts with no data since now (an agent that starts without a working
 * uplink alerts after down-after like any other outage). now: monotonic ms. */
CaAlerts *ca_alerts_new(const CaAlertsConfig *config, gint64 now);
void ca_alerts_free(CaAlerts *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaAlerts, ca_alerts_free)

/* Take a new config (reload); the state and the current outage are kept. */
void ca_alerts_set_config(CaAlerts *self, const CaAlertsConfig *config);
/* The last alert went out at last_alert (monotonic ms, may be before 0 of this clock):
 * restores the rate limit across restarts from persisted state. */
void ca_alerts_restore_last_alert(CaAlerts *self, gint64 last_alert);
/* When the last alert went out (monotonic ms); FALSE when none was sent. */
gboolean ca_alerts_get_last_alert(const CaAlerts *self, gint64 *out_last_alert);

/* Feed the fact at now: TRUE when at least one uplink passes its health check. Returns the
 * message to send now (the recovery, at most), else kind NONE. */
CaAlert ca_alerts_set_data(CaAlerts *self, gboolean data_ok, gint64 now);
/* Time passed: returns the alert to send now, else kind NONE. Call at the deadline. */
CaAlert ca_alerts_tick(CaAlerts *self, gint64 now);
/* When ca_alerts_tick must run next at the latest (G_MAXINT64: only on input). */
gint64 ca_alerts_next_deadline(const CaAlerts *self);
CaAlertsState ca_alerts_get_state(const CaAlerts *self);

/* The fact from the retained <base>/link object: TRUE when some uplink's "state" is "up"
 * (it passed its health check). */
gboolean ca_alerts_link_is_healthy(const cJSON *link);
/* "12 s", "5 min", "1 h 5 min", "2 d 3 h". */
char *ca_alerts_format_duration(gint64 ms);
/* The SMS text (GSM 7-bit characters only, at most 160: one SMS):
 *   "DEV: no data link for 10 min (since 2026-11-23 14:02 UTC); 2 earlier outages unreported."
 *   "DEV: data link back after 1 h 5 min (down since 2026-11-23 14:02 UTC) via wired."
 * The unreported part only when outages went unreported; "via" only when it fits.
 * now_wall_us: g_get_real_time() at now, to show when the outage began; uplink: the
 * uplink now in use, or NULL. */
char *ca_alerts_format(const CaAlert *alert, const char *device_id, gint64 now, gint64 now_wall_us,
                       const char *uplink);

G_END_DECLS
