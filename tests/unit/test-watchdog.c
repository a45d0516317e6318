/* Unit tests for the watchdog ladder: order, cooldowns, applicability, budgets over a
 * rolling day, persistence across restarts and boots, healthy reset. Injected clock. */
#include "error.h"
#include "watchdog.h"

#define S(x)   (1000 * (gint64) (x))
#define BOOT_A "6f1c2d3e-0000-4000-8000-00000000000a"
#define BOOT_B "6f1c2d3e-0000-4000-8000-00000000000b"

static CaWdConfig
config_all(void)
{
    CaWdConfig c = {0};

    c.enabled = TRUE;
    for (int s = CA_WD_STEP_REACTIVATE; s < CA_WD_N_STEPS; s++)
        c.step_enabled[s] = TRUE;
    c.start_after_ms = S(30);
    c.cooldown_ms[CA_WD_STEP_REACTIVATE] = S(60);
    c.cooldown_ms[CA_WD_STEP_MODEM_RESET] = S(600);
    c.cooldown_ms[CA_WD_STEP_POWER_CYCLE] = S(1800);
    c.cooldown_ms[CA_WD_STEP_REBOOT] = S(3600);
    c.budget[CA_WD_STEP_MODEM_RESET] = 6;
    c.budget[CA_WD_STEP_POWER_CYCLE] = 3;
    c.budget[CA_WD_STEP_REBOOT] = 2;
    c.healthy_reset_ms = S(600);
    c.max_backoff_shift = 4;
    return c;
}

typedef struct {
    gint64 t;
    CaWdStep step;
} Taken;

/* Drive one ladder from start to end, following its own deadlines; record steps. */
static GArray *
drive(CaWatchdog *wd, CaWdLadder *ladder, const CaWdSituation *s, gint64 start, gint64 end)
{
    GArray *taken = g_array_new(FALSE, FALSE, sizeof(Taken));
    gint64 now = start;
    int guard = 0;

    while (now <= end) {
        gint64 next = G_MAXINT64;
        CaWdStep step = ca_watchdog_decide(wd, ladder, s, now, &next);

        g_assert_cmpint(++guard, <, 100000);
        if (step != CA_WD_STEP_NONE) {
            Taken t = {now, step};
            g_array_append_val(taken, t);
            ca_watchdog_record(wd, ladder, step, now, now / 1000);
            continue;
        }
        g_assert_cmpint(next, >, now);
        now = next;
    }
    return taken;
}

static void
test_order_cellular(void)
{
    CaWdConfig c = config_all();
    g_autoptr(CaWatchdog) wd = ca_watchdog_new(&c, BOOT_A);
    CaWdLadder l;
    CaWdSituation s = {.unhealthy = TRUE, .cellular = TRUE, .all_down = TRUE};
    g_autoptr(GArray) taken = NULL;
    const Taken expect[] = {
        {S(1000 + 30), CA_WD_STEP_REACTIVATE},
        {S(1000 + 90), CA_WD_STEP_MODEM_RESET},
        {S(1000 + 690), CA_WD_STEP_POWER_CYCLE},
        {S(1000 + 2490), CA_WD_STEP_REBOOT},
        /* second pass: cooldowns doubled */
        {S(1000 + 6090), CA_WD_STEP_REACTIVATE},
        {S(1000 + 6210), CA_WD_STEP_MODEM_RESET},
    };

    ca_wd_ladder_init(&l);
    taken = drive(wd, &l, &s, S(1000), S(1000 + 6300));
    g_assert_cmpuint(taken->len, ==, G_N_ELEMENTS(expect));
    for (guint i = 0; i < taken->len; i++) {
        g_assert_cmpint(g_array_index(taken, Taken, i).t, ==, expect[i].t);
        g_assert_cmpint(g_array_index(taken, Taken, i).step, ==, expect[i].step);
    }
}

static void
test_wired_skips_modem_steps(void)
{
    CaWdConfig c = config_all();
    g_autoptr(CaWatchdog) wd = ca_watchdog_new(&c, BOOT_A);
    CaWdLadder l;
    CaWdSituation s = {.unhealthy = TRUE, .cellular = FALSE, .all_down = FALSE};
    g_autoptr(GArray) taken = NULL;

    ca_wd_ladder_init(&l);
    taken = drive(wd, &l, &s, 0, S(3 * 3600));
    g_assert_cmpuint(taken->len, >=, 5);
    for (guint i = 0; i < taken->len; i++)
        g_assert_cmpint(g_array_index(taken, Taken, i).step, ==, CA_WD_STEP_REACTIVATE);
    /* Re-activations keep coming, spaced by the doubling cooldown up to 16x. */
    g_assert_cmpint(g_array_index(taken, Taken, 0).t, ==, S(30));
    g_assert_cmpint(g_array_index(taken, Taken, 1).t, ==, S(90));
    g_assert_cmpint(g_array_index(taken, Taken, 2).t, ==, S(210));
    {
        const Taken *last = &g_array_index(taken, Taken, taken->len - 1);
        const Taken *prev = &g_array_index(taken, Taken, taken->len - 2);
        g_assert_cmpint(last->t - prev->t, ==, S(60 * 16));
    }
}

static void
test_reboot_only_when_all_down(void)
{
    CaWdConfig c = config_all();
    g_autoptr(CaWatchdog) wd = ca_watchdog_new(&c, BOOT_A);
    CaWdLadder l;
    CaWdSituation s = {.unhealthy = TRUE, .cellular = TRUE, .all_down = FALSE};
    g_autoptr(GArray) taken = NULL;

    ca_wd_ladder_init(&l);
    taken = drive(wd, &l, &s, 0, S(86400));
    for (guint i = 0; i < taken->len; i++)
        g_assert_cmpint(g_array_index(taken, Taken, i).step, !=, CA_WD_STEP_REBOOT);
    g_assert_cmpuint(ca_watchdog_used(wd, CA_WD_STEP_MODEM_RESET, S(86400)), <=, 6);
    g_assert_cmpuint(ca_watchdog_used(wd, CA_WD_STEP_POWER_CYCLE, S(86400)), <=, 3);
}

static void
test_budgets_per_day(void)
{
    CaWdConfig c = config_all();
    g_autoptr(CaWatchdog) wd = NULL;
    CaWdLadder l;
    CaWdSituation s = {.unhealthy = TRUE, .cellular = FALSE, .all_down = TRUE};
    g_autoptr(GArray) day1 = NULL;
    g_autoptr(GArray) day2 = NULL;
    guint reboots = 0;

    c.step_enabled[CA_WD_STEP_MODEM_RESET] = FALSE;
    c.step_enabled[CA_WD_STEP_POWER_CYCLE] = FALSE;
    c.cooldown_ms[CA_WD_STEP_REBOOT] = S(60);
    wd = ca_watchdog_new(&c, BOOT_A);
    ca_wd_ladder_init(&l);
    day1 = drive(wd, &l, &s, 0, S(86400 - 1));
    for (guint i = 0; i < day1->len; i++)
        reboots += g_array_index(day1, Taken, i).step == CA_WD_STEP_REBOOT;
    g_assert_cmpuint(reboots, ==, 2);
    g_assert_cmpuint(ca_watchdog_remaining(wd, CA_WD_STEP_REBOOT, S(86400 - 1)), ==, 0);
    /* A day after the first, the budget refills one by one. */
    day2 = drive(wd, &l, &s, S(86400), S(2 * 86400 - 1));
    reboots = 0;
    for (guint i = 0; i < day2->len; i++)
        reboots += g_array_index(day2, Taken, i).step == CA_WD_STEP_REBOOT;
    g_assert_cmpuint(reboots, ==, 2);
}

/* A reboot a command asked for and the ladder's reboots share one budget, and it is
 * persisted with the rest. */
static void
test_budget_shared_with_commands(void)
{
    CaWdConfig c = config_all();
    g_autoptr(CaWatchdog) wd = ca_watchdog_new(&c, BOOT_A);
    g_autoptr(CaWatchdog) again = ca_watchdog_new(&c, BOOT_A);
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    CaWdLadder l;

    g_assert_cmpuint(c.budget[CA_WD_STEP_REBOOT], ==, 2);
    ca_wd_ladder_init(&l);
    ca_watchdog_record(wd, &l, CA_WD_STEP_REBOOT, S(10), 1000);
    g_assert_true(ca_watchdog_take_budget(wd, CA_WD_STEP_REBOOT, S(20), 1010));
    g_assert_false(ca_watchdog_take_budget(wd, CA_WD_STEP_REBOOT, S(30), 1020));
    g_assert_cmpuint(ca_watchdog_used(wd, CA_WD_STEP_REBOOT, S(30)), ==, 2);
    /* Persisted: a new process (same boot) finds the budget spent. */
    text = ca_watchdog_save(wd, S(30));
    g_assert_true(ca_watchdog_load(again, text, &error));
    g_assert_no_error(error);
    g_assert_false(ca_watchdog_take_budget(again, CA_WD_STEP_REBOOT, S(40), 1030));
    /* A day after the first, one is back. */
    g_assert_true(ca_watchdog_take_budget(again, CA_WD_STEP_REBOOT, S(10 + 86400), 87400));
    g_assert_false(ca_watchdog_take_budget(again, CA_WD_STEP_REBOOT, S(11 + 86400), 87401));
}

static void
test_persist_across_restart(void)
{
    CaWdConfig c = config_all();
    g_autoptr(CaWatchdog) a = ca_watchdog_new(&c, BOOT_A);
    g_autoptr(CaWatchdog) b = ca_watchdog_new(&c, BOOT_A);
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    CaWdLadder l;
    CaWdSituation s = {.unhealthy = TRUE, .cellular = TRUE, .all_down = FALSE};
    gint64 next = 0;

    /* A modem reset at t=100 s in the first process. */
    ca_wd_ladder_init(&l);
    ca_watchdog_record(a, &l, CA_WD_STEP_REACTIVATE, S(70), 0);
    ca_watchdog_record(a, &l, CA_WD_STEP_MODEM_RESET, S(100), 0);
    text = ca_watchdog_save(a, S(100));
    g_assert_true(ca_watchdog_load(b, text, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(ca_watchdog_used(b, CA_WD_STEP_MODEM_RESET, S(200)), ==, 1);

    /* The restarted process climbs its ladder again from the bottom: the re-activation
     * comes, but the modem reset waits for its spacing (600 s after the last one),
     * re-activating meanwhile instead of escalating to a power cycle. */
    ca_wd_ladder_init(&l);
    g_assert_cmpint(ca_watchdog_decide(b, &l, &s, S(200), &next), ==, CA_WD_STEP_NONE);
    g_assert_cmpint(next, ==, S(230));
    g_assert_cmpint(ca_watchdog_decide(b, &l, &s, S(230), &next), ==, CA_WD_STEP_REACTIVATE);
    ca_watchdog_record(b, &l, CA_WD_STEP_REACTIVATE, S(230), 0);
    g_assert_cmpint(ca_watchdog_decide(b, &l, &s, S(290), &next), ==, CA_WD_STEP_REACTIVATE);
    ca_watchdog_record(b, &l, CA_WD_STEP_REACTIVATE, S(290), 0);
    g_assert_cmpint(ca_watchdog_decide(b, &l, &s, S(300), &next), ==, CA_WD_STEP_NONE);
    g_assert_cmpint(next, ==, S(350));
    g_assert_cmpint(ca_watchdog_decide(b, &l, &s, S(700), &next), ==, CA_WD_STEP_MODEM_RESET);
}

static void
test_other_boot_ages_by_uptime(void)
{
    CaWdConfig c = config_all();
    g_autoptr(CaWatchdog) a = ca_watchdog_new(&c, BOOT_A);
    g_autoptr(CaWatchdog) b = ca_watchdog_new(&c, BOOT_B);
    g_autoptr(CaWatchdog) unknown = ca_watchdog_new(&c, NULL);
    g_autofree char *text = NULL;
    CaWdLadder l;

    /* Two reboots late in boot A's life (uptime 50 h). */
    ca_wd_ladder_init(&l);
    ca_watchdog_record(a, &l, CA_WD_STEP_REBOOT, S(50 * 3600), 0);
    ca_watchdog_record(a, &l, CA_WD_STEP_REBOOT, S(50 * 3600 + 10), 0);
    text = ca_watchdog_save(a, S(50 * 3600 + 10));
    g_assert_true(ca_watchdog_load(b, text, NULL));
    g_assert_true(ca_watchdog_load(unknown, text, NULL));
    /* In boot B, whatever the wall clock says, they are as old as B's uptime. */
    g_assert_cmpuint(ca_watchdog_used(b, CA_WD_STEP_REBOOT, S(60)), ==, 2);
    g_assert_cmpuint(ca_watchdog_used(b, CA_WD_STEP_REBOOT, S(86400 - 1)), ==, 2);
    g_assert_cmpuint(ca_watchdog_used(b, CA_WD_STEP_REBOOT, S(86400)), ==, 0);
    /* Without a boot id, a stamp ahead of the clock is from an earlier boot. */
    g_assert_cmpuint(ca_watchdog_used(unknown, CA_WD_STEP_REBOOT, S(60)), ==, 2);
    g_assert_cmpuint(ca_watchdog_used(unknown, CA_WD_STEP_REBOOT, S(86400)), ==, 0);
}

static void
test_healthy_reset(void)
{
    CaWdConfig c = config_all();
    g_autoptr(CaWatchdog) wd = ca_watchdog_new(&c, BOOT_A);
    CaWdLadder l;
    CaWdSituation sick = {.unhealthy = TRUE, .cellular = TRUE, .all_down = FALSE};
    CaWdSituation well = {.unhealthy = FALSE, .cellular = TRUE, .all_down = FALSE};
    gint64 next;

    ca_wd_ladder_init(&l);
    g_assert_cmpint(ca_watchdog_decide(wd, &l, &sick, S(30), &next), ==, CA_WD_STEP_NONE);
    g_assert_cmpint(ca_watchdog_decide(wd, &l, &sick, S(60), &next), ==, CA_WD_STEP_REACTIVATE);
    ca_watchdog_record(wd, &l, CA_WD_STEP_REACTIVATE, S(60), 0);
    /* Healthy briefly: the ladder keeps its place. */
    g_assert_cmpint(ca_watchdog_decide(wd, &l, &well, S(100), &next), ==, CA_WD_STEP_NONE);
    g_assert_cmpint(next, ==, S(700));
    /* Sick again: start-after applies again, then the next rung. */
    g_assert_cmpint(ca_watchdog_decide(wd, &l, &sick, S(200), &next), ==, CA_WD_STEP_NONE);
    g_assert_cmpint(next, ==, S(230));
    g_assert_cmpint(ca_watchdog_decide(wd, &l, &sick, S(230), &next), ==, CA_WD_STEP_MODEM_RESET);
    ca_watchdog_record(wd, &l, CA_WD_STEP_MODEM_RESET, S(230), 0);
    /* Healthy for healthy-reset: it starts over at reactivate, after start-after. */
    g_assert_cmpint(ca_watchdog_decide(wd, &l, &well, S(300), &next), ==, CA_WD_STEP_NONE);
    g_assert_cmpint(ca_watchdog_decide(wd, &l, &well, S(900), &next), ==, CA_WD_STEP_NONE);
    g_assert_cmpuint(l.level, ==, 0);
    g_assert_cmpint(l.last_step, ==, CA_WD_STEP_NONE);
    g_assert_cmpint(ca_watchdog_decide(wd, &l, &sick, S(1000), &next), ==, CA_WD_STEP_NONE);
    g_assert_cmpint(next, ==, S(1030));
    g_assert_cmpint(ca_watchdog_decide(wd, &l, &sick, S(1030), &next), ==, CA_WD_STEP_REACTIVATE);
}

static void
test_disabled(void)
{
    CaWdConfig c = config_all();
    g_autoptr(CaWatchdog) wd = NULL;
    CaWdLadder l;
    CaWdSituation s = {.unhealthy = TRUE, .cellular = TRUE, .all_down = TRUE};
    g_autoptr(GArray) taken = NULL;

    c.enabled = FALSE;
    wd = ca_watchdog_new(&c, BOOT_A);
    ca_wd_ladder_init(&l);
    taken = drive(wd, &l, &s, 0, S(86400));
    g_assert_cmpuint(taken->len, ==, 0);
}

static void
test_budget_zero_skips(void)
{
    CaWdConfig c = config_all();
    g_autoptr(CaWatchdog) wd = NULL;
    CaWdLadder l;
    CaWdSituation s = {.unhealthy = TRUE, .cellular = TRUE, .all_down = TRUE};
    g_autoptr(GArray) taken = NULL;

    c.budget[CA_WD_STEP_MODEM_RESET] = 0;
    c.budget[CA_WD_STEP_REBOOT] = 0;
    c.step_enabled[CA_WD_STEP_POWER_CYCLE] = FALSE;
    wd = ca_watchdog_new(&c, BOOT_A);
    ca_wd_ladder_init(&l);
    taken = drive(wd, &l, &s, 0, S(86400));
    g_assert_cmpuint(taken->len, >, 0);
    for (guint i = 0; i < taken->len; i++)
        g_assert_cmpint(g_array_index(taken, Taken, i).step, ==, CA_WD_STEP_REACTIVATE);
}

static void
test_load_garbage(void)
{
    CaWdConfig c = config_all();
    g_autoptr(CaWatchdog) wd = ca_watchdog_new(&c, BOOT_A);
    CaWdLadder l;
    const char *const bad[] = {
        "not a key file [",
        "[reboot]\nhistory=x,1,2;\n",
        "[reboot]\nhistory=" BOOT_A ",-5,2;\n",
        "[reboot]\nhistory=" BOOT_A ",1;\n",
        "[reboot]\nhistory=" BOOT_A ",1,2,3;\n",
        "[modem-reset]\nhistory=" BOOT_A ",abc,2;\n",
    };

    ca_wd_ladder_init(&l);
    ca_watchdog_record(wd, &l, CA_WD_STEP_REBOOT, S(10), 0);
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_assert_false(ca_watchdog_load(wd, bad[i], &error));
        g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT);
        g_assert_cmpuint(ca_watchdog_used(wd, CA_WD_STEP_REBOOT, S(20)), ==, 1);
    }
    /* Empty and unknown groups are fine. */
    g_assert_true(ca_watchdog_load(wd, "[other]\nx=1\n", NULL));
    g_assert_cmpuint(ca_watchdog_used(wd, CA_WD_STEP_REBOOT, S(20)), ==, 0);
}

static void
test_step_names(void)
{
    for (int s = CA_WD_STEP_NONE; s < CA_WD_N_STEPS; s++) {
        CaWdStep back;
        g_assert_true(ca_wd_step_from_string(ca_wd_step_to_string(s), &back));
        g_assert_cmpint(back, ==, s);
    }
    {
        CaWdStep back;
        g_assert_false(ca_wd_step_from_string("explode", &back));
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/watchdog/order/cellular", test_order_cellular);
    g_test_add_func("/watchdog/order/wired-skips-modem-steps", test_wired_skips_modem_steps);
    g_test_add_func("/watchdog/order/reboot-only-when-all-down", test_reboot_only_when_all_down);
    g_test_add_func("/watchdog/budget/per-day", test_budgets_per_day);
    g_test_add_func("/watchdog/budget/zero-skips", test_budget_zero_skips);
    g_test_add_func("/watchdog/budget/shared-with-commands", test_budget_shared_with_commands);
    g_test_add_func("/watchdog/persist/restart", test_persist_across_restart);
    g_test_add_func("/watchdog/persist/other-boot", test_other_boot_ages_by_uptime);
    g_test_add_func("/watchdog/persist/garbage", test_load_garbage);
    g_test_add_func("/watchdog/healthy-reset", test_healthy_reset);
    g_test_add_func("/watchdog/disabled", test_disabled);
    g_test_add_func("/watchdog/step-names", test_step_names);
    return g_test_run();
}
