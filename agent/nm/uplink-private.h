/* uplink-private: CaUplink's state, shared by uplink.c (the object, the policy loop,
 * probes, link and status), uplink-nm.c (NetworkManager: client, facts, activation, the
 * cellular profile), uplink-routes.c (route metrics by Reapply, and waiting for the kernel
 * after a switch) and uplink-watchdog.c (carrying out watchdog steps, their state file).
 * Not for other modules. */
#pragma once
#include "backoff.h"
#include "failover.h"
#include "probe.h"
#include "route-watch.h"
#include "uplink-settings.h"
#include "uplink.h"

#include <NetworkManager.h>

/* What we know of one uplink in NetworkManager, and our calls out for it. */
typedef struct {
    NMRemoteConnection *conn; /* ref; NULL when NetworkManager has no such profile */
    NMActiveConnection *ac;   /* ref */
    NMDevice *device;         /* ref */
    guint lead;               /* index of the lead probe */
    guint lead_rounds;
    gboolean probing;
    gboolean activating; /* our activation call is out */
    char *applied_ac;    /* active connection path our metric was applied to */
    guint32 applied_metric;
    gboolean reapplying, reapply_again;
    char *applied_rules; /* the data cap's rules applied with it (uplink-cap.c), "" none */
} CaUplinkRt;

enum {
    CA_UPLINK_SIG_LINK_CHANGED,
    CA_UPLINK_SIG_EVENT,
    CA_UPLINK_SIG_SWITCHED,
    CA_UPLINK_SIG_STATUS_CHANGED,
    CA_UPLINK_SIG_USABLE_CHANGED,
    CA_UPLINK_SIG_MODEM_RESET,
    CA_UPLINK_SIG_SYSTEM_STEP,
    CA_UPLINK_N_SIGNALS
};
extern guint ca_uplink_signals[CA_UPLINK_N_SIGNALS];

struct _CaUplink {
    GObject parent;
    CaUplinkSettings *settings;
    const CaFoConfig *fo_config; /* settings->policy */
    CaFailover *fo;
    CaUplinkRt *rt;
    guint n;
    guint generation; /* bumped when the policy is rebuilt: late results are dropped */
    CaProber *prober;
    GCancellable *cancellable;
    GSource *timer;           /* owned: the policy's next deadline */
    GSource *refresh;         /* owned: coalesced fact refresh */
    GSource *link_timer;      /* owned: rate-limited link publishing */
    GSource *report_timer;    /* owned: periodic link refresh */
    gint64 economy_probe_ms;  /* ca_uplink_set_economy: 0 = not economising */
    gint64 economy_report_ms; /* economy's link refresh interval */
    char *boot_id;
    char *state_path;
    gboolean started;
    gboolean have_modem;
    CaUplinkModemFacts modem;
    char *modem_state, *modem_registration;
    char *link_signature;
    gint64 last_link_ms;
    char *status;
    gboolean usable;      /* last "usable-changed" */
    gboolean facts_known; /* the policy has NetworkManager's facts (since the NMClient came) */
    GTask *shutdown_task;
    GObject *busy_watcher; /* weak */
    /* Planned outage (ca_uplink_set_planned_outage), kept across policy rebuilds. */
    gboolean planned;
    gint64 planned_until; /* CLOCK_BOOTTIME ms */
    /* Data cap (ca_uplink_set_cap), kept across policy rebuilds; the broker's addresses
     * for its rules (uplink-cap.c). */
    CaFoCap cap;
    GPtrArray *cap_broker; /* char*: the broker's addresses */
    gboolean cap_resolving;
    gint64 cap_resolved_at; /* ca_uplink_now_ms(); 0 never */
    /* Watchdog steps carried out by agent.c: the uplink each one is for. */
    char *step_uplink[CA_WD_N_STEPS];

    /* NetworkManager (uplink-nm.c) */
    GDBusConnection *bus; /* private: see bus.h */
    NMClient *client;
    GSource *retry; /* owned: NMClient creation retry */
    CaBackoff retry_backoff;
    gboolean creating_profile;
    /* [cellular] password-file broke the secret-file rule: no connection is created (one
     * without the password would only be refused by the network) until a reload. */
    gboolean password_refused;

    /* Switch settling (uplink-routes.c) */
    char *switch_from, *switch_to, *switch_kind; /* "switched" waits for the new route */
    gboolean switch_pending;
    GSource *switch_timer;     /* owned: emit anyway if the route cannot be applied */
    CaRouteWatch *route_watch; /* while a switch is pending: re-check on route changes */
    gboolean route_watch_warned;
};

/* uplink.c */
gint64 ca_uplink_now_ms(void);
void ca_uplink_schedule_refresh(CaUplink *self);
void ca_uplink_run_policy(CaUplink *self);
void ca_uplink_update_status(CaUplink *self);
/* Emit "event" with fields (consumed). */
void ca_uplink_emit_event(CaUplink *self, const char *type, cJSON *fields);

/* uplink-nm.c */
void ca_uplink_nm_start(CaUplink *self);
/* Drop the NMClient and the bus (dispose, shutdown). */
void ca_uplink_nm_stop(CaUplink *self);
gboolean ca_uplink_nm_running(CaUplink *self);
/* Does NetworkManager know a connection carrying a default route (its primary)? */
gboolean ca_uplink_nm_has_default_route(CaUplink *self);
/* Feed the policy every uplink's facts as NetworkManager shows them now. */
void ca_uplink_nm_refresh_facts(CaUplink *self);
/* Ask NetworkManager to activate uplink i (watchdog: report a watchdog-result). FALSE with
 * *out_error when it cannot even be asked. */
gboolean ca_uplink_nm_activate(CaUplink *self, guint i, const char *why, gboolean watchdog,
                               char **out_error);
void ca_uplink_nm_deactivate(CaUplink *self, guint i, const char *why);
void ca_uplink_rt_clear(CaUplinkRt *rt);

/* uplink-routes.c */
/* Give uplink i the route metric the policy wants, by Reapply. */
void ca_uplink_routes_ensure(CaUplink *self, guint i);
/* The policy switched: emit "switched" once the kernel routes through the new uplink. */
void ca_uplink_routes_queue_switch(CaUplink *self, const char *from, const char *to,
                                   const char *kind);
/* Emit the pending "switched" if the kernel follows now (force: regardless). */
void ca_uplink_routes_settle(CaUplink *self, gboolean force);
void ca_uplink_routes_stop(CaUplink *self);

/* uplink-cap.c */
/* The data cap's routing rules uplink i needs now, as a key ("" when none): compared with
 * rt->applied_rules, given to ca_uplink_cap_apply(). Resolves the broker when needed. */
char *ca_uplink_cap_rules_key(CaUplink *self, guint i);
/* Replace the data cap's rules in conn's IP settings with those of key. */
void ca_uplink_cap_apply(NMConnection *conn, const char *key, gboolean *changed);

/* uplink-watchdog.c */
void ca_uplink_watchdog_run_step(CaUplink *self, guint i, CaWdStep step, const char *reason);
/* Report a step's outcome (error NULL: done) as a watchdog-result event. */
void ca_uplink_step_result(CaUplink *self, const char *uplink, CaWdStep step, const char *error);
void ca_uplink_watchdog_save(CaUplink *self);
void ca_uplink_watchdog_load(CaUplink *self);
