/* watchdog: the pure escalation ladder for an uplink that stays unhealthy
 * (re-activate -> reset the modem -> power-cycle it -> reboot), with cooldowns and
 * per-day budgets that survive restarts and reboots (serialised into state-dir).
 * Owns: deciding which step is due and when. Does not own: running steps, timers,
 * files (the caller reads and writes the text), or judging health (failover does). */
#pragma once
#include <cjson/cJSON.h>
#include <glib.h>

typedef enum {
    CA_WD_STEP_NONE,        /* nothing to do */
    CA_WD_STEP_REACTIVATE,  /* re-activate the uplink's NetworkManager connection */
    CA_WD_STEP_MODEM_RESET, /* reset the modem through ModemManager (cellular only) */
    CA_WD_STEP_POWER_CYCLE, /* run power-cycle-command (cellular only) */
    CA_WD_STEP_REBOOT,      /* reboot the device (only when no uplink is usable) */
} CaWdStep;
#define CA_WD_N_STEPS (CA_WD_STEP_REBOOT + 1)

/* "reactivate", "modem-reset", "power-cycle", "reboot" ("none" for NONE). */
const char *ca_wd_step_to_string(CaWdStep step);
/* Parse a step name; FALSE when unknown. */
gboolean ca_wd_step_from_string(const char *name, CaWdStep *out_step);

typedef struct {
    gboolean enabled;                     /* the whole watchdog */
    gboolean step_enabled[CA_WD_N_STEPS]; /* from steps=, power-cycle-command, reboot= */
    gint64 start_after_ms;                /* unhealthy this long before the first step */
    gint64 cooldown_ms[CA_WD_N_STEPS];    /* after a step, wait this long before the next;
                                          * also the least spacing between two of a kind */
    guint budget[CA_WD_N_STEPS];          /* per rolling 24 h; REACTIVATE is not budgeted */
    gint64 healthy_reset_ms;              /* healthy this long: the ladder starts over */
    guint max_backoff_shift;              /* each full pass doubles cooldowns, up to 2^this */
} CaWdConfig;

/* Where one uplink's ladder stands; zero-initialise with ca_wd_ladder_init(). */
typedef struct {
    gint64 unhealthy_since; /* -1 while healthy */
    gint64 healthy_since;   /* -1 while unhealthy */
    guint level;            /* next step to consider (index into the step order) */
    guint pass;             /* completed passes through the ladder */
    CaWdStep last_step;     /* NONE before the first step */
    gint64 last_step_at;    /* when last_step ran */
    gint64 cooldown_until;  /* no step before this (last step's cooldown) */
    gint64 last_reactivate; /* -1: never */
    guint steps_taken;      /* since the ladder last started over */
} CaWdLadder;

/* What the ladder needs to know about the uplink and the device right now. */
typedef struct {
    gboolean unhealthy; /* the uplink is wanted and not usable */
    gboolean cellular;  /* modem steps apply */
    gboolean all_down;  /* no uplink is usable: a reboot may help */
} CaWdSituation;

typedef struct _CaWatchdog CaWatchdog;

/* boot_id: the kernel's boot id, or NULL when unreadable (then ages are estimated
 * conservatively from the boot-time clock alone). Times are CLOCK_BOOTTIME ms. */
CaWatchdog *ca_watchdog_new(const CaWdConfig *config, const char *boot_id);
void ca_watchdog_free(CaWatchdog *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaWatchdog, ca_watchdog_free)
/* Replace the configuration (reload); budgets and history stay. */
void ca_watchdog_set_config(CaWatchdog *self, const CaWdConfig *config);
const CaWdConfig *ca_watchdog_get_config(const CaWatchdog *self);

void ca_wd_ladder_init(CaWdLadder *ladder);

/* Decide for one uplink at now: the step to run at once (NONE if none) and, in
 * *out_next, when to ask again (G_MAXINT64: only when something changes). The caller
 * runs the step and must then call ca_watchdog_record(). */
CaWdStep ca_watchdog_decide(CaWatchdog *self, CaWdLadder *ladder, const CaWdSituation *situation,
                            gint64 now, gint64 *out_next);
/* Account a step about to run: advances the ladder, counts it against the budget.
 * wall_s is the wall-clock time, kept for people reading the state file. */
void ca_watchdog_record(CaWatchdog *self, CaWdLadder *ladder, CaWdStep step, gint64 now,
                        gint64 wall_s);

/* Count a step run outside the ladder (a reboot a command asked for) against the same
 * rolling 24 h budget: FALSE, and nothing counted, when that budget is spent. */
gboolean ca_watchdog_take_budget(CaWatchdog *self, CaWdStep step, gint64 now, gint64 wall_s);

/* Steps of this kind in the last 24 h, and the budget left. */
guint ca_watchdog_used(CaWatchdog *self, CaWdStep step, gint64 now);
guint ca_watchdog_remaining(CaWatchdog *self, CaWdStep step, gint64 now);
/* {"enabled":B,"steps":{"reactivate":{"enabled":B,"used":N,"budget":N|null,
 * "remaining":N|null},...}}: the budgets of the rolling 24 h (caller owns it). */
cJSON *ca_watchdog_budgets_json(CaWatchdog *self, gint64 now);

/* Persisted history as text (a key file), and back. Loading garbage returns FALSE
 * with a CA_ERROR_INVALID_INPUT error and keeps what was there. */
char *ca_watchdog_save(CaWatchdog *self, gint64 now);
gboolean ca_watchdog_load(CaWatchdog *self, const char *text, GError **error);
