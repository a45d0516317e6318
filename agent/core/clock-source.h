/* clock-source: which clock to trust for TOTP when NTP may not have answered, pure.
 * A device without a real-time clock (a Raspberry Pi) starts after a power cut with a clock
 * that can be far off until NTP answers, over the very uplink that may be down; TOTP codes
 * of SMS commands then fail. The modem's network time (ModemManager's Modem.Time, from the
 * cellular network) is a second source. Inputs: timedated's NTPSynchronized, the network
 * time with the monotonic instant it was read, the system time. Output: the clock to use,
 * its offset from the system clock, and whether to ask timedated to set the system clock.
 * Owns: that decision and the rate of SetTime requests. Does not own: reading the inputs
 * (agent/mm, agent/system), calling timedated, publishing (agent/app). */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* Network time farther than this from the system clock is trusted over it (seconds). */
#define CA_CLOCK_THRESHOLD_S G_GINT64_CONSTANT(60)
/* Network time before this (2024-01-01T00:00:00Z) is a modem's unset clock, not the
 * network's: ignored. */
#define CA_CLOCK_MIN_VALID_UNIX G_GINT64_CONSTANT(1704067200)
/* Least time between two SetTime requests (seconds), should the clock drift away again. */
#define CA_CLOCK_SET_MIN_INTERVAL_S G_GINT64_CONSTANT(3600)

/* [agent] network-time. */
typedef enum {
    CA_CLOCK_MODE_SET, /* set the system clock through timedated, else use network time */
    CA_CLOCK_MODE_USE, /* use network time for TOTP only; never set the system clock */
    CA_CLOCK_MODE_OFF, /* ignore network time: the system clock alone */
} CaClockMode;

/* "set", "use", "off"; and back (FALSE for an unknown name). */
const char *ca_clock_mode_to_string(CaClockMode mode);
gboolean ca_clock_mode_from_string(const char *name, CaClockMode *out_mode);

typedef enum {
    CA_CLOCK_SOURCE_NTP,     /* NTP synchronised: the system clock, whatever the network says */
    CA_CLOCK_SOURCE_SYSTEM,  /* not synchronised; no network time, or it agrees (threshold) */
    CA_CLOCK_SOURCE_NETWORK, /* not synchronised and the system clock is off: network time */
} CaClockSource;

/* "ntp", "system", "network" (the clock event's and the SMS command audit's "clock"). */
const char *ca_clock_source_to_string(CaClockSource source);

typedef enum {
    CA_CLOCK_SET_NONE,    /* not asked */
    CA_CLOCK_SET_PENDING, /* SetTime in flight */
    CA_CLOCK_SET_DONE,    /* timedated set the system clock */
    CA_CLOCK_SET_REFUSED, /* refused (polkit, NTP enabled, no timedated): not asked again */
} CaClockSetState;

typedef struct {
    CaClockMode mode;
    gboolean ntp_known;  /* timedated answered */
    gboolean ntp_synced; /* its NTPSynchronized */
    gboolean have_network;
    gint64 network_us;      /* unix time (us) the modem reported */
    gint64 network_mono_us; /* monotonic time (us) when it was read */
    CaClockSetState set_state;
    gint64 set_mono_us; /* monotonic time (us) of the last SetTime asked, 0: never */
} CaClock;

typedef struct {
    CaClockSource source;
    gint64 offset_s;   /* network time - system time (0 without network time) */
    gint64 now_us;     /* the unix time (us) to use: system time, + offset for NETWORK */
    gboolean set;      /* the system clock was set from network time (this run) */
    gboolean want_set; /* ask timedated to set the system clock to set_to_us now */
    gint64 set_to_us;
} CaClockDecision;

/* Start with mode: nothing known (the system clock, source SYSTEM). */
void ca_clock_init(CaClock *self, CaClockMode mode);
void ca_clock_set_mode(CaClock *self, CaClockMode mode);
/* timedated's answer (known=FALSE: it could not be asked). */
void ca_clock_set_ntp(CaClock *self, gboolean known, gboolean synced);
/* The network time read at monotonic mono_us. FALSE (and ignored) when it is before
 * CA_CLOCK_MIN_VALID_UNIX. */
gboolean ca_clock_set_network(CaClock *self, gint64 network_us, gint64 mono_us);
/* Decide at system time system_us and monotonic mono_us. Pure: want_set is only a request;
 * the caller that asks timedated calls ca_clock_set_started() then ca_clock_set_finished(). */
void ca_clock_decide(const CaClock *self, gint64 system_us, gint64 mono_us, CaClockDecision *out);
void ca_clock_set_started(CaClock *self, gint64 mono_us);
/* ok: timedated set the clock; FALSE: refused, network time is used from now on. */
void ca_clock_set_finished(CaClock *self, gboolean ok);
/* TRUE when the network time should be read (again) before a TOTP check: NTP is not known
 * to be synchronised, the mode uses network time, and the last reading (if any) is older
 * than max_age_s. */
gboolean ca_clock_wants_network(const CaClock *self, gint64 mono_us, gint64 max_age_s);

G_END_DECLS
