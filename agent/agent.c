/* agent: composition root. Wires the modules (MQTT, modem telemetry, ...) together and
 * follows NetworkManager's presence until the uplink module takes that over. */
#define CA_LOG_MODULE "agent"
#include "agent.h"

#include "autocleanups.h"
#include "backoff.h"
#include "commands.h"
#include "log.h"
#include "modem.h"
#include "mqtt.h"
#include "telemetry-publisher.h"
#include "telemetry.h"
#include "version.h"

#define MQTT_STOP_LIMIT_MS 2000 /* within main's shutdown limit */

struct _CaAgent {
    CaConfig *config;
    CaNotify *notify; /* borrowed from main */
    GCancellable *cancellable;
    GDBusConnection *system_bus;
    GSource *bus_retry; /* owned: retry getting the system bus */
    CaBackoff bus_backoff;
    guint nm_watch;
    gboolean nm_present;

    /* MQTT (wire_mqtt) */
    CaMqtt *mqtt;
    CaCommands *commands; /* modules' commands are registered here */
    gint64 started_at;    /* monotonic, for cmd/ping */
    GTask *shutdown_task;
    GCancellable *mqtt_stop_cancellable;
    GSource *mqtt_stop_deadline; /* owned */

    /* Modem and telemetry (wire_modem) */
    CaModem *modem;
    CaTelemetryPublisher *telemetry;
};

static void get_system_bus(CaAgent *self);

static void
update_status(CaAgent *self)
{
    const CaModemFacts *facts = self->modem ? ca_modem_peek_facts(self->modem) : NULL;
    g_autofree char *status = g_strdup_printf(
        "modem %s, NetworkManager %s",
        facts && facts->present ? mm_modem_state_get_string(facts->state) : "absent",
        self->nm_present ? "present" : "absent");
    ca_notify_status(self->notify, status);
}

static void
name_appeared_cb(GDBusConnection *c, const char *name, const char *owner, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_msg("%s appeared on the system bus (%s)", name, owner);
    self->nm_present = TRUE;
    update_status(self);
}

static void
name_vanished_cb(GDBusConnection *c, const char *name, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_msg("waiting for %s on the system bus", name);
    self->nm_present = FALSE;
    update_status(self);
}

static void
unwatch_bus(CaAgent *self)
{
    if (self->nm_watch)
        g_bus_unwatch_name(self->nm_watch);
    self->nm_watch = 0;
    if (self->system_bus)
        g_signal_handlers_disconnect_by_data(self->system_bus, self);
    g_clear_object(&self->system_bus);
}

static gboolean
bus_retry_cb(gpointer user_data)
{
    CaAgent *self = user_data;

    ca_clear_source(&self->bus_retry);
    get_system_bus(self);
    return G_SOURCE_REMOVE;
}

static void
schedule_bus_retry(CaAgent *self)
{
    guint delay = ca_backoff_next(&self->bus_backoff);

    ca_msg("will try the system bus again in %u s", (delay + 999) / 1000);
    ca_clear_source(&self->bus_retry);
    self->bus_retry = g_timeout_source_new(delay);
    g_source_set_callback(self->bus_retry, bus_retry_cb, self, NULL);
    g_source_attach(self->bus_retry, NULL);
}

static void
bus_closed_cb(GDBusConnection *c, gboolean remote_peer_vanished, GError *error, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_warn("system bus connection closed: %s", error ? error->message : "no reason given");
    unwatch_bus(self);
    self->nm_present = FALSE;
    update_status(self);
    schedule_bus_retry(self);
}

static void
system_bus_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;
    GDBusConnection *bus = g_bus_get_finish(result, &error);
    CaAgent *self;

    if (!bus) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            return;
        self = user_data;
        ca_warn("system bus unavailable: %s", error->message);
        schedule_bus_retry(self);
        return;
    }
    self = user_data;
    ca_backoff_reset(&self->bus_backoff);
    self->system_bus = bus;
    /* A private connection, so a bus restart does not take the process down. */
    g_dbus_connection_set_exit_on_close(bus, FALSE);
    g_signal_connect(bus, "closed", G_CALLBACK(bus_closed_cb), self);
    self->nm_watch = g_bus_watch_name_on_connection(bus, "org.freedesktop.NetworkManager",
                                                    G_BUS_NAME_WATCHER_FLAGS_NONE, name_appeared_cb,
                                                    name_vanished_cb, self, NULL);
}

static void
get_system_bus(CaAgent *self)
{
    g_bus_get(G_BUS_TYPE_SYSTEM, self->cancellable, system_bus_ready, self);
}

/*****************************************************************************/
/* MQTT: the broker connection and the command registry */

/* cmd/ping: answers {"pong":true,"version":V,"uptime":seconds}; a health check for
 * operators and the command round trip in the tests. */
static void
ping_cb(CaCommand *cmd, gpointer user_data)
{
    CaAgent *self = user_data;
    cJSON *result = cJSON_CreateObject();

    cJSON_AddBoolToObject(result, "pong", TRUE);
    cJSON_AddStringToObject(result, "version", CA_VERSION);
    cJSON_AddNumberToObject(
        result, "uptime", (double) ((g_get_monotonic_time() - self->started_at) / G_USEC_PER_SEC));
    ca_command_return_ok(cmd, result);
}

static void
wire_mqtt(CaAgent *self)
{
    self->mqtt = ca_mqtt_new(self->config);
    self->commands = ca_commands_new();
    ca_commands_register(self->commands, "ping", ping_cb, self, NULL);
    ca_commands_attach_mqtt(self->commands, self->mqtt);
}

static void
unwire_mqtt(CaAgent *self)
{
    ca_clear_source(&self->mqtt_stop_deadline);
    g_clear_object(&self->mqtt_stop_cancellable);
    g_clear_pointer(&self->commands, ca_commands_free);
    g_clear_object(&self->mqtt);
}

static gboolean
mqtt_stop_deadline_cb(gpointer user_data)
{
    CaAgent *self = user_data;

    ca_clear_source(&self->mqtt_stop_deadline);
    g_cancellable_cancel(self->mqtt_stop_cancellable);
    return G_SOURCE_REMOVE;
}

static void
mqtt_stop_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autoptr(GError) error = NULL;
    GTask *task = g_steal_pointer(&self->shutdown_task);

    if (!ca_mqtt_stop_finish(CA_MQTT(source), result, &error) && error)
        ca_warn("MQTT stop: %s", error->message);
    ca_clear_source(&self->mqtt_stop_deadline);
    g_task_return_boolean(task, TRUE);
    g_object_unref(task);
}

/* Publish offline and disconnect, bounded by MQTT_STOP_LIMIT_MS; completes the task. */
static void
stop_mqtt(CaAgent *self, GTask *task)
{
    self->shutdown_task = g_object_ref(task);
    self->mqtt_stop_cancellable = g_cancellable_new();
    self->mqtt_stop_deadline = g_timeout_source_new(MQTT_STOP_LIMIT_MS);
    g_source_set_callback(self->mqtt_stop_deadline, mqtt_stop_deadline_cb, self, NULL);
    g_source_attach(self->mqtt_stop_deadline, NULL);
    ca_mqtt_stop_async(self->mqtt, self->mqtt_stop_cancellable, mqtt_stop_ready, self);
}

/*****************************************************************************/
/* Modem: facts -> telemetry and events -> MQTT; cmd/telemetry, cmd/modem-reset and
 * Home Assistant discovery. */

static void
telemetry_publish_cb(const cJSON *telemetry, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_mqtt_publish_json(self->mqtt, "telemetry", telemetry, 1, TRUE, CA_MQTT_MSG_TELEMETRY);
}

static void
telemetry_event_cb(const char *type, const cJSON *event, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_mqtt_publish_event(self->mqtt, type, event);
}

static void
modem_facts_cb(CaModem *modem, gpointer user_data)
{
    CaAgent *self = user_data;

    if (ca_modem_is_settled(modem))
        ca_telemetry_publisher_update(self->telemetry, ca_modem_peek_facts(modem));
    update_status(self);
}

/* cmd/telemetry: publish now; the result is the telemetry object that was published. */
static void
telemetry_cmd_cb(CaCommand *cmd, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_command_return_ok(cmd, ca_telemetry_publisher_publish_now(self->telemetry));
}

static void
modem_reset_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(CaCommand) cmd = user_data;
    g_autoptr(GError) error = NULL;

    if (ca_modem_reset_finish(CA_MODEM(source), result, &error))
        ca_command_return_ok(cmd, NULL);
    else
        ca_command_return_gerror(cmd, error);
}

/* cmd/modem-reset: ModemManager's Modem.Reset on the selected modem. */
static void
modem_reset_cmd_cb(CaCommand *cmd, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_modem_reset_async(self->modem, self->cancellable, modem_reset_ready, ca_command_ref(cmd));
}

static void
publish_ha_discovery(CaAgent *self, CaConfig *config, gboolean remove)
{
    g_autoptr(GPtrArray) msgs = NULL;

    if (!ca_config_get_bool(config, "telemetry", "homeassistant"))
        return;
    msgs = ca_telemetry_ha_discovery(
        ca_config_get_string(config, "telemetry", "homeassistant-prefix"),
        ca_mqtt_get_base(self->mqtt), ca_config_get_string(config, "agent", "device-id"),
        CA_VERSION, remove);
    for (guint i = 0; i < msgs->len; i++) {
        const CaTelemetryMessage *m = g_ptr_array_index(msgs, i);

        /* Discovery topics live outside <base>. */
        ca_mqtt_publish_to_topic(self->mqtt, m->topic, m->payload, 1, TRUE, CA_MQTT_MSG_NORMAL);
    }
}

static void
mqtt_connected_cb(CaMqtt *mqtt, gpointer user_data)
{
    publish_ha_discovery(user_data, ((CaAgent *) user_data)->config, FALSE);
}

static void
wire_modem(CaAgent *self)
{
    self->modem = ca_modem_new(self->config);
    self->telemetry =
        ca_telemetry_publisher_new(self->config, telemetry_publish_cb, telemetry_event_cb, self);
    g_signal_connect(self->modem, "facts-changed", G_CALLBACK(modem_facts_cb), self);
    g_signal_connect(self->mqtt, "connected", G_CALLBACK(mqtt_connected_cb), self);
    ca_commands_register(self->commands, "telemetry", telemetry_cmd_cb, self, NULL);
    ca_commands_register(self->commands, "modem-reset", modem_reset_cmd_cb, self, NULL);
}

static gboolean
config_string_changed(CaConfig *a, CaConfig *b, const char *group, const char *key)
{
    return g_strcmp0(ca_config_get_string(a, group, key), ca_config_get_string(b, group, key)) != 0;
}

/* Re-apply [modem]/[telemetry]. Home Assistant entities: removed and published again when
 * their topics change (option, prefix, device id), published again when only the state
 * topics moved (topic-prefix). */
static void
reload_modem(CaAgent *self, CaConfig *old, CaConfig *config)
{
    ca_modem_apply_config(self->modem, config);
    ca_telemetry_publisher_set_config(self->telemetry, config);
    if (ca_config_get_bool(old, "telemetry", "homeassistant") !=
            ca_config_get_bool(config, "telemetry", "homeassistant") ||
        config_string_changed(old, config, "telemetry", "homeassistant-prefix") ||
        config_string_changed(old, config, "agent", "device-id")) {
        publish_ha_discovery(self, old, TRUE);
        publish_ha_discovery(self, config, FALSE);
    } else if (config_string_changed(old, config, "mqtt", "topic-prefix")) {
        publish_ha_discovery(self, config, FALSE);
    }
}

/* Stop following the modem without publishing a false "absent" on the way out. */
static void
unwire_modem(CaAgent *self)
{
    if (self->modem) {
        g_signal_handlers_disconnect_by_data(self->modem, self);
        ca_modem_stop(self->modem);
    }
    if (self->mqtt)
        g_signal_handlers_disconnect_by_data(self->mqtt, self);
    if (self->commands) {
        ca_commands_unregister(self->commands, "telemetry");
        ca_commands_unregister(self->commands, "modem-reset");
    }
    g_clear_pointer(&self->telemetry, ca_telemetry_publisher_free);
    g_clear_object(&self->modem);
}

/*****************************************************************************/

CaAgent *
ca_agent_new(CaConfig *config, CaNotify *notify)
{
    CaAgent *self = g_new0(CaAgent, 1);

    self->config = ca_config_ref(config);
    self->notify = notify;
    self->cancellable = g_cancellable_new();
    ca_backoff_init(&self->bus_backoff, 1000, 60000, 20, NULL);
    self->started_at = g_get_monotonic_time();
    wire_mqtt(self);
    wire_modem(self);
    return self;
}

void
ca_agent_free(CaAgent *self)
{
    if (!self)
        return;
    g_cancellable_cancel(self->cancellable);
    unwatch_bus(self);
    ca_clear_source(&self->bus_retry);
    unwire_modem(self);
    unwire_mqtt(self);
    g_clear_object(&self->cancellable);
    ca_config_unref(self->config);
    g_free(self);
}

void
ca_agent_start(CaAgent *self)
{
    ca_msg("cellagent %s starting as device \"%s\"", CA_VERSION,
           ca_config_get_string(self->config, "agent", "device-id"));
    update_status(self);
    get_system_bus(self);
    ca_mqtt_start(self->mqtt);
    ca_modem_start(self->modem);
}

void
ca_agent_reload(CaAgent *self, CaConfig *config)
{
    CaConfig *old = self->config;
    CaLogLevel level;

    self->config = ca_config_ref(config);
    if (!ca_config_group_equal(old, config, "agent") &&
        ca_log_level_from_string(ca_config_get_string(config, "agent", "log-level"), &level))
        ca_log_set_level(level);
    ca_mqtt_set_config(self->mqtt, config);
    reload_modem(self, old, config);
    ca_msg("configuration reloaded");
    ca_config_unref(old);
}

void
ca_agent_shutdown_async(CaAgent *self, GAsyncReadyCallback callback, gpointer user_data)
{
    g_autoptr(GTask) task = g_task_new(NULL, NULL, callback, user_data);

    g_task_set_source_tag(task, ca_agent_shutdown_async);
    g_cancellable_cancel(self->cancellable);
    unwatch_bus(self);
    ca_clear_source(&self->bus_retry);
    unwire_modem(self);
    stop_mqtt(self, task);
}

gboolean
ca_agent_shutdown_finish(CaAgent *self, GAsyncResult *result, GError **error)
{
    return g_task_propagate_boolean(G_TASK(result), error);
}
