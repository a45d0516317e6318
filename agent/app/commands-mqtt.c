/* commands-mqtt: commands over MQTT (commands-mqtt.h). */
#define CA_LOG_MODULE "commands"
#include "commands-mqtt.h"

#include "log.h"

#include <string.h>

struct _CaCommandsMqtt {
    CaCommands *commands; /* borrowed: outlives this */
    CaMqtt *mqtt;
    gulong message_id;
};

static void
mqtt_reply(CaCommand *cmd, const char *result_json, gpointer user_data)
{
    CaMqtt *mqtt = user_data;
    g_autofree char *subtopic = g_strconcat("cmd/", ca_command_get_name(cmd), "/result", NULL);

    ca_mqtt_publish(mqtt, subtopic, result_json, 1, FALSE, CA_MQTT_MSG_NORMAL);
}

static void
mqtt_message_cb(CaMqtt *mqtt, const char *subtopic, GBytes *payload, gpointer user_data)
{
    CaCommandsMqtt *self = user_data;
    const char *name;
    gsize len = 0;
    const char *data;

    if (!g_str_has_prefix(subtopic, "cmd/"))
        return;
    name = subtopic + 4;
    if (strchr(name, '/'))
        return; /* cmd/<name>/result and deeper are not requests */
    data = g_bytes_get_data(payload, &len);
    if (!ca_command_name_is_valid(name)) {
        /* Still answer: the requester waits on cmd/<name>/result. No handler can have this
         * name, so it is unknown; the request is not parsed. */
        g_autofree char *text =
            ca_command_encode_result(NULL, FALSE, NULL, "unknown command", g_get_real_time());
        g_autofree char *sub = g_strconcat(subtopic, "/result", NULL);

        ca_msg("command \"%s\" from mqtt: not a valid command name", name);
        ca_mqtt_publish(mqtt, sub, text, 1, FALSE, CA_MQTT_MSG_NORMAL);
        return;
    }
    ca_commands_dispatch(self->commands, name, data ? data : "", len, "mqtt", mqtt_reply,
                         g_object_ref(mqtt), g_object_unref);
}

CaCommandsMqtt *
ca_commands_mqtt_new(CaCommands *commands, CaMqtt *mqtt)
{
    CaCommandsMqtt *self;

    g_return_val_if_fail(commands != NULL && CA_IS_MQTT(mqtt), NULL);
    self = g_new0(CaCommandsMqtt, 1);
    self->commands = commands;
    self->mqtt = g_object_ref(mqtt);
    self->message_id = g_signal_connect(mqtt, "message", G_CALLBACK(mqtt_message_cb), self);
    ca_mqtt_subscribe(mqtt, "cmd/+");
    return self;
}

void
ca_commands_mqtt_free(CaCommandsMqtt *self)
{
    if (!self)
        return;
    g_clear_signal_handler(&self->message_id, self->mqtt);
    g_clear_object(&self->mqtt);
    g_free(self);
}
