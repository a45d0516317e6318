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
    g_test_add_func("/backoff/many-attempts", test_many_attempts);
    return g_test_run();
}
