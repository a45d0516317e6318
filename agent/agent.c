/* agent: composition root. It follows the system bus and the presence of ModemManager,
 * and wires the modules together: MQTT, the uplinks (NetworkManager); modules plug in
 * here as they are built, each in its own section. */
#define CA_LOG_MODULE "agent"
#include "agent.h"

#include "autocleanups.h"
#include "backoff.h"
#include "commands.h"
#include "log.h"
#include "mqtt.h"
#include "uplink.h"
#include "version.h"

#define MQTT_STOP_LIMIT_MS 2000 /* within main's shutdown limit */

struct _CaAgent {
    CaConfig *config;
    CaNotify *notify; /* borrowed from main */
    GCancellable *cancellable;
    GDBusConnection *system_bus;
    GSource *bus_retry; /* owned: retry getting the system bus */
    CaBackoff bus_backoff;
    guint mm_watch;
    gboolean mm_present;

    /* MQTT (wire_mqtt) */
    CaMqtt *mqtt;
    CaCommands *commands; /* modules' commands are registered here */
    gint64 started_at;    /* monotonic, for cmd/ping */
    GTask *shutdown_task;
    GCancellable *mqtt_stop_cancellable;
    GSource *mqtt_stop_deadline; /* owned */

    /* Uplinks (wire_uplink) */
    CaUplink *uplink;
    gint64 last_switch; /* monotonic: MQTT drops we caused ourselves are no evidence */
    guint stopping;     /* modules still shutting down */
};

static void get_system_bus(CaAgent *self);

static void
update_status(CaAgent *self)
{
    g_autofree char *status =
        g_strdup_printf("%s; ModemManager %s", ca_uplink_get_status(self->uplink),
                        self->mm_present ? "present" : "absent");
    ca_notify_status(self->notify, status);
}

static void
name_appeared_cb(GDBusConnection *c, const char *name, const char *owner, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_msg("%s appeared on the system bus (%s)", name, owner);
    self->mm_present = TRUE;
    update_status(self);
}

static void
name_vanished_cb(GDBusConnection *c, const char *name, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_msg("waiting for %s on the system bus", name);
    self->mm_present = FALSE;
    update_status(self);
}

static void
unwatch_bus(CaAgent *self)
{
    if (self->mm_watch)
        g_bus_unwatch_name(self->mm_watch);
    self->mm_watch = 0;
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
    self->mm_present = FALSE;
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
    self->mm_watch = g_bus_watch_name_on_connection(bus, "org.freedesktop.ModemManager1",
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

/* One module finished shutting down; the last one completes the shutdown task. */
static void
shutdown_step_done(CaAgent *self)
{
    GTask *task;

    if (--self->stopping > 0)
        return;
    task = g_steal_pointer(&self->shutdown_task);
    g_task_return_boolean(task, TRUE);
    g_object_unref(task);
}

static void
mqtt_stop_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autoptr(GError) error = NULL;

    if (!ca_mqtt_stop_finish(CA_MQTT(source), result, &error) && error)
        ca_warn("MQTT stop: %s", error->message);
    ca_clear_source(&self->mqtt_stop_deadline);
    shutdown_step_done(self);
}

/* Publish offline and disconnect, bounded by MQTT_STOP_LIMIT_MS. */
static void
stop_mqtt(CaAgent *self)
{
    self->mqtt_stop_cancellable = g_cancellable_new();
    self->mqtt_stop_deadline = g_timeout_source_new(MQTT_STOP_LIMIT_MS);
    g_source_set_callback(self->mqtt_stop_deadline, mqtt_stop_deadline_cb, self, NULL);
    g_source_attach(self->mqtt_stop_deadline, NULL);
    ca_mqtt_stop_async(self->mqtt, self->mqtt_stop_cancellable, mqtt_stop_ready, self);
}

/*****************************************************************************/
/* Uplinks: link state and events to MQTT, MQTT reconnects after a switch */

static void
uplink_link_changed_cb(CaUplink *uplink, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autoptr(cJSON) link = ca_uplink_get_link_json(uplink);

    ca_mqtt_publish_json(self->mqtt, "link", link, 1, TRUE, CA_MQTT_MSG_NORMAL);
}

static void
uplink_event_cb(CaUplink *uplink, const char *type, gpointer fields, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_mqtt_publish_event(self->mqtt, type, fields);
}

static void
uplink_switched_cb(CaUplink *uplink, const char *from, const char *to, const char *kind,
                   gpointer user_data)
{
    CaAgent *self = user_data;

    /* The old TCP path is gone with the old uplink: reconnect over the new one now
     * instead of waiting for the keepalive to expire. */
    if (from) {
        self->last_switch = g_get_monotonic_time();
        ca_mqtt_reconnect_now(self->mqtt);
    }
}

static void
uplink_status_cb(CaUplink *uplink, const char *status, gpointer user_data)
{
    update_status(user_data);
}

static void
mqtt_disconnected_cb(CaMqtt *mqtt, gpointer user_data)
{
    CaAgent *self = user_data;

    /* Passive evidence against the uplink in use, unless we caused it. */
    if (g_get_monotonic_time() - self->last_switch > 5 * G_USEC_PER_SEC)
        ca_uplink_note_trouble(self->uplink, "MQTT connection lost");
}

static void
mqtt_connected_cb(CaMqtt *mqtt, gpointer user_data)
{
    CaAgent *self = user_data;

    uplink_link_changed_cb(self->uplink, self);
}

static void
wire_uplink(CaAgent *self)
{
    self->uplink = ca_uplink_new(self->config);
    g_signal_connect(self->uplink, "link-changed", G_CALLBACK(uplink_link_changed_cb), self);
    g_signal_connect(self->uplink, "event", G_CALLBACK(uplink_event_cb), self);
    g_signal_connect(self->uplink, "switched", G_CALLBACK(uplink_switched_cb), self);
    g_signal_connect(self->uplink, "status-changed", G_CALLBACK(uplink_status_cb), self);
    g_signal_connect(self->mqtt, "disconnected", G_CALLBACK(mqtt_disconnected_cb), self);
    g_signal_connect(self->mqtt, "connected", G_CALLBACK(mqtt_connected_cb), self);
}

static void
unwire_uplink(CaAgent *self)
{
    if (self->uplink)
        g_signal_handlers_disconnect_by_data(self->uplink, self);
    if (self->mqtt)
        g_signal_handlers_disconnect_by_data(self->mqtt, self);
    g_clear_object(&self->uplink);
}

static void
uplink_stop_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    ca_uplink_shutdown_finish(CA_UPLINK(source), result, NULL);
    shutdown_step_done(user_data);
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
    wire_uplink(self);
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
    unwire_uplink(self);
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
    ca_uplink_start(self->uplink);
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
    ca_uplink_set_config(self->uplink, config);
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
    self->shutdown_task = g_object_ref(task);
    self->stopping = 2;
    ca_uplink_shutdown_async(self->uplink, uplink_stop_ready, self);
    stop_mqtt(self);
}

gboolean
ca_agent_shutdown_finish(CaAgent *self, GAsyncResult *result, GError **error)
{
    return g_task_propagate_boolean(G_TASK(result), error);
}
