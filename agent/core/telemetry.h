/* telemetry: pure functions from modem facts to what is published: the telemetry object
 * of docs/telemetry.md, the decision when to publish it (changes at once, signal with a deadband
 * and a minimum spacing, periodic), the events of a facts transition, and Home Assistant
 * MQTT discovery messages. No I/O, no main loop: unit-tested exhaustively.
 * The timers that act on these decisions are in telemetry-publisher.c. */
#pragma once
#include "config.h"
#include "modem-facts.h"

#include <cjson/cJSON.h>
#include <glib.h>

G_BEGIN_DECLS

/* The publication policy ([telemetry] keys). */
typedef struct {
    guint interval_s;       /* periodic publication; 0 = only on change and on request */
    guint min_spacing_s;    /* least time between publications caused by signal changes */
    guint quality_deadband; /* signal quality change (points) that counts */
    double signal_deadband; /* RSSI/RSRP/RSRQ/SNR change (dB) that counts */
} CaTelemetryPolicy;

/* Loaded from the config by ca_telemetry_settings_load (telemetry-settings.h). */

/* How much a facts change matters for publishing. */
typedef enum {
    CA_TELEMETRY_CHANGE_NONE,      /* equal */
    CA_TELEMETRY_CHANGE_MINOR,     /* counters, signal inside the deadband: ride along later */
    CA_TELEMETRY_CHANGE_SIGNAL,    /* signal beyond the deadband, cell change: rate-limited */
    CA_TELEMETRY_CHANGE_IMPORTANT, /* presence, state, registration, operator, access tech,
                                    * SIM, identity, bearer connection: at once */
} CaTelemetryChange;

/* "none", "minor", "signal", "important". */
const char *ca_telemetry_change_to_string(CaTelemetryChange change);
/* Classify the change from the published facts to the current ones. */
CaTelemetryChange ca_telemetry_classify(const CaTelemetryPolicy *policy,
                                        const CaModemFacts *published, const CaModemFacts *now);
/* When to publish next, on the monotonic clock (µs): now_us for an important change (or
 * when nothing was published yet), last + min-spacing for a signal change, last + interval
 * for the periodic one, G_MAXINT64 when nothing is due. Never earlier than now_us. */
gint64 ca_telemetry_next_publish(const CaTelemetryPolicy *policy, const CaModemFacts *published,
                                 gint64 last_publish_us, gboolean have_published,
                                 const CaModemFacts *now, gint64 now_us);

/* The telemetry object for facts at real_time_us (g_get_real_time()). */
cJSON *ca_telemetry_build(const CaModemFacts *facts, gint64 real_time_us);

/* The events of a transition old -> now, in order, each {"type":T, ...} without "ts"
 * (the publisher adds it). Types: modem-added, modem-removed, modem-state-changed,
 * registration-changed, sim-missing, sim-locked, sim-pin-wrong, sim-unlocked, sim-changed.
 * Returns a GPtrArray of cJSON* (freed with the array). */
GPtrArray *ca_telemetry_events(const CaModemFacts *old, const CaModemFacts *now);

/* One MQTT message to publish (retained discovery config). payload "" removes. */
typedef struct {
    char *topic;
    char *payload;
} CaTelemetryMessage;

/* Home Assistant MQTT discovery: one config message per entity (sensors of one device named
 * after device_id), reading <base>/telemetry, available per <base>/status. With remove,
 * the same topics with empty payloads (deletes the entities). GPtrArray of
 * CaTelemetryMessage* (freed with the array). */
GPtrArray *ca_telemetry_ha_discovery(const char *prefix, const char *base, const char *device_id,
                                     const char *version, gboolean remove);

G_END_DECLS
