/* agent-private: the composition root's state, shared by agent.c (MQTT, modem, SMS,
 * remote commands, life cycle) and agent-uplink.c (the uplinks' wiring). */
#pragma once
#include "agent.h"

#include "agent-settings.h"
#include "actions.h"
#include "alerts.h"
#include "autocleanups.h"
#include "backoff.h"
#include "clock-source.h"
#include "commands-mqtt.h"
#include "commands.h"
#include "error.h"
#include "log.h"
#include "modem.h"
#include "mqtt.h"
#include "remote.h"
#include "sms.h"
#include "system-settings.h"
#include "telemetry-publisher.h"
#include "telemetry.h"
#include "uplink.h"
#include "version.h"
#include <string.h>

#define MQTT_STOP_LIMIT_MS 2000 /* within main's shutdown limit */
/* The status file is rewritten at least this often (seconds; its "refresh"). */
#define STATUS_REFRESH_S 30

typedef struct _CaAgentUsage CaAgentUsage;
typedef struct _CaAgentRconf CaAgentRconf;
typedef struct _CaAgentEconomy CaAgentEconomy;

struct _CaAgent {
    CaConfig *config;    /* handed to the modules, which load their own settings */
    CaAgentSettings set; /* what agent.c itself reads */
    CaNotify *notify;    /* borrowed from main */
    GCancellable *cancellable;

    /* MQTT (wire_mqtt) */
    CaMqtt *mqtt;
    CaCommands *commands; /* modules' commands are registered here */
    CaCommandsMqtt *commands_mqtt;
    gint64 started_at; /* monotonic, for cmd/ping */
    GTask *shutdown_task;
    GCancellable *mqtt_stop_cancellable;
    GSource *mqtt_stop_deadline; /* owned */

    /* Remote commands, SMS commands and alerts (wire_remote) */
    CaRemote *remote;
    CaAgentReloadFunc reload_func; /* from main: what SIGHUP does */
    gpointer reload_data;
    char *config_path; /* from main: the files a remote layer is validated with */

    /* Remote configuration (agent-rconf.c) */
    CaAgentRconf *rconf;
    GSource *mqtt_reconnect_idle; /* owned */

    /* Modem and telemetry (wire_modem) */
    CaModem *modem;
    guint watchdog_resets; /* the watchdog's own modem resets under way */
    CaTelemetryPublisher *telemetry;

    /* Clock for SMS command codes (agent-clock.c) */
    CaClock clock;
    gboolean clock_read;       /* the network time was read since this modem registered */
    gboolean clock_refreshing; /* a round (NTPSynchronized, network time) in flight */
    GPtrArray *clock_waiters;  /* ClockWaiter*, called when the round ends */
    CaClockDecision clock_published;
    gboolean clock_published_valid;

    /* Economy mode (agent-economy.c) */
    CaAgentEconomy *economy;

    /* Usage accounting (agent-usage.c); NULL when [usage] enabled=false */
    CaAgentUsage *usage;

    /* SMS (wire_sms); NULL when [sms] enabled=false or its state directory is unusable */
    CaSms *sms;

    /* Uplinks (wire_uplink) */
    CaUplink *uplink;
    CaSystemSettings *system; /* the watchdog's system steps (agent/system) */
    gint64 last_switch;       /* monotonic: MQTT drops we caused ourselves are no evidence */
    guint stopping;           /* modules still shutting down */

    /* The status file (agent-status.c) */
    GSource *status_refresh;  /* owned: the next refresh; NULL: not writing */
    GSource *status_pending;  /* owned: a write after a change */
    gint64 status_written_at; /* monotonic */
    gboolean status_failed;   /* the last write failed (warned once) */
    GPtrArray *status_events; /* cJSON*, the last events published, oldest first */
    char *sms_last_error;     /* the last sms/out failure, with its time */
    gint64 mqtt_since;        /* real time of the last connect or disconnect */
    gboolean mqtt_was_connected;

    /* cmd/diagnose (agent-diagnose.c) */
    gpointer diagnose_run; /* the bundle being made, NULL: none */
    gint64 diagnose_last;  /* monotonic: when the last bundle was sent, 0: never */
};

void ca_agent_update_status(CaAgent *self);
void ca_agent_shutdown_step_done(CaAgent *self);
void ca_agent_wire_uplink(CaAgent *self);
void ca_agent_unwire_uplink(CaAgent *self);
/* agent-clock.c */
typedef void (*CaAgentClockFunc)(CaAgent *self, gpointer data);
void ca_agent_wire_clock(CaAgent *self);
void ca_agent_unwire_clock(CaAgent *self);
void ca_agent_reload_clock(CaAgent *self);
/* Call func(self, data) once the clock is fresh enough for a TOTP check: at once when NTP
 * has synchronised or the network time was read within the last seconds, else after one
 * more reading. destroy(data) afterwards, or when the agent stops first. */
void ca_agent_clock_wait(CaAgent *self, CaAgentClockFunc func, gpointer data,
                         GDestroyNotify destroy);
/* Now (unix us) by the clock TOTP trusts; *out_source names it ("ntp", "system", "network"). */
gint64 ca_agent_clock_now(CaAgent *self, const char **out_source);
/* agent-usage.c */
/* Give the uplinks the data cap the SIM in use is under now (agent-usage.c). */
void ca_agent_usage_apply_cap(CaAgent *self);
void ca_agent_wire_usage(CaAgent *self);
void ca_agent_unwire_usage(CaAgent *self);
void ca_agent_reload_usage(CaAgent *self);
/* Book the last bytes and save (stop). */
void ca_agent_usage_stop(CaAgent *self);
/* The modem's facts changed: SIM, bearer session. */
void ca_agent_usage_facts_changed(CaAgent *self);
/* Hand telemetry the modem facts, with the session's bytes where ModemManager has none. */
void ca_agent_usage_feed_telemetry(CaAgent *self);
/* The current (or last) session's bytes from the kernel's counters; FALSE when none. */
gboolean ca_agent_usage_get_session(CaAgent *self, guint64 *out_rx, guint64 *out_tx);
/* The usage payload now, NULL before the SIM is known or when not counting (caller frees). */
cJSON *ca_agent_usage_json(CaAgent *self);
/* agent-rconf.c */
void ca_agent_wire_rconf(CaAgent *self);
void ca_agent_unwire_rconf(CaAgent *self);
void ca_agent_reload_rconf(CaAgent *self);
/* The checkpoint asked for by ca_agent_rconf_checkpoint_create: its path ("" when
 * NetworkManager is not running: none needed), or NULL and why. */
void ca_agent_rconf_checkpoint_created(CaAgent *self, const char *path, const GError *error);
/* The rollback asked for by ca_agent_rconf_checkpoint_rollback finished (error: how not). */
void ca_agent_rconf_checkpoint_rolled_back(CaAgent *self, const GError *error);
/* The uplink in use changed (a network change on trial waits for the network to settle). */
void ca_agent_rconf_uplink_switched(CaAgent *self);
/* agent-uplink.c: NetworkManager checkpoints of every device for remote configuration. Each
 * answers through the functions above, never before returning. */
void ca_agent_rconf_checkpoint_create(CaAgent *self, guint rollback_timeout_s);
void ca_agent_rconf_checkpoint_rollback(CaAgent *self, const char *path);
void ca_agent_rconf_checkpoint_destroy(CaAgent *self, const char *path);
/* Economy mode: traffic alone publishes at most every interval_s (0: the normal
 * publish-interval only). */
void ca_agent_usage_set_economy(CaAgent *self, guint interval_s);
/* agent-economy.c */
void ca_agent_wire_economy(CaAgent *self);
void ca_agent_unwire_economy(CaAgent *self);
void ca_agent_reload_economy(CaAgent *self);
/* Decide again (the uplink in use or its Metered property may have changed). */
void ca_agent_economy_update(CaAgent *self);
/* {"active":bool,"mode":...,"reason":...,"uplink":...,"metered":...} (caller frees). */
cJSON *ca_agent_economy_json(CaAgent *self);
/* agent-status.c */
void ca_agent_wire_status(CaAgent *self);
void ca_agent_unwire_status(CaAgent *self);
void ca_agent_start_status(CaAgent *self);
void ca_agent_stop_status(CaAgent *self);
void ca_agent_reload_status(CaAgent *self, const char *old_runtime_dir);
void ca_agent_status_changed(CaAgent *self);
void ca_agent_status_sms_result(CaAgent *self, const char *json);
/* agent-diagnose.c */
void ca_agent_wire_diagnose(CaAgent *self);
void ca_agent_unwire_diagnose(CaAgent *self);
/* Publish an event on <base>/events and keep it for the status file. */
void ca_agent_publish_event(CaAgent *self, const char *type, const cJSON *fields);
/* The status document now (caller frees). */
cJSON *ca_agent_status_json(CaAgent *self);
void ca_agent_uplink_stop_ready(GObject *source, GAsyncResult *result, gpointer user_data);
