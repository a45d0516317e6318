/* backoff: pure exponential backoff with jitter (MQTT reconnects, watchdog, modem).
 * No clock and no timers here: callers ask for the next delay and schedule it. */
#pragma once
#include <glib.h>

typedef struct {
    guint initial_ms; /* first delay */
    guint max_ms;     /* cap */
    guint jitter_pct; /* +- this percentage of the delay, 0..100 */
    guint attempt;    /* failures since the last reset */
    GRand *rand;      /* borrowed; NULL: g_random_* */
} CaBackoff;

/* Set the parameters and reset. */
void ca_backoff_init(CaBackoff *b, guint initial_ms, guint max_ms, guint jitter_pct, GRand *rand);
/* The delay before the next attempt; counts the attempt. */
guint ca_backoff_next(CaBackoff *b);
/* Back to the initial delay (after a connection stayed up). */
void ca_backoff_reset(CaBackoff *b);
/* Reset, then the first delay drawn uniformly from [initial_ms, window_ms] (full jitter);
 * counts the attempt, so the next ones double from initial_ms as usual. For a loss that a
 * whole fleet may see at once (a broker restart): the fleet comes back spread over the
 * window instead of within +- jitter of initial_ms. */
guint ca_backoff_spread(CaBackoff *b, guint window_ms);
