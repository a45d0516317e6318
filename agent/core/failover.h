/* failover: the pure uplink policy. From evidence (probe rounds, carrier, NetworkManager
 * device state and per-device connectivity, modem state/registration/bearer) it judges
 * each uplink's health with asymmetric hysteresis, picks the uplink that carries the
 * default route, decides when on-demand uplinks come up and go down, counts and damps
 * flaps, and drives one watchdog ladder per uplink.
 * Owns: decisions and their timing. Does not own: clocks, timers, NetworkManager,
 * sockets (the caller feeds facts and results in and carries the outputs out). */
#pragma once
#include "config.h"
#include "economy.h"
#include "watchdog.h"

#include <cjson/cJSON.h>
#include <glib.h>

typedef enum {
    CA_UPLINK_STATE_STANDBY, /* on-demand and not needed, or not activated yet: not probed */
    CA_UPLINK_STATE_UNKNOWN, /* activated, no verdict yet: usable, probed fast */
    CA_UPLINK_STATE_UP,      /* healthy: probed at interval */
    CA_UPLINK_STATE_SUSPECT, /* a round failed or passive evidence: usable, probed fast */
    CA_UPLINK_STATE_DOWN,    /* down-after failed rounds or hard evidence */
} CaUplinkState;

const char *ca_uplink_state_to_string(CaUplinkState state);

typedef enum {
    CA_ACTIVATE_ALWAYS,    /* keep it up and probed */
    CA_ACTIVATE_ON_DEMAND, /* bring it up only when no better uplink is usable */
    CA_ACTIVATE_NEVER,     /* not managed (e.g. no modem on this device) */
} CaActivateMode;

typedef enum {
    CA_ACTIVATION_NONE,         /* no active connection for the profile */
    CA_ACTIVATION_ACTIVATING,   /* NetworkManager is bringing it up */
    CA_ACTIVATION_ACTIVATED,    /* up (as far as NetworkManager knows) */
    CA_ACTIVATION_DEACTIVATING, /* going down */
} CaActivation;

typedef enum {
    CA_CONNECTIVITY_UNKNOWN, /* check disabled or not run yet */
    CA_CONNECTIVITY_NONE,
    CA_CONNECTIVITY_PORTAL,
    CA_CONNECTIVITY_LIMITED,
    CA_CONNECTIVITY_FULL,
} CaConnectivity;

const char *ca_connectivity_to_string(CaConnectivity c);

/* Everything the adapters know about one uplink right now. Text fields are for the
 * diagnosis in events and the link topic; the policy decides on the typed fields. */
typedef struct {
    gboolean device_present;     /* NetworkManager has a device that can carry it */
    gboolean device_ready;       /* ... and it is available for activation */
    gboolean carrier;            /* link carrier (TRUE where it does not apply) */
    CaActivation activation;     /* of the uplink's connection */
    CaConnectivity connectivity; /* NetworkManager's per-device IPv4 connectivity */
    gboolean cellular;           /* a modem device (gsm profile) */
    /* Cellular only (from ModemManager through the agent). */
    gboolean modem_known;      /* the fields below are filled */
    gboolean modem_present;    /* ModemManager has the modem */
    gboolean modem_usable;     /* not failed/locked/disabled-for-good */
    gboolean registered;       /* home or roaming */
    gboolean bearer_connected; /* a data bearer is up */
    int signal_quality;        /* percent, -1 unknown */
    CaMetered metered;         /* NetworkManager's Metered property of the device */
    char device[32];           /* NetworkManager device (interface) name */
    char ip_iface[32];         /* interface carrying IP (may differ for modems) */
    char nm_state[24];         /* NetworkManager device state, as nmcli names it */
    char nm_reason[48];        /* its last state reason */
    char modem_state[24];      /* ModemManager's names */
    char registration[16];
} CaUplinkFacts;

/* Fill f with "nothing known" (no device). */
void ca_uplink_facts_init(CaUplinkFacts *f);

typedef enum {
    CA_PROBE_MODE_LEAD, /* the lead probe; the rest only if it fails (cheap when healthy) */
    CA_PROBE_MODE_ALL,  /* every probe at once (quick verdict when in doubt) */
} CaProbeMode;

#define CA_FAILOVER_MAX_PROBES 8

/* One probe's outcome inside a round (for the link topic and diagnoses). */
typedef struct {
    char target[64]; /* as configured, e.g. "icmp:192.0.2.1" */
    gboolean sent;   /* FALSE when it was not needed (lead mode) */
    gboolean ok;
    double rtt_ms; /* when ok */
    char error[48];
} CaProbeResult;

typedef struct {
    gboolean ok; /* at least one probe answered */
    guint n_results;
    CaProbeResult results[CA_FAILOVER_MAX_PROBES];
} CaProbeRound;

typedef struct {
    char *name;       /* the NAME of [uplink-NAME] */
    char *connection; /* NetworkManager connection id or uuid */
    int priority;     /* lower is preferred */
    CaActivateMode activate;
    GStrv probes;      /* probe specs, for the adapter */
    gboolean cellular; /* the [cellular] uplink (modem facts go here) */
} CaFoUplinkConfig;

typedef struct {
    gint64 interval_ms;        /* between rounds when healthy (and when down) */
    gint64 fast_interval_ms;   /* between rounds when in doubt */
    gint64 timeout_ms;         /* per probe (for the adapter) */
    guint down_after;          /* failed rounds in a row: down */
    guint up_after;            /* good rounds in a row: up again */
    gint64 hold_down_ms;       /* a recovered better uplink stays up this long first */
    gint64 max_hold_down_ms;   /* damping cap */
    gint64 flap_window_ms;     /* flaps counted over this window */
    gint64 report_interval_ms; /* refresh the link topic (0: only on change) */
    char *dns_name;            /* query name of DNS probes */
    CaWdConfig watchdog;
    guint n_uplinks;
    CaFoUplinkConfig *uplinks; /* sorted by name */
} CaFoConfig;

/* Build the policy config from the [uplink-*], [cellular], [health], [watchdog] keys.
 * [uplink-cellular] is implied when absent. */
CaFoConfig *ca_fo_config_new(const CaConfig *config);
void ca_fo_config_free(CaFoConfig *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaFoConfig, ca_fo_config_free)
/* TRUE when a and b describe the same policy (a reload that changes nothing). */
gboolean ca_fo_config_equal(const CaFoConfig *a, const CaFoConfig *b);
/* Index of an uplink by name, -1 if none. */
int ca_fo_config_find(const CaFoConfig *c, const char *name);

/* Expected idle probe traffic of one healthy uplink in bytes per 30-day month (IP
 * bytes both ways), when its lead probe is probes[0]. */
guint64 ca_fo_idle_bytes_per_month(const CaFoConfig *c, guint uplink);

typedef enum {
    CA_FO_OUT_PROBE,      /* run a probe round on uplink in mode */
    CA_FO_OUT_ROUTES,     /* route metrics changed: re-apply ca_failover_get_metric() */
    CA_FO_OUT_ACTIVATE,   /* activate uplink's connection */
    CA_FO_OUT_DEACTIVATE, /* take the on-demand uplink down */
    CA_FO_OUT_WATCHDOG,   /* run watchdog step for uplink (already counted) */
    CA_FO_OUT_STATE,      /* uplink's state changed old_state -> new_state */
    CA_FO_OUT_SWITCH,     /* the active uplink changed: from -> uplink, kind */
} CaFoOutType;

typedef enum {
    CA_FO_SWITCH_INITIAL,  /* first choice after start */
    CA_FO_SWITCH_FAILOVER, /* the active uplink went down */
    CA_FO_SWITCH_FAILBACK, /* a better uplink recovered and held up */
    CA_FO_SWITCH_FORCED,   /* the forced uplink (ca_failover_force) took over */
} CaFoSwitchKind;

const char *ca_fo_switch_kind_to_string(CaFoSwitchKind kind);

typedef struct {
    CaFoOutType type;
    int uplink; /* index */
    int from;   /* SWITCH: previous active, -1 none */
    CaFoSwitchKind kind;
    CaProbeMode mode;
    CaWdStep step;
    CaUplinkState old_state, new_state;
    char reason[160]; /* what led to it, for logs and events */
} CaFoOut;

typedef struct _CaFailover CaFailover;

/* The config is copied. boot_id as for ca_watchdog_new(). now: CLOCK_BOOTTIME ms. */
CaFailover *ca_failover_new(const CaFoConfig *config, const char *boot_id, gint64 now);
void ca_failover_free(CaFailover *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaFailover, ca_failover_free)

const CaFoConfig *ca_failover_get_config(const CaFailover *self);
CaWatchdog *ca_failover_get_watchdog(CaFailover *self);

/* Inputs: they record; ca_failover_run() decides. */
void ca_failover_set_facts(CaFailover *self, guint uplink, const CaUplinkFacts *facts, gint64 now);
/* The round asked for by the last PROBE output of uplink has finished. */
void ca_failover_probe_done(CaFailover *self, guint uplink, const CaProbeRound *round, gint64 now);
/* Passive evidence of trouble on uplink (-1: the active one), e.g. MQTT socket errors:
 * probe fast at once. */
void ca_failover_note_trouble(CaFailover *self, int uplink, const char *why, gint64 now);

/* Economy mode (economy.h): while interval_ms > 0 the uplink in use, when up, has a health
 * round only every MAX(interval, interval_ms), and a round is passed without probes when
 * ca_failover_note_alive() reported traffic through it since the previous round began
 * (passive health). 0 ends it: the normal interval applies from the last round on. */
void ca_failover_set_economy(CaFailover *self, gint64 interval_ms, gint64 now);
/* Passive evidence for uplink (-1: the active one): traffic arrived through it (the MQTT
 * connection received data). */
void ca_failover_note_alive(CaFailover *self, int uplink, gint64 now);
/* Rounds of uplink passed on passive evidence, without probes. */
guint64 ca_failover_get_passive_rounds(const CaFailover *self, guint uplink);

/* Whether NetworkManager runs; while it does not, the watchdog holds (nothing can be
 * re-activated, and a reboot would only hide that the manager is stopped). */
void ca_failover_set_manager_running(CaFailover *self, gboolean running);

/* A planned outage of the cellular uplink begins (active) or ends: the owner of the modem
 * disrupts it on purpose (reset, the disable/enable of an SMS resync). Until it ends, and
 * for at most max_ms, the cellular uplink's failures are no evidence: its state does not
 * fall (so no failover because of it), passive evidence and failed probe rounds are
 * ignored, it is neither activated nor given a watchdog step. Its recoveries still count.
 * At the end (or after max_ms) its facts are judged as they are then and it is probed at
 * once. Beginning again while active restarts the limit. */
void ca_failover_set_planned_outage(CaFailover *self, gboolean active, gint64 max_ms, gint64 now);
/* TRUE while a planned outage is under way and within its limit. */
gboolean ca_failover_in_planned_outage(const CaFailover *self, gint64 now);

/* A data cap on the cellular uplink (the plan's at-limit action, docs/usage.md). */
typedef enum {
    CA_FO_CAP_NONE,           /* no cap in force */
    CA_FO_CAP_ESSENTIAL_ONLY, /* keeps its place; carries only the agent's traffic when in use */
    CA_FO_CAP_DISCONNECT,     /* taken down and kept down (SMS still work) */
    CA_FO_CAP_NEXT_UPLINK,    /* last choice, any other usable uplink first (no hold-down);
                               * essential-only when it still carries the traffic */
} CaFoCap;

const char *ca_fo_cap_to_string(CaFoCap cap);
/* Put a cap on the cellular uplink or lift it (CA_FO_CAP_NONE); takes effect at the next
 * run: a DEACTIVATE or ACTIVATE, a SWITCH, ROUTES for the cellular uplink. While
 * CA_FO_CAP_DISCONNECT holds, a wired uplink's watchdog never reboots the device for
 * having no uplink (that is what the cap asked for). */
void ca_failover_set_cap(CaFailover *self, CaFoCap cap);
CaFoCap ca_failover_get_cap(const CaFailover *self);
/* TRUE when uplink is cellular, carries the default route and the cap lets only the
 * agent's own traffic through it (the adapter restricts its routes then). */
gboolean ca_failover_is_restricted(const CaFailover *self, guint uplink);

/* Decide at now; outputs are queued for ca_failover_pop(). wall_s for budget records. */
void ca_failover_run(CaFailover *self, gint64 now, gint64 wall_s);
/* Next queued output; FALSE when none. */
gboolean ca_failover_pop(CaFailover *self, CaFoOut *out);
/* When ca_failover_run() must be called again at the latest (G_MAXINT64: on input). */
gint64 ca_failover_next_deadline(const CaFailover *self);

/* Force uplink (cmd/uplink) or return to the automatic choice (uplink -1). The forced
 * uplink carries traffic whenever it can: at once when it is usable, and back from a
 * failover as soon as it is up again (no hold-down); an on-demand one is activated. While
 * it cannot (down, no device), the automatic choice keeps the device online. FALSE when
 * uplink is out of range or not managed (activate=never). Takes effect at the next run. */
gboolean ca_failover_force(CaFailover *self, int uplink);
/* The forced uplink, -1 for the automatic choice. */
int ca_failover_get_forced(const CaFailover *self);

/* Queries. */
int ca_failover_get_active(const CaFailover *self);
/* TRUE when some managed uplink is usable (unknown, up or suspect) now. */
gboolean ca_failover_any_usable(const CaFailover *self);
CaUplinkState ca_failover_get_state(const CaFailover *self, guint uplink);
const CaUplinkFacts *ca_failover_get_facts(const CaFailover *self, guint uplink);
/* Route metric the uplink's default route should carry now. */
guint32 ca_failover_get_metric(const CaFailover *self, guint uplink);
/* TRUE when the uplink should be activated now (always, or on-demand and needed). */
gboolean ca_failover_is_wanted(const CaFailover *self, guint uplink);
guint ca_failover_get_flaps(const CaFailover *self, guint uplink, gint64 now);
/* Effective hold-down of the uplink now (grows with flaps). */
gint64 ca_failover_get_hold_down(const CaFailover *self, guint uplink, gint64 now);
/* Loss over the recent probes, 0..1; negative when nothing was sent yet. */
double ca_failover_get_loss(const CaFailover *self, guint uplink);
/* One-line summary for systemd's STATUS. */
char *ca_failover_status_line(const CaFailover *self);

/* The retained <base>/link payload. now_wall_us: g_get_real_time() for timestamps. */
cJSON *ca_failover_link_json(const CaFailover *self, gint64 now, gint64 now_wall_us);
/* Evidence object for events about uplink (probes, NM and modem facts). */
cJSON *ca_failover_evidence_json(const CaFailover *self, guint uplink, gint64 now);
