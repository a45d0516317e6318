/* clock-source: the choice between the system clock and the modem's network time, pure
 * (see clock-source.h). */
#include "clock-source.h"

#include <string.h>

const char *
ca_clock_mode_to_string(CaClockMode mode)
{
    switch (mode) {
    case CA_CLOCK_MODE_SET:
        return "set";
    case CA_CLOCK_MODE_USE:
        return "use";
    case CA_CLOCK_MODE_OFF:
        return "off";
    }
    g_assert_not_reached();
}

gboolean
ca_clock_mode_from_string(const char *name, CaClockMode *out_mode)
{
    static const CaClockMode modes[] = {CA_CLOCK_MODE_SET, CA_CLOCK_MODE_USE, CA_CLOCK_MODE_OFF};

    for (gsize i = 0; name && i < G_N_ELEMENTS(modes); i++) {
        if (strcmp(name, ca_clock_mode_to_string(modes[i])) == 0) {
            *out_mode = modes[i];
            return TRUE;
        }
    }
    return FALSE;
}

const char *
ca_clock_source_to_string(CaClockSource source)
{
    switch (source) {
    case CA_CLOCK_SOURCE_NTP:
        return "ntp";
    case CA_CLOCK_SOURCE_SYSTEM:
        return "system";
    case CA_CLOCK_SOURCE_NETWORK:
        return "network";
    }
    g_assert_not_reached();
}

void
ca_clock_init(CaClock *self, CaClockMode mode)
{
    memset(self, 0, sizeof(*self));
    self->mode = mode;
}

void
ca_clock_set_mode(CaClock *self, CaClockMode mode)
{
    self->mode = mode;
}

void
ca_clock_set_ntp(CaClock *self, gboolean known, gboolean synced)
{
    self->ntp_known = known;
    self->ntp_synced = known && synced;
}

gboolean
ca_clock_set_network(CaClock *self, gint64 network_us, gint64 mono_us)
{
    if (network_us < CA_CLOCK_MIN_VALID_UNIX * G_USEC_PER_SEC)
        return FALSE;
    self->have_network = TRUE;
    self->network_us = network_us;
    self->network_mono_us = mono_us;
    return TRUE;
}

void
ca_clock_decide(const CaClock *self, gint64 system_us, gint64 mono_us, CaClockDecision *out)
{
    gint64 network_now, offset_us;
    gboolean may_set;

    memset(out, 0, sizeof(*out));
    out->source = CA_CLOCK_SOURCE_SYSTEM;
    out->now_us = system_us;
    out->set = self->set_state == CA_CLOCK_SET_DONE;
    if (self->ntp_synced)
        out->source = CA_CLOCK_SOURCE_NTP;
    if (!self->have_network)
        return;
    /* The network time advanced with the monotonic clock since it was read, so a system
     * clock set (by us or anyone) in between does not spoil the reading. */
    network_now = self->network_us + (mono_us - self->network_mono_us);
    offset_us = network_now - system_us;
    out->offset_s = offset_us / G_USEC_PER_SEC;
    if (self->ntp_synced || self->mode == CA_CLOCK_MODE_OFF)
        return;
    if (ABS(offset_us) <= CA_CLOCK_THRESHOLD_S * G_USEC_PER_SEC) {
        /* Agrees: the system clock, which we may have set from network time ourselves. */
        if (out->set)
            out->source = CA_CLOCK_SOURCE_NETWORK;
        return;
    }
    out->source = CA_CLOCK_SOURCE_NETWORK;
    out->now_us = network_now;
    may_set = self->mode == CA_CLOCK_MODE_SET && self->set_state != CA_CLOCK_SET_PENDING &&
              self->set_state != CA_CLOCK_SET_REFUSED &&
              (self->set_mono_us == 0 ||
               mono_us - self->set_mono_us >= CA_CLOCK_SET_MIN_INTERVAL_S * G_USEC_PER_SEC);
    if (may_set) {
        out->want_set = TRUE;
        out->set_to_us = network_now;
    }
}

void
ca_clock_set_started(CaClock *self, gint64 mono_us)
{
    self->set_state = CA_CLOCK_SET_PENDING;
    /* 0 means never: a monotonic clock at 0 is moved by one microsecond. */
    self->set_mono_us = mono_us != 0 ? mono_us : 1;
}

void
ca_clock_set_finished(CaClock *self, gboolean ok)
{
    self->set_state = ok ? CA_CLOCK_SET_DONE : CA_CLOCK_SET_REFUSED;
}

gboolean
ca_clock_wants_network(const CaClock *self, gint64 mono_us, gint64 max_age_s)
{
    if (self->mode == CA_CLOCK_MODE_OFF || self->ntp_synced)
        return FALSE;
    return !self->have_network || mono_us - self->network_mono_us > max_age_s * G_USEC_PER_SEC;
}
