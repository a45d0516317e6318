/* agent-settings: CaAgentSettings, what the composition root (agent/app: agent.c, main.c)
 * reads from the config itself: [agent], which optional modules to wire, and what Home
 * Assistant discovery needs. The pattern is in settings.h. */
#pragma once
#include "clock-source.h"
#include "config.h"
#include "log-level.h"
#include "settings.h"

typedef struct {
    char *device_id;
    char *state_dir;
    char *runtime_dir;             /* [agent] runtime-dir: status.json */
    CaLogLevel log_level;          /* [agent] log-level (--log-level may override it) */
    CaClockMode network_time;      /* [agent] network-time */
    gboolean sms_enabled;          /* [sms] enabled: wire the SMS bridge (at start only) */
    gboolean sms_commands_enabled; /* [sms-commands] enabled, to warn when [sms] is off */
    gboolean sms_alerts_enabled;   /* [sms-alerts] enabled, likewise */
    gboolean homeassistant;        /* [telemetry] homeassistant: publish discovery */
    char *homeassistant_prefix;    /* [telemetry] homeassistant-prefix */
    char *topic_prefix;            /* [mqtt] topic-prefix: discovery's state topics */
    gsize diagnose_max_size;       /* [diagnose] max-size: cmd/diagnose's bundle, bytes */
    gsize diagnose_chunk_size;     /* [diagnose] chunk-size: bytes per chunk message */
} CaAgentSettings;

/* What changed between two settings (ca_agent_settings_diff); 0 = nothing. */
typedef enum {
    CA_AGENT_SETTINGS_LOG_LEVEL = 1 << 0,
    CA_AGENT_SETTINGS_DEVICE_ID = 1 << 1,
    CA_AGENT_SETTINGS_STATE_DIR = 1 << 2,
    CA_AGENT_SETTINGS_WIRING = 1 << 3,        /* sms, sms-commands, sms-alerts enabled */
    CA_AGENT_SETTINGS_HOMEASSISTANT = 1 << 4, /* homeassistant, homeassistant-prefix */
    CA_AGENT_SETTINGS_TOPIC_PREFIX = 1 << 5,
    CA_AGENT_SETTINGS_NETWORK_TIME = 1 << 6,
    CA_AGENT_SETTINGS_RUNTIME_DIR = 1 << 7,
    CA_AGENT_SETTINGS_DIAGNOSE = 1 << 8, /* read when a bundle is made: nothing to re-apply */
} CaAgentSettingsChange;

/* Fill out (zeroed or cleared first) from config. */
void ca_agent_settings_load(CaAgentSettings *out, const CaConfig *config);
/* Free what settings owns and zero it; NULL-safe. */
void ca_agent_settings_clear(CaAgentSettings *settings);
/* The groups of values that differ between a and b. */
CaAgentSettingsChange ca_agent_settings_diff(const CaAgentSettings *a, const CaAgentSettings *b);
gboolean ca_agent_settings_equal(const CaAgentSettings *a, const CaAgentSettings *b);
