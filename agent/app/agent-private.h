/* agent-private: the composition root's state, shared by agent.c (MQTT, modem, SMS,
 * remote commands, life cycle) and agent-uplink.c (the uplinks' wiring). */
#pragma once
#include "agent.h"

#include "agent-settings.h"
#include "actions.h"
#include "alerts.h"
#include "autocleanups.h"
#include "backoff.h"
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
    GSource *mqtt_reconnect_idle; /* owned */

    /* Modem and telemetry (wire_modem) */
    CaModem *modem;
    guint watchdog_resets; /* the watchdog's own modem resets under way */
    CaTelemetryPublisher *telemetry;

    /* SMS (wire_sms); NULL when [sms] enabled=false or its state directory is unusable */
    CaSms *sms;

    /* Uplinks (wire_uplink) */
    CaUplink *uplink;
    CaSystemSettings *system; /* the watchdog's system steps (agent/system) */
    gint64 last_switch;       /* monotonic: MQTT drops we caused ourselves are no evidence */
    guint stopping;           /* modules still shutting down */
};

void ca_agent_update_status(CaAgent *self);
void ca_agent_shutdown_step_done(CaAgent *self);
void ca_agent_wire_uplink(CaAgent *self);
void ca_agent_unwire_uplink(CaAgent *self);
void ca_agent_uplink_stop_ready(GObject *source, GAsyncResult *result, gpointer user_data);
