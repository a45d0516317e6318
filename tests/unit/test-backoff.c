/* Unit tests for backoff: doubling, cap, reset, jitter bounds (seeded GRand, no clock). */
#include "backoff.h"

static void
test_doubling(void)
{
    CaBackoff b;
    const guint expect[] = {1000,  2000,   4000,   8000,   16000, 32000,
                            64000, 128000, 256000, 300000, 300000};

    ca_backoff_init(&b, 1000, 300000, 0, NULL);
    for (gsize i = 0; i < G_N_ELEMENTS(expect); i++)
        g_assert_cmpuint(ca_backoff_next(&b), ==, expect[i]);
    ca_backoff_reset(&b);
    g_assert_cmpuint(ca_backoff_next(&b), ==, 1000);
}

static void
test_jitter(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(42);
    CaBackoff b;
    gboolean varied = FALSE;
    guint first = 0;

    for (int round = 0; round < 200; round++) {
        guint d;
        ca_backoff_init(&b, 1000, 300000, 20, rand);
        d = ca_backoff_next(&b);
        g_assert_cmpuint(d, >=, 800);
        g_assert_cmpuint(d, <=, 1200);
        if (round == 0)
            first = d;
        else if (d != first)
            varied = TRUE;
    }
    g_assert_true(varied);
    /* At the cap the jitter still stays within bounds. */
    ca_backoff_init(&b, 1000, 300000, 20, rand);
    for (int i = 0; i < 40; i++) {
        guint d = ca_backoff_next(&b);
        g_assert_cmpuint(d, <=, 360000);
    }
}

/* A fleet that loses the broker at once must not come back in the same second: the first
 * delay after such a loss is spread over the whole window, no second of it drawing more than
 * 10 % of the fleet, and the attempts after it double from the initial delay again. */
static void
test_spread(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(7);
    const guint fleet = 10000;
    const guint window_ms = 20000;
    guint per_second[20] = {0};
    CaBackoff b;

    for (guint i = 0; i < fleet; i++) {
        guint d;

        ca_backoff_init(&b, 1000, 300000, 25, rand);
        for (int j = 0; j < 5; j++) /* a history of failures: the spread forgets it */
            ca_backoff_next(&b);
        d = ca_backoff_spread(&b, window_ms);
        g_assert_cmpuint(d, >=, 1000);
        g_assert_cmpuint(d, <=, window_ms);
        per_second[MIN(d / 1000, G_N_ELEMENTS(per_second) - 1)]++;
        d = ca_backoff_next(&b); /* the attempt after it: 2 s +- 25 % */
        g_assert_cmpuint(d, >=, 1500);
        g_assert_cmpuint(d, <=, 2500);
    }
    g_assert_cmpuint(per_second[0], ==, 0);
    for (gsize s = 1; s < G_N_ELEMENTS(per_second); s++) {
        g_assert_cmpuint(per_second[s], <=, fleet / 10);
        g_assert_cmpuint(per_second[s], >=, fleet / 40);
    }
    /* A window below the initial delay is the initial delay. */
    ca_backoff_init(&b, 1000, 300000, 25, rand);
    g_assert_cmpuint(ca_backoff_spread(&b, 0), ==, 1000);
}

static void
test_many_attempts(void)
{
    CaBackoff b;

    ca_backoff_init(&b, 1, 5, 0, NULL);
    for (int i = 0; i < 100000; i++)
        g_assert_cmpuint(ca_backoff_next(&b), <=, 5);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/backoff/doubling", test_doubling);
    g_test_add_func("/backoff/jitter", test_jitter);
    g_test_add_func("/backoff/spread", test_spread);
    g_test_add_func("/backoff/many-attempts", test_many_attempts);
    return g_test_run();
}
