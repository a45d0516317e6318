/* usage-store: the data counted per SIM (ICCID) and billing cycle, and its file. For each
 * SIM the current and the previous cycle: measured bytes and packets, the billable
 * estimate's parts (closed sessions rounded, the session under way, an operator-aligned
 * adjustment), which alerts went out, an override of the cap; plus the last interface
 * reading, so a restart continues from it (nothing lost, nothing counted twice). Bounded:
 * at most max_sims SIMs (the one seen longest ago goes first), two cycles each.
 * The file (usage.json in state-dir) is replaced durably (durable.c); one that cannot be
 * read back is moved aside as usage.json.bad and counting starts over.
 * Owns: booking deltas, cycle changes, thresholds and the payload of <base>/usage; the
 * file's format (usage-file.c). Does not own: reading counters, timers, publishing
 * (agent/app). */
#pragma once
#include "usage-counter.h"
#include "usage-settings.h"

#include <cjson/cJSON.h>
#include <glib.h>

G_BEGIN_DECLS

#define CA_USAGE_FILE "usage.json"
/* Largest usage.json read back (64 SIMs of two cycles are far below it). */
#define CA_USAGE_FILE_MAX (256 * 1024)

typedef enum {
    CA_USAGE_OK,      /* below the first alert percentage (or no limit) */
    CA_USAGE_WARNING, /* at or above the first alert percentage */
    CA_USAGE_LIMIT,   /* at or above the limit */
} CaUsageState;

/* "ok", "warning", "limit". */
const char *ca_usage_state_to_string(CaUsageState state);

typedef struct {
    gint64 start, end; /* unix s, [start, end) */
    char *plan;        /* plan name the cycle was counted under; NULL none */
    CaUsageBytes bytes;
    guint64 closed_billable;  /* ended sessions, each rounded by the model */
    guint64 session_billable; /* the session under way, not rounded yet */
    guint64 session_round;    /* the plan's rounding unit when last booked (0 none) */
    gint64 adjust;            /* cmd/usage-adjust: added to the billable estimate */
    guint alerted;            /* highest alert percentage reported this cycle, 0 none */
    gboolean limit_reported;  /* usage-limit went out this cycle */
    gint64 override_until;    /* unix s; the cap is lifted until then; 0 none */
} CaUsageCycle;

typedef struct {
    char *iccid;
    gint64 last_seen; /* unix s */
    CaUsageCycle cur;
    CaUsageCycle prev;
    gboolean has_prev;
} CaUsageSim;

typedef struct _CaUsageStore CaUsageStore;

CaUsageStore *ca_usage_store_new(guint max_sims);
void ca_usage_store_free(CaUsageStore *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaUsageStore, ca_usage_store_free)
void ca_usage_store_set_max_sims(CaUsageStore *self, guint max_sims);

/* Parse the file's text into a new store; NULL with CA_ERROR_INVALID_INPUT when it is not
 * a usage file this version understands. */
CaUsageStore *ca_usage_store_from_json(const char *text, gsize len, guint max_sims, GError **error);
/* The file's text. */
char *ca_usage_store_to_json(const CaUsageStore *self);

/* Read dir/usage.json (missing: an empty store). One that cannot be read back is renamed
 * usage.json.bad (*out_problem says why, for the caller to log) and an empty store
 * returned: never NULL. */
CaUsageStore *ca_usage_store_load(const char *dir, guint max_sims, char **out_problem);
/* Replace dir/usage.json durably (creating dir). Error: CA_ERROR_IO. */
gboolean ca_usage_store_save(const CaUsageStore *self, const char *dir, GError **error);

/* TRUE when something changed since the last ca_usage_store_mark_saved(). */
gboolean ca_usage_store_is_dirty(const CaUsageStore *self);
void ca_usage_store_mark_saved(CaUsageStore *self);

/* Book one interface reading at now_s for SIM iccid (NULL: the SIM is not known; bytes are
 * booked to the SIM booked last, or dropped when there is none) under plan (NULL: the
 * default calendar, no limit). Events (cJSON objects with "type", for <base>/events) are
 * appended to events (may be NULL): usage-counter-reset, usage-cycle-reset, usage-threshold,
 * usage-limit.
 * Returns the delta's kind. */
CaUsageDeltaKind ca_usage_store_sample(CaUsageStore *self, const char *iccid,
                                       const CaUsagePlan *plan, GTimeZone *tz,
                                       const CaIfSample *sample, gint64 now_s, GPtrArray *events);
/* The data session ended (bearer disconnected): its volume is rounded into the cycle. */
void ca_usage_store_end_session(CaUsageStore *self);
/* The last interface reading booked (iface NULL: none yet). */
const CaIfSample *ca_usage_store_peek_last_sample(const CaUsageStore *self);

/* Roll iccid's cycle to now_s without a reading (cycle change while idle, a new SIM):
 * creates the SIM's record. Events as for ca_usage_store_sample. */
void ca_usage_store_touch(CaUsageStore *self, const char *iccid, const CaUsagePlan *plan,
                          GTimeZone *tz, gint64 now_s, GPtrArray *events);

/* The SIM's record, or NULL. */
const CaUsageSim *ca_usage_store_get(const CaUsageStore *self, const char *iccid);
guint ca_usage_store_count(const CaUsageStore *self);

/* The billable estimate of a cycle: closed sessions + the one under way, rounded, +
 * adjust (never below 0). */
guint64 ca_usage_cycle_billable(const CaUsageCycle *cycle);
/* The state of a cycle under plan. */
CaUsageState ca_usage_cycle_state(const CaUsageCycle *cycle, const CaUsagePlan *plan);

/* cmd/usage-adjust: make the current cycle's billable estimate equal billable_bytes.
 * FALSE when the SIM has no record. *out_before: the estimate before. */
gboolean ca_usage_store_adjust(CaUsageStore *self, const char *iccid, const CaUsagePlan *plan,
                               guint64 billable_bytes, guint64 *out_before);
/* cmd/usage-override: lift the cap of the SIM's current cycle until until_s (0 ends an
 * override). FALSE when the SIM has no record. */
gboolean ca_usage_store_override(CaUsageStore *self, const char *iccid, gint64 until_s);

/* The plan's at-limit action in force for SIM iccid at now_s: TRUE with *out_action when
 * the SIM's current cycle is at its limit and no override lifts it; FALSE otherwise (no
 * plan, no limit, below it, overridden, unknown SIM). */
gboolean ca_usage_store_action(const CaUsageStore *self, const char *iccid, const CaUsagePlan *plan,
                               gint64 now_s, CaUsageAtLimit *out_action);

/* The <base>/usage payload for SIM iccid at now_s (iccid NULL or unknown: counts null). */
cJSON *ca_usage_store_payload(const CaUsageStore *self, const char *iccid, const CaUsagePlan *plan,
                              gint64 now_s);

/* The last 4 characters of an ICCID ("...9012"), how events name a SIM: enough to tell a
 * device's SIMs apart without publishing the number. */
char *ca_usage_iccid_tail(const char *iccid);

G_END_DECLS
