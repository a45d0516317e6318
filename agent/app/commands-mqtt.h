/* commands-mqtt: the MQTT transport of the command registry. Subscribes <base>/cmd/+, feeds
 * each request to ca_commands_dispatch and publishes the one answer on
 * <base>/cmd/<name>/result (QoS 1, not retained). Lives in the composition root because it
 * joins the control layer (commands) to the MQTT adapter. */
#pragma once
#include "commands.h"
#include "mqtt.h"

typedef struct _CaCommandsMqtt CaCommandsMqtt;

/* Serve commands over mqtt (both referenced/borrowed: free this before the registry). */
CaCommandsMqtt *ca_commands_mqtt_new(CaCommands *commands, CaMqtt *mqtt);
void ca_commands_mqtt_free(CaCommandsMqtt *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaCommandsMqtt, ca_commands_mqtt_free)
