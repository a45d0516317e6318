/* watchdog: the escalation ladder and its persisted budgets (pure: no timers, no I/O).
 *
 * Ages of past steps are measured on CLOCK_BOOTTIME, never on the wall clock, so a
 * device without a real-time clock, or one whose clock jumps when NTP syncs, can
 * neither refill a budget early nor loop: a step recorded in an earlier boot is at
 * least as old as the current boot (its uptime), which is the age we assume for it. */
#include "watchdog.h"

#include "error.h"

#include <cjson/cJSON.h>

#include <string.h>

#define DAY_MS       (24 * 3600 * (gint64) 1000)
#define MAX_STAMPS   64 /* per kind: more than any budget the config allows */
#define MAX_PASS     32
#define BOOT_ID_SIZE 40

typedef struct {
    char boot_id[BOOT_ID_SIZE]; /* "" when unknown */
    gint64 boot_ms;             /* CLOCK_BOOTTIME of that boot */
    gint64 wall_s;              /* for people only */
} Stamp;

struct _CaWatchdog {
    CaWdConfig config;
    char boot_id[BOOT_ID_SIZE];
    GArray *history[CA_WD_N_STEPS]; /* Stamp, oldest first; NULL for unbudgeted steps */
};

/* The order of the ladder. */
static const CaWdStep ladder_order[] = {
    CA_WD_STEP_REACTIVATE,
    CA_WD_STEP_MODEM_RESET,
    CA_WD_STEP_POWER_CYCLE,
    CA_WD_STEP_REBOOT,
};

const char *
ca_wd_step_to_string(CaWdStep step)
{
    switch (step) {
    case CA_WD_STEP_NONE:
        return "none";
    case CA_WD_STEP_REACTIVATE:
        return "reactivate";
    case CA_WD_STEP_MODEM_RESET:
        return "modem-reset";
    case CA_WD_STEP_POWER_CYCLE:
        return "power-cycle";
    case CA_WD_STEP_REBOOT:
        return "reboot";
    }
    g_assert_not_reached();
}

gboolean
ca_wd_step_from_string(const char *name, CaWdStep *out_step)
{
    for (int s = CA_WD_STEP_NONE; s < CA_WD_N_STEPS; s++) {
        if (g_strcmp0(name, ca_wd_step_to_string(s)) == 0) {
            *out_step = s;
            return TRUE;
        }
    }
    return FALSE;
}

static gboolean
budgeted(CaWdStep step)
{
    switch (step) {
    case CA_WD_STEP_MODEM_RESET:
    case CA_WD_STEP_POWER_CYCLE:
    case CA_WD_STEP_REBOOT:
        return TRUE;
    case CA_WD_STEP_NONE:
    case CA_WD_STEP_REACTIVATE:
        return FALSE;
    }
    g_assert_not_reached();
}

CaWatchdog *
ca_watchdog_new(const CaWdConfig *config, const char *boot_id)
{
    CaWatchdog *self = g_new0(CaWatchdog, 1);

    self->config = *config;
    if (boot_id)
        g_strlcpy(self->boot_id, boot_id, sizeof self->boot_id);
    for (int s = 0; s < CA_WD_N_STEPS; s++) {
        if (budgeted(s))
            self->history[s] = g_array_new(FALSE, TRUE, sizeof(Stamp));
    }
    return self;
}

void
ca_watchdog_free(CaWatchdog *self)
{
    if (!self)
        return;
    for (int s = 0; s < CA_WD_N_STEPS; s++)
        g_clear_pointer(&self->history[s], g_array_unref);
    g_free(self);
}

void
ca_watchdog_set_config(CaWatchdog *self, const CaWdConfig *config)
{
    self->config = *config;
}

const CaWdConfig *
ca_watchdog_get_config(const CaWatchdog *self)
{
    return &self->config;
}

void
ca_wd_ladder_init(CaWdLadder *ladder)
{
    memset(ladder, 0, sizeof *ladder);
    ladder->unhealthy_since = -1;
    ladder->healthy_since = -1;
    ladder->last_step = CA_WD_STEP_NONE;
    ladder->last_step_at = -1;
    ladder->cooldown_until = -1;
    ladder->last_reactivate = -1;
}

/*****************************************************************************/
/* History */

/* A lower bound of the stamp's age: exact within this boot, else the uptime. */
static gint64
stamp_age(const CaWatchdog *self, const Stamp *st, gint64 now)
{
    gboolean known = self->boot_id[0] && st->boot_id[0];

    if (known && strcmp(self->boot_id, st->boot_id) != 0)
        return now;
    /* Same boot, or unknown: a boot-time stamp ahead of now is from an earlier boot. */
    if (st->boot_ms > now)
        return now;
    return now - st->boot_ms;
}

static void
prune(CaWatchdog *self, CaWdStep step, gint64 now)
{
    GArray *h = self->history[step];
    gint64 keep = MAX(DAY_MS, self->config.cooldown_ms[step]);

    for (guint i = h->len; i-- > 0;) {
        if (stamp_age(self, &g_array_index(h, Stamp, i), now) >= keep)
            g_array_remove_index(h, i);
    }
    while (h->len > MAX_STAMPS)
        g_array_remove_index(h, 0);
}

guint
ca_watchdog_used(CaWatchdog *self, CaWdStep step, gint64 now)
{
    GArray *h = self->history[step];
    guint n = 0;

    if (!h)
        return 0;
    for (guint i = 0; i < h->len; i++) {
        if (stamp_age(self, &g_array_index(h, Stamp, i), now) < DAY_MS)
            n++;
    }
    return n;
}

guint
ca_watchdog_remaining(CaWatchdog *self, CaWdStep step, gint64 now)
{
    guint used = ca_watchdog_used(self, step, now);

    if (!budgeted(step))
        return G_MAXUINT;
    return used >= self->config.budget[step] ? 0 : self->config.budget[step] - used;
}

cJSON *
ca_watchdog_budgets_json(CaWatchdog *self, gint64 now)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *steps;

    cJSON_AddBoolToObject(root, "enabled", self->config.enabled);
    steps = cJSON_AddObjectToObject(root, "steps");
    for (CaWdStep s = CA_WD_STEP_REACTIVATE; s < CA_WD_N_STEPS; s++) {
        cJSON *o = cJSON_AddObjectToObject(steps, ca_wd_step_to_string(s));

        cJSON_AddBoolToObject(o, "enabled", self->config.step_enabled[s]);
        cJSON_AddNumberToObject(o, "used", ca_watchdog_used(self, s, now));
        if (budgeted(s)) {
            cJSON_AddNumberToObject(o, "budget", self->config.budget[s]);
            cJSON_AddNumberToObject(o, "remaining", ca_watchdog_remaining(self, s, now));
        } else {
            cJSON_AddNullToObject(o, "budget");
            cJSON_AddNullToObject(o, "remaining");
        }
    }
    return root;
}

/* Age of the newest stamp of this kind; G_MAXINT64 when none. */
static gint64
last_age(CaWatchdog *self, CaWdStep step, gint64 now)
{
    GArray *h = self->history[step];
    gint64 best = G_MAXINT64;

    for (guint i = 0; h && i < h->len; i++)
        best = MIN(best, stamp_age(self, &g_array_index(h, Stamp, i), now));
    return best;
}

/*****************************************************************************/
/* The ladder */

static gint64
scaled_cooldown(const CaWatchdog *self, const CaWdLadder *ladder, CaWdStep step)
{
    guint shift = MIN(ladder->pass, self->config.max_backoff_shift);
    gint64 c = self->config.cooldown_ms[step];

    return c > (G_MAXINT64 >> shift) ? G_MAXINT64 : c << shift;
}

static gboolean
applicable(const CaWatchdog *self, CaWdStep step, const CaWdSituation *s)
{
    if (!self->config.step_enabled[step])
        return FALSE;
    switch (step) {
    case CA_WD_STEP_REACTIVATE:
        return TRUE;
    case CA_WD_STEP_MODEM_RESET:
    case CA_WD_STEP_POWER_CYCLE:
        return s->cellular;
    case CA_WD_STEP_REBOOT:
        return s->all_down;
    case CA_WD_STEP_NONE:
        return FALSE;
    }
    g_assert_not_reached();
}

static void
advance(CaWdLadder *ladder)
{
    ladder->level++;
    if (ladder->level >= G_N_ELEMENTS(ladder_order)) {
        ladder->level = 0;
        if (ladder->pass < MAX_PASS)
            ladder->pass++;
    }
}

static gint64
sat_add(gint64 a, gint64 b)
{
    return a > G_MAXINT64 - b ? G_MAXINT64 : a + b;
}

CaWdStep
ca_watchdog_decide(CaWatchdog *self, CaWdLadder *ladder, const CaWdSituation *s, gint64 now,
                   gint64 *out_next)
{
    const CaWdConfig *c = &self->config;
    gint64 due;

    *out_next = G_MAXINT64;
    if (!c->enabled || !s->unhealthy) {
        if (ladder->unhealthy_since >= 0 || ladder->healthy_since < 0) {
            ladder->unhealthy_since = -1;
            ladder->healthy_since = now;
        }
        if (ladder->steps_taken == 0 && ladder->level == 0 && ladder->pass == 0)
            return CA_WD_STEP_NONE;
        if (now - ladder->healthy_since >= c->healthy_reset_ms) {
            CaWdLadder fresh;

            ca_wd_ladder_init(&fresh);
            fresh.healthy_since = ladder->healthy_since;
            *ladder = fresh;
            return CA_WD_STEP_NONE;
        }
        *out_next = sat_add(ladder->healthy_since, c->healthy_reset_ms);
        return CA_WD_STEP_NONE;
    }

    if (ladder->unhealthy_since < 0) {
        ladder->unhealthy_since = now;
        ladder->healthy_since = -1;
    }
    due = sat_add(ladder->unhealthy_since, c->start_after_ms);
    if (ladder->last_step != CA_WD_STEP_NONE)
        due = MAX(due, ladder->cooldown_until);
    if (now < due) {
        *out_next = due;
        return CA_WD_STEP_NONE;
    }

    for (guint tries = 0; tries < G_N_ELEMENTS(ladder_order); tries++) {
        CaWdStep step = ladder_order[ladder->level];
        gint64 age, spacing;

        if (!applicable(self, step, s) ||
            (budgeted(step) && ca_watchdog_used(self, step, now) >= c->budget[step])) {
            advance(ladder);
            continue;
        }
        if (step == CA_WD_STEP_REACTIVATE)
            return step;
        /* Least spacing between two steps of this kind, across restarts and boots
         * (e.g. minutes between modem resets, so the network's attach back-off
         * does not punish the modem). Meanwhile keep re-activating. */
        age = last_age(self, step, now);
        spacing = c->cooldown_ms[step];
        if (age >= spacing)
            return step;
        *out_next = sat_add(now, spacing - age);
        if (applicable(self, CA_WD_STEP_REACTIVATE, s)) {
            gint64 react_due = ladder->last_reactivate < 0
                                   ? now
                                   : sat_add(ladder->last_reactivate,
                                             scaled_cooldown(self, ladder, CA_WD_STEP_REACTIVATE));
            if (react_due <= now)
                return CA_WD_STEP_REACTIVATE;
            *out_next = MIN(*out_next, react_due);
        }
        return CA_WD_STEP_NONE;
    }
    /* Nothing applies now (every step disabled or out of budget). */
    return CA_WD_STEP_NONE;
}

void
ca_watchdog_record(CaWatchdog *self, CaWdLadder *ladder, CaWdStep step, gint64 now, gint64 wall_s)
{
    if (step == CA_WD_STEP_NONE)
        return;
    /* The cooldown is that of the pass the step belongs to. */
    ladder->cooldown_until = sat_add(now, scaled_cooldown(self, ladder, step));
    /* A re-activation standing in for a step that must wait does not advance. */
    if (ladder_order[ladder->level] == step)
        advance(ladder);
    ladder->last_step = step;
    ladder->last_step_at = now;
    ladder->steps_taken++;
    if (step == CA_WD_STEP_REACTIVATE)
        ladder->last_reactivate = now;
    if (budgeted(step)) {
        Stamp st = {.boot_ms = now, .wall_s = wall_s};

        g_strlcpy(st.boot_id, self->boot_id, sizeof st.boot_id);
        g_array_append_val(self->history[step], st);
        prune(self, step, now);
    }
}

gboolean
ca_watchdog_take_budget(CaWatchdog *self, CaWdStep step, gint64 now, gint64 wall_s)
{
    Stamp st = {.boot_ms = now, .wall_s = wall_s};

    g_return_val_if_fail(budgeted(step), FALSE);
    if (ca_watchdog_remaining(self, step, now) == 0)
        return FALSE;
    g_strlcpy(st.boot_id, self->boot_id, sizeof st.boot_id);
    g_array_append_val(self->history[step], st);
    prune(self, step, now);
    return TRUE;
}

/*****************************************************************************/
/* Persistence */

char *
ca_watchdog_save(CaWatchdog *self, gint64 now)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();

    g_key_file_set_comment(kf, NULL, NULL,
                           " cellagent watchdog history: steps of the last 24 h (budgets).\n"
                           " Each entry: boot-id,boot-time-ms,wall-clock-s",
                           NULL);
    for (int s = 0; s < CA_WD_N_STEPS; s++) {
        GArray *h = self->history[s];
        g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(g_free);

        if (!h)
            continue;
        prune(self, s, now);
        for (guint i = 0; i < h->len; i++) {
            const Stamp *st = &g_array_index(h, Stamp, i);
            g_ptr_array_add(items, g_strdup_printf("%s,%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT,
                                                   st->boot_id[0] ? st->boot_id : "-", st->boot_ms,
                                                   st->wall_s));
        }
        g_ptr_array_add(items, NULL);
        g_key_file_set_string_list(kf, ca_wd_step_to_string(s), "history",
                                   (const char *const *) items->pdata, items->len - 1);
    }
    return g_key_file_to_data(kf, NULL, NULL);
}

static gboolean
parse_stamp(const char *text, Stamp *st)
{
    g_auto(GStrv) f = g_strsplit(text, ",", -1);

    if (g_strv_length(f) != 3 || strlen(f[0]) >= sizeof st->boot_id || f[0][0] == '\0')
        return FALSE;
    for (const char *p = f[0]; *p; p++) {
        if (!g_ascii_isxdigit(*p) && *p != '-')
            return FALSE;
    }
    if (!g_ascii_string_to_signed(f[1], 10, 0, G_MAXINT64, &st->boot_ms, NULL) ||
        !g_ascii_string_to_signed(f[2], 10, G_MININT64, G_MAXINT64, &st->wall_s, NULL))
        return FALSE;
    g_strlcpy(st->boot_id, strcmp(f[0], "-") == 0 ? "" : f[0], sizeof st->boot_id);
    return TRUE;
}

gboolean
ca_watchdog_load(CaWatchdog *self, const char *text, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) kerr = NULL;
    GArray *loaded[CA_WD_N_STEPS] = {NULL};
    gboolean ok = TRUE;

    if (!g_key_file_load_from_data(kf, text, strlen(text), G_KEY_FILE_NONE, &kerr)) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "watchdog state: %s", kerr->message);
        return FALSE;
    }
    for (int s = 0; s < CA_WD_N_STEPS && ok; s++) {
        g_auto(GStrv) items = NULL;
        gsize n = 0;

        if (!self->history[s])
            continue;
        loaded[s] = g_array_new(FALSE, TRUE, sizeof(Stamp));
        items = g_key_file_get_string_list(kf, ca_wd_step_to_string(s), "history", &n, NULL);
        for (gsize i = 0; items && i < n; i++) {
            Stamp st;

            if (!parse_stamp(items[i], &st)) {
                g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                            "watchdog state: [%s] history: bad entry \"%s\"",
                            ca_wd_step_to_string(s), items[i]);
                ok = FALSE;
                break;
            }
            g_array_append_val(loaded[s], st);
        }
        while (loaded[s]->len > MAX_STAMPS)
            g_array_remove_index(loaded[s], 0);
    }
    for (int s = 0; s < CA_WD_N_STEPS; s++) {
        if (!loaded[s])
            continue;
        if (ok) {
            g_array_unref(self->history[s]);
            self->history[s] = loaded[s];
        } else {
            g_array_unref(loaded[s]);
        }
    }
    return ok;
}
