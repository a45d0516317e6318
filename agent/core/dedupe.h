/* dedupe: a persistent set of ids, each with the latest value recorded for it (a JSON
 * object, e.g. the last sms/out result), bounded by count (least recently updated dropped
 * first) and by age. Stored as an append-only journal of JSON lines, fsync'ed per record
 * and compacted (tmp, fsync, rename, fsync dir) when it holds too many stale lines; a torn
 * last line after power loss is dropped; other damaged lines are quarantined to <path>.bad.
 * Owns: one journal file. Does not own: what ids and values mean. */
#pragma once
#include <cjson/cJSON.h>
#include <glib.h>

G_BEGIN_DECLS

typedef struct _CaDedupe CaDedupe;

/* Open (creating) the journal at path, keeping at most max_entries ids, none older than
 * max_age_s seconds at now_s (wall-clock seconds, as g_get_real_time() / 1e6).
 * Error: CA_ERROR_IO. */
CaDedupe *ca_dedupe_open(const char *path, guint max_entries, gint64 max_age_s, gint64 now_s,
                         GError **error);
void ca_dedupe_free(CaDedupe *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaDedupe, ca_dedupe_free)

/* Ages follow the wall clock (now_s) only while it keeps pace with the boot-time clock:
 * when the two part by more than CA_DEDUPE_JUMP_S between calls (NTP's first answer on a
 * board with no real-time clock, a clock set by hand), every recorded time moves by the
 * jump, so no id is forgotten early or kept for ever by a clock step. The journal is
 * rewritten with the moved times. The default clock is CLOCK_BOOTTIME in seconds; tests
 * inject their own. */
#define CA_DEDUPE_JUMP_S 60
typedef gint64 (*CaDedupeClock)(gpointer user_data);
void ca_dedupe_set_monotonic(CaDedupe *self, CaDedupeClock clock, gpointer user_data);

/* Change the bounds; applied at the next record or expiry. */
void ca_dedupe_set_limits(CaDedupe *self, guint max_entries, gint64 max_age_s);

/* The latest value of id (owned by the set, valid until the next change), or NULL. */
const cJSON *ca_dedupe_lookup(CaDedupe *self, const char *id);
/* When id was last recorded (seconds), or 0 when unknown. */
gint64 ca_dedupe_get_time(CaDedupe *self, const char *id);
/* Durably record value (copied) as id's latest, at now_s. Error: CA_ERROR_IO (the set in
 * memory is unchanged then). */
gboolean ca_dedupe_record(CaDedupe *self, const char *id, const cJSON *value, gint64 now_s,
                          GError **error);
/* Drop ids older than the age bound at now_s. Error: CA_ERROR_IO (compaction). */
gboolean ca_dedupe_expire(CaDedupe *self, gint64 now_s, GError **error);

/* Visit every id, least recently updated first. Do not change the set from func. */
typedef void (*CaDedupeFunc)(const char *id, const cJSON *value, gint64 time_s, gpointer user_data);
void ca_dedupe_foreach(CaDedupe *self, CaDedupeFunc func, gpointer user_data);
guint ca_dedupe_count(CaDedupe *self);
/* Lines currently in the journal (for tests of compaction). */
guint ca_dedupe_journal_lines(CaDedupe *self);
/* Damaged lines found when the journal was opened (not a torn last line, which a power cut
 * leaves and which is dropped): they were copied to "<path>.bad" (synced, at most 256 KiB
 * kept) and left out. The owner reports them (an event), since each may be a forgotten id. */
guint ca_dedupe_get_quarantined(CaDedupe *self);

G_END_DECLS
