/* economy: the pure policy of economy mode for metered links ([economy], docs/economy.md).
 * Whether the agent economises (mode on/off, or auto from NetworkManager's Metered property
 * of the uplink in use), and what each figure becomes while it does: never more frequent or
 * more sensitive than the normal setting. No I/O; agent-economy.c applies the decisions.
 * Owns: the metered mapping and the figures' arithmetic. Does not own: reading the property
 * (agent/nm), the timers it changes (their modules). */
#pragma once
#include "config.h"
#include "telemetry.h"

#include <glib.h>

G_BEGIN_DECLS

/* NetworkManager's NMMetered, same values (the core does not include libnm). */
typedef enum {
    CA_METERED_UNKNOWN = 0,
    CA_METERED_YES = 1,
    CA_METERED_NO = 2,
    CA_METERED_GUESS_YES = 3,
    CA_METERED_GUESS_NO = 4,
} CaMetered;

/* "unknown", "yes", "no", "guess-yes", "guess-no" (as nmcli prints them). */
const char *ca_metered_to_string(CaMetered metered);
/* yes and guess-yes are metered (NetworkManager guesses yes for modems and for Wi-Fi
 * hotspots that say so); no, guess-no and unknown are not. */
gboolean ca_metered_is_metered(CaMetered metered);

typedef enum {
    CA_ECONOMY_MODE_AUTO, /* follow the Metered property of the uplink in use */
    CA_ECONOMY_MODE_ON,   /* always */
    CA_ECONOMY_MODE_OFF,  /* never */
} CaEconomyMode;

const char *ca_economy_mode_to_string(CaEconomyMode mode);

/* The [economy] figures (loaded by ca_economy_settings_load, economy-settings.h). */
typedef struct {
    CaEconomyMode mode;
    CaTelemetryPolicy telemetry; /* interval, min-spacing, deadbands while economising */
    guint keepalive_s;           /* MQTT keepalive */
    gint64 probe_interval_ms;    /* health rounds of the uplink in use; passive health */
    gint64 report_interval_ms;   /* <base>/link refresh */
    guint usage_interval_s;      /* <base>/usage refresh for traffic alone */
    gboolean topic_aliases;      /* MQTT 5 topic aliases for the agent's fixed topics */
} CaEconomyPolicy;

/* Should the agent economise? have_uplink: an uplink is in use and its Metered property is
 * known to the caller (metered then says what it is). *out_reason (static text or NULL):
 * why, for logs and the economy event. */
gboolean ca_economy_decide(CaEconomyMode mode, gboolean have_uplink, CaMetered metered,
                           const char **out_reason);

/* A normal period and its economy counterpart: the longer one; 0 (off, e.g. telemetry
 * interval=0 or report-interval=0) stays 0. */
guint64 ca_economy_longer(guint64 normal, guint64 economy);
/* The telemetry policy while economising: every period the longer, every deadband the
 * wider of normal and economy. */
void ca_economy_telemetry_policy(const CaTelemetryPolicy *normal, const CaEconomyPolicy *economy,
                                 CaTelemetryPolicy *out);

G_END_DECLS
