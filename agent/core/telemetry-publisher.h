/* telemetry-publisher: acts on telemetry.c's decisions on the main loop. Fed the modem's
 * facts, it emits the events of each transition at once and the telemetry object when the
 * policy says (one owned timer), or at once on request (cmd/telemetry).
 * Owns: the last published snapshot and the timer. Does not own: the transport (agent.c
 * hands it callbacks that publish through CaMqtt) nor the facts (CaModem). */
#pragma once
#include "config.h"
#include "modem-facts.h"
#include "telemetry.h"

#include <cjson/cJSON.h>
#include <glib.h>

G_BEGIN_DECLS

typedef struct _CaTelemetryPublisher CaTelemetryPublisher;

/* Publish one telemetry object (retained, <base>/telemetry); not consumed. */
typedef void (*CaTelemetryPublishFunc)(const cJSON *telemetry, gpointer user_data);
/* Publish one event ({"type":T,...} without ts, <base>/events); not consumed. */
typedef void (*CaTelemetryEventFunc)(const char *type, const cJSON *event, gpointer user_data);

/* A publisher with config's [telemetry] policy; publishes nothing until the first update. */
CaTelemetryPublisher *ca_telemetry_publisher_new(CaConfig *config, CaTelemetryPublishFunc publish,
                                                 CaTelemetryEventFunc event, gpointer user_data);
/* Stop the timer and free. */
void ca_telemetry_publisher_free(CaTelemetryPublisher *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaTelemetryPublisher, ca_telemetry_publisher_free)
/* Apply a reloaded [telemetry] policy (reschedules). */
void ca_telemetry_publisher_set_config(CaTelemetryPublisher *self, CaConfig *config);
/* Economy mode: publish by economy's figures, each the longer period or wider deadband
 * of [telemetry] and economy (ca_economy_telemetry_policy); NULL: [telemetry] alone.
 * Reschedules when the policy in force changed. */
void ca_telemetry_publisher_set_economy(CaTelemetryPublisher *self,
                                        const CaTelemetryPolicy *economy);
/* New facts: events for the transition now, telemetry when the policy says. */
void ca_telemetry_publisher_update(CaTelemetryPublisher *self, const CaModemFacts *facts);
/* Publish the current facts now; returns the object published (caller owns it). */
cJSON *ca_telemetry_publisher_publish_now(CaTelemetryPublisher *self);
/* Telemetry messages published since creation. */
guint64 ca_telemetry_publisher_get_count(CaTelemetryPublisher *self);

G_END_DECLS
