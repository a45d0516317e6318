/* backoff: doubling from initial_ms up to max_ms, then +- jitter; a spread first delay. */
#include "backoff.h"

void
ca_backoff_init(CaBackoff *b, guint initial_ms, guint max_ms, guint jitter_pct, GRand *rand)
{
    b->initial_ms = MAX(initial_ms, 1);
    b->max_ms = MAX(max_ms, b->initial_ms);
    b->jitter_pct = MIN(jitter_pct, 100);
    b->attempt = 0;
    b->rand = rand;
}

guint
ca_backoff_next(CaBackoff *b)
{
    guint64 delay = b->initial_ms;
    gint64 spread;
    gint64 jitter = 0;

    for (guint i = 0; i < b->attempt && delay < b->max_ms; i++)
        delay *= 2;
    delay = MIN(delay, b->max_ms);
    if (b->attempt < G_MAXUINT)
        b->attempt++;
    spread = (gint64) delay * b->jitter_pct / 100;
    if (spread > 0) {
        jitter = b->rand ? g_rand_int_range(b->rand, (gint32) -spread, (gint32) spread + 1)
                         : g_random_int_range((gint32) -spread, (gint32) spread + 1);
    }
    return (guint) MAX((gint64) delay + jitter, 1);
}

void
ca_backoff_reset(CaBackoff *b)
{
    b->attempt = 0;
}

guint
ca_backoff_spread(CaBackoff *b, guint window_ms)
{
    guint lo = b->initial_ms;
    guint hi = MAX(window_ms, lo);

    b->attempt = 1;
    if (hi == lo)
        return lo;
    /* g_rand_int_range's end is exclusive and a gint32: windows up to 24 days. */
    hi = MIN(hi, (guint) G_MAXINT32 - 1);
    return (guint) (b->rand ? g_rand_int_range(b->rand, (gint32) lo, (gint32) hi + 1)
                            : g_random_int_range((gint32) lo, (gint32) hi + 1));
}
