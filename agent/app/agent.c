/* agent: composition root. Wires the modules together: MQTT, the modem (telemetry), SMS,
 * the uplinks (NetworkManager) and remote control; each in its own section. Holds no
 * policy of its own. */
#define CA_LOG_MODULE "agent"
#include "agent-private.h"

#include "sms-command.h"

#include <string.h>

void
ca_agent_update_status(CaAgent *self)
{
    const CaModemFacts *facts = self->modem ? ca_modem_peek_facts(self->modem) : NULL;
    g_autofree char *status = g_strdup_printf(
        "%s; modem %s", self->uplink ? ca_uplink_get_status(self->uplink) : "starting",
        facts && facts->present ? ca_mm_modem_state_to_string(facts->state) : "absent");
    ca_notify_status(self->notify, status);
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
    {
        g_autoptr(GError) error = NULL;
        g_autofree char *journal = g_build_filename(
            ca_config_get_string(self->config, "agent", "state-dir"), "commands.journal", NULL);

        if (!ca_commands_set_journal(self->commands, journal, &error))
            ca_warn("command ids are kept in memory only (%s): a request repeated after a "
                    "restart could run again",
                    error->message);
    }
    ca_commands_register(self->commands, "ping", ping_cb, self, NULL);
    ca_commands_set_read_only(self->commands, "ping");
    self->commands_mqtt = ca_commands_mqtt_new(self->commands, self->mqtt);
}

static void
unwire_mqtt(CaAgent *self)
{
    ca_clear_source(&self->mqtt_stop_deadline);
    g_clear_object(&self->mqtt_stop_cancellable);
    g_clear_pointer(&self->commands_mqtt, ca_commands_mqtt_free);
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
void
ca_agent_shutdown_step_done(CaAgent *self)
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
    ca_agent_shutdown_step_done(self);
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

    ca_agent_publish_event(self, type, event);
}

static void
modem_facts_cb(CaModem *modem, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_agent_usage_facts_changed(self);
    /* Telemetry once settled, with the usage counters' session bytes where needed. */
    ca_agent_usage_feed_telemetry(self);
    ca_agent_update_status(self);
    ca_agent_status_changed(self);
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

    if (ca_modem_ops_run_finish(CA_MODEM_OPS(source), result, &error))
        ca_command_return_ok(cmd, NULL);
    else
        ca_command_return_gerror(cmd, error);
}

/* cmd/modem-reset: reset the selected modem through its one owner (Modem.Reset, else
 * Disable + Enable), after any modem operation in progress. */
static void
modem_reset_cmd_cb(CaCommand *cmd, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autofree char *why = g_strdup_printf("cmd/modem-reset from %s", ca_command_get_source(cmd));

    ca_modem_ops_run_async(ca_modem_get_ops(self->modem), CA_MODEM_OP_RESET, why, self->cancellable,
                           modem_reset_ready, ca_command_ref(cmd));
}

static void
publish_ha_discovery(CaAgent *self, const CaAgentSettings *set, gboolean remove)
{
    g_autoptr(GPtrArray) msgs = NULL;

    if (!set->homeassistant)
        return;
    msgs = ca_telemetry_ha_discovery(set->homeassistant_prefix, ca_mqtt_get_base(self->mqtt),
                                     set->device_id, CA_VERSION, remove);
    for (guint i = 0; i < msgs->len; i++) {
        const CaTelemetryMessage *m = g_ptr_array_index(msgs, i);

        /* Discovery topics live outside <base>. */
        ca_mqtt_publish_to_topic(self->mqtt, m->topic, m->payload, 1, TRUE, CA_MQTT_MSG_NORMAL);
    }
}

static void
mqtt_connected_cb(CaMqtt *mqtt, gpointer user_data)
{
    CaAgent *self = user_data;

    publish_ha_discovery(self, &self->set, FALSE);
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
    ca_commands_set_read_only(self->commands, "telemetry");
    ca_commands_register(self->commands, "modem-reset", modem_reset_cmd_cb, self, NULL);
}

/* Re-apply [modem]/[telemetry]. Home Assistant entities: removed and published again when
 * their topics change (option, prefix, device id), published again when only the state
 * topics moved (topic-prefix). */
static void
reload_modem(CaAgent *self, CaConfig *config, const CaAgentSettings *old,
             CaAgentSettingsChange changed)
{
    ca_modem_apply_config(self->modem, config);
    ca_telemetry_publisher_set_config(self->telemetry, config);
    if (changed & (CA_AGENT_SETTINGS_HOMEASSISTANT | CA_AGENT_SETTINGS_DEVICE_ID)) {
        publish_ha_discovery(self, old, TRUE);
        publish_ha_discovery(self, &self->set, FALSE);
    } else if (changed & CA_AGENT_SETTINGS_TOPIC_PREFIX) {
        publish_ha_discovery(self, &self->set, FALSE);
    }
}

/* Stop following the modem without publishing a false "absent" on the way out. */
static void
unwire_modem(CaAgent *self)
{
    if (self->modem) {
        g_signal_handlers_disconnect_by_data(self->modem, self);
        g_signal_handlers_disconnect_by_data(ca_modem_get_ops(self->modem), self);
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
/* SMS: sms/out requests in, results and sms/in out, cmd/sms-resync */

static void
sms_message_cb(CaMqtt *mqtt, const char *subtopic, GBytes *payload, gpointer user_data)
{
    CaAgent *self = user_data;
    gsize len = 0;
    const char *data = g_bytes_get_data(payload, &len);

    if (g_str_equal(subtopic, "sms/out"))
        ca_sms_handle_request(self->sms, data ? data : "", len);
}

static void
sms_result_cb(CaSms *sms, const char *json, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_mqtt_publish(self->mqtt, "sms/out/result", json, 1, FALSE, CA_MQTT_MSG_NORMAL);
    ca_agent_status_sms_result(self, json);
}

typedef struct {
    CaSms *sms;
    char *id;
} SmsInPublish;

static void
sms_in_published(GObject *source, GAsyncResult *result, gpointer user_data)
{
    SmsInPublish *p = user_data;
    g_autoptr(GError) error = NULL;

    ca_mqtt_publish_finish(CA_MQTT(source), result, &error);
    ca_sms_received_done(p->sms, p->id, error);
    g_object_unref(p->sms);
    g_free(p->id);
    g_free(p);
}

/* A command SMS (remote.c decides) is handled and deleted, never published on sms/in. */
static gboolean
sms_is_command(CaAgent *self, const char *id, const char *json)
{
    g_autoptr(cJSON) msg = cJSON_Parse(json);
    const char *from = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "from"));
    const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "text"));

    if (!from || !text)
        return FALSE;
    return ca_remote_handle_sms(self->remote, id, from, text);
}

/* A received SMS once the clock for its code is known: a command, or on to sms/in. */
static void
sms_handle_received(CaAgent *self, CaSms *sms, const char *id, const char *json)
{
    SmsInPublish *p;

    if (sms_is_command(self, id, json)) {
        ca_sms_received_done(sms, id, NULL);
        return;
    }
    /* QoS 1 with completion: the SMS leaves the modem only once the broker has it. */
    p = g_new0(SmsInPublish, 1);
    p->sms = g_object_ref(sms);
    p->id = g_strdup(id);
    ca_mqtt_publish_async(self->mqtt, "sms/in", json, 1, FALSE, CA_MQTT_MSG_NORMAL, NULL,
                          sms_in_published, p);
}

typedef struct {
    CaSms *sms;
    char *id;
    char *json;
} SmsWaiting;

static void
sms_waiting_free(gpointer data)
{
    SmsWaiting *w = data;

    g_object_unref(w->sms);
    g_free(w->id);
    g_free(w->json);
    g_free(w);
}

static void
sms_clock_ready(CaAgent *self, gpointer data)
{
    SmsWaiting *w = data;

    sms_handle_received(self, w->sms, w->id, w->json);
}

static void
sms_received_cb(CaSms *sms, const char *id, const char *json, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autoptr(cJSON) msg = cJSON_Parse(json);
    const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(msg, "text"));
    SmsWaiting *w;

    ca_agent_status_changed(self); /* one more received message waiting */
    /* A code is checked against the clock: while NTP has not synchronised, read the
     * network's time first (agent-clock.c). Other SMS go on at once. */
    if (!text || !self->remote || !ca_sms_command_has_shape(text)) {
        sms_handle_received(self, sms, id, json);
        return;
    }
    w = g_new0(SmsWaiting, 1);
    w->sms = g_object_ref(sms);
    w->id = g_strdup(id);
    w->json = g_strdup(json);
    ca_agent_clock_wait(self, sms_clock_ready, w, sms_waiting_free);
}

static void
sms_event_cb(CaSms *sms, const char *type, gpointer fields, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_agent_publish_event(self, type, fields);
}

static void
sms_resync_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(CaCommand) cmd = user_data;
    g_autoptr(GError) error = NULL;
    cJSON *summary = ca_sms_resync_finish(CA_SMS(source), result, &error);

    if (summary)
        ca_command_return_ok(cmd, summary);
    else
        ca_command_return_gerror(cmd, error);
}

/* cmd/sms-resync: re-read the modem's message storage; result {"messages":N,"pending":M}. */
static void
sms_resync_cmd(CaCommand *cmd, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_sms_resync_async(self->sms, NULL, sms_resync_ready, ca_command_ref(cmd));
}

/* The modem CaModem selected changed (appeared, vanished, replaced). */
static void
sms_modem_changed_cb(CaModem *modem, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_sms_set_modem(self->sms, ca_modem_peek_object(modem));
}

static void
wire_sms(CaAgent *self)
{
    g_autoptr(GError) error = NULL;

    if (!self->set.sms_enabled) {
        if (self->set.sms_commands_enabled || self->set.sms_alerts_enabled)
            ca_warn("[sms] enabled=false: SMS commands and SMS alerts cannot work without it");
        return;
    }
    self->sms = ca_sms_new(self->config, &error);
    if (!self->sms) {
        ca_err("SMS bridge off: %s", error->message);
        return;
    }
    g_signal_connect(self->sms, "result", G_CALLBACK(sms_result_cb), self);
    g_signal_connect(self->sms, "received", G_CALLBACK(sms_received_cb), self);
    g_signal_connect(self->sms, "event", G_CALLBACK(sms_event_cb), self);
    g_signal_connect(self->mqtt, "message", G_CALLBACK(sms_message_cb), self);
    g_signal_connect(self->modem, "object-changed", G_CALLBACK(sms_modem_changed_cb), self);
    /* The resync disables and enables the modem through the modem's one owner. */
    ca_sms_set_modem_ops(self->sms, ca_modem_get_ops(self->modem));
    ca_mqtt_subscribe(self->mqtt, "sms/out");
    ca_commands_register(self->commands, "sms-resync", sms_resync_cmd, self, NULL);
}

static void
unwire_sms(CaAgent *self)
{
    if (!self->sms)
        return;
    ca_sms_stop(self->sms);
    g_signal_handlers_disconnect_by_data(self->sms, self);
    if (self->mqtt)
        g_signal_handlers_disconnect_by_func(self->mqtt, sms_message_cb, self);
    if (self->modem)
        g_signal_handlers_disconnect_by_func(self->modem, sms_modem_changed_cb, self);
    if (self->commands)
        ca_commands_unregister(self->commands, "sms-resync");
    ca_sms_set_modem_ops(self->sms, NULL);
    g_clear_object(&self->sms);
}

/*****************************************************************************/
/* Remote commands: the command set (remote.c), reload, mqtt-reconnect; SMS commands
 * and alerts are fed from the SMS bridge and the uplink facts where those are wired. */

static void
remote_event_cb(const char *type, const cJSON *fields, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_agent_publish_event(self, type, fields);
}

/* cmd/reload: what SIGHUP does; result {"files":[...],"warnings":[...]}. */
static void
reload_cmd_cb(CaCommand *cmd, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autoptr(GError) error = NULL;
    cJSON *result;

    if (!self->reload_func) {
        ca_command_return_error(cmd, "reload is not available");
        return;
    }
    if (!self->reload_func(&error, self->reload_data)) {
        ca_command_return_gerror(cmd, error);
        return;
    }
    result = cJSON_CreateObject();
    cJSON_AddItemToObject(
        result, "files",
        cJSON_CreateStringArray(ca_config_get_files(self->config),
                                (int) g_strv_length((char **) ca_config_get_files(self->config))));
    cJSON_AddItemToObject(result, "warnings",
                          cJSON_CreateStringArray(
                              ca_config_get_warnings(self->config),
                              (int) g_strv_length((char **) ca_config_get_warnings(self->config))));
    ca_command_return_ok(cmd, result);
}

static gboolean
mqtt_reconnect_idle_cb(gpointer user_data)
{
    CaAgent *self = user_data;

    ca_clear_source(&self->mqtt_reconnect_idle);
    ca_mqtt_reconnect_now(self->mqtt);
    return G_SOURCE_REMOVE;
}

/* cmd/mqtt-reconnect: answer, then reconnect (the answer is resent if it was in flight). */
static void
mqtt_reconnect_cmd_cb(CaCommand *cmd, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_command_return_ok(cmd, NULL);
    if (!self->mqtt_reconnect_idle) {
        self->mqtt_reconnect_idle = g_idle_source_new();
        g_source_set_callback(self->mqtt_reconnect_idle, mqtt_reconnect_idle_cb, self, NULL);
        g_source_attach(self->mqtt_reconnect_idle, NULL);
    }
}

/* Queue an SMS through the bridge's spool, as an sms/out request would. */
static gboolean
remote_send_sms_cb(const char *id, const char *to, const char *text, GError **error,
                   gpointer user_data)
{
    CaAgent *self = user_data;
    g_autoptr(cJSON) req = NULL;
    g_autofree char *payload = NULL;

    if (!self->sms) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_NOT_READY, "the SMS bridge is off");
        return FALSE;
    }
    req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "id", id);
    cJSON_AddStringToObject(req, "to", to);
    cJSON_AddStringToObject(req, "text", text);
    payload = cJSON_PrintUnformatted(req);
    ca_sms_handle_request(self->sms, payload, strlen(payload));
    return TRUE;
}

/* What status and the alert texts report: the uplink in use and the modem's facts. */
static void
remote_status_cb(CaStatusFacts *facts, GPtrArray *strings, gpointer user_data)
{
    CaAgent *self = user_data;
    const CaModemFacts *m = self->modem ? ca_modem_peek_facts(self->modem) : NULL;

    facts->uplink = self->uplink ? ca_uplink_get_active(self->uplink) : NULL;
    if (!m || !m->present)
        return;
    if (m->signal_quality_valid)
        facts->signal_quality = (int) m->signal_quality;
    if (m->access_tech != MM_MODEM_ACCESS_TECHNOLOGY_UNKNOWN) {
        char *tech = mm_modem_access_technology_build_string_from_mask(m->access_tech);
        g_ptr_array_add(strings, tech);
        facts->access_tech = tech;
    }
    facts->operator_name = m->operator_name;
    if (m->registration != MM_MODEM_3GPP_REGISTRATION_STATE_UNKNOWN)
        facts->registration = mm_modem_3gpp_registration_state_get_string(m->registration);
    if (m->bearer_stats_valid) {
        facts->rx_bytes = (gint64) m->rx_bytes;
        facts->tx_bytes = (gint64) m->tx_bytes;
    }
    /* Where ModemManager counts no bytes, the session's from the kernel (as telemetry). */
    if (!m->bearer_stats_valid || (m->rx_bytes == 0 && m->tx_bytes == 0)) {
        guint64 rx, tx;

        if (ca_agent_usage_get_session(self, &rx, &tx)) {
            facts->rx_bytes = (gint64) rx;
            facts->tx_bytes = (gint64) tx;
        }
    }
}

/* cmd/reconnect: re-activate the uplink in use; result {"uplink":NAME}. */
static void
reconnect_cmd_cb(CaCommand *cmd, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autoptr(GError) error = NULL;
    g_autofree char *why = g_strdup_printf("asked by %s", ca_command_get_source(cmd));
    const char *name = ca_uplink_reactivate(self->uplink, why, &error);
    cJSON *result;

    if (!name) {
        ca_command_return_gerror(cmd, error);
        return;
    }
    result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "uplink", name);
    ca_command_return_ok(cmd, result);
}

/* cmd/uplink: {"uplink":NAME} forces an uplink, {"uplink":"auto"} returns to the automatic
 * choice; result {"mode":"forced"|"auto","uplink":FORCED|null,"active":IN_USE|null}. */
static void
uplink_cmd_cb(CaCommand *cmd, gpointer user_data)
{
    CaAgent *self = user_data;
    const char *want =
        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ca_command_get_args(cmd), "uplink"));
    g_autoptr(GError) error = NULL;
    const char *forced, *active;
    cJSON *result;

    /* The validator checked args.uplink. */
    if (!ca_uplink_force(self->uplink, g_strcmp0(want, "auto") == 0 ? NULL : want, &error)) {
        ca_command_return_gerror(cmd, error);
        return;
    }
    forced = ca_uplink_get_forced(self->uplink);
    active = ca_uplink_get_active(self->uplink);
    result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "mode", forced ? "forced" : "auto");
    if (forced)
        cJSON_AddStringToObject(result, "uplink", forced);
    else
        cJSON_AddNullToObject(result, "uplink");
    if (active)
        cJSON_AddStringToObject(result, "active", active);
    else
        cJSON_AddNullToObject(result, "active");
    ca_command_return_ok(cmd, result);
}

static gint64
remote_get_time_cb(const char **out_clock, gpointer user_data)
{
    return ca_agent_clock_now(user_data, out_clock);
}

static gboolean
remote_reboot_budget_cb(const char *source, GError **error, gpointer user_data)
{
    CaAgent *self = user_data;

    /* Without the uplink module there is no watchdog and no budget to share. */
    return !self->uplink || ca_uplink_take_reboot_budget(self->uplink, source, error);
}

static void
wire_remote(CaAgent *self)
{
    CaRemoteHooks hooks = {
        .publish_event = remote_event_cb,
        .send_sms = remote_send_sms_cb,
        .get_status = remote_status_cb,
        .take_reboot_budget = remote_reboot_budget_cb,
        .get_time = remote_get_time_cb,
        .user_data = self,
    };

    self->remote = ca_remote_new(self->config, self->commands, &hooks);
    ca_commands_register(self->commands, "reload", reload_cmd_cb, self, NULL);
    ca_commands_register(self->commands, "mqtt-reconnect", mqtt_reconnect_cmd_cb, self, NULL);
    ca_commands_register(self->commands, "reconnect", reconnect_cmd_cb, self, NULL);
    ca_commands_register(self->commands, "uplink", uplink_cmd_cb, self, NULL);
}

static void
unwire_remote(CaAgent *self)
{
    ca_clear_source(&self->mqtt_reconnect_idle);
    g_clear_pointer(&self->remote, ca_remote_free);
}

void
ca_agent_set_config_path(CaAgent *self, const char *path)
{
    g_free(self->config_path);
    self->config_path = g_strdup(path);
}

void
ca_agent_set_reload_func(CaAgent *self, CaAgentReloadFunc func, gpointer user_data)
{
    self->reload_func = func;
    self->reload_data = user_data;
}

/*****************************************************************************/

CaAgent *
ca_agent_new(CaConfig *config, CaNotify *notify)
{
    CaAgent *self = g_new0(CaAgent, 1);

    self->config = ca_config_ref(config);
    ca_agent_settings_load(&self->set, config);
    self->notify = notify;
    self->cancellable = g_cancellable_new();
    self->started_at = g_get_monotonic_time();
    wire_mqtt(self);
    ca_agent_wire_status(self);
    ca_agent_wire_diagnose(self);
    wire_modem(self);
    ca_agent_wire_clock(self);
    wire_sms(self);
    ca_agent_wire_uplink(self);
    wire_remote(self);
    ca_agent_wire_usage(self);
    ca_agent_wire_economy(self);
    ca_agent_wire_rconf(self);
    return self;
}

void
ca_agent_free(CaAgent *self)
{
    if (!self)
        return;
    g_cancellable_cancel(self->cancellable);
    ca_agent_unwire_rconf(self);
    ca_agent_unwire_economy(self);
    ca_agent_unwire_usage(self);
    unwire_remote(self);
    ca_agent_unwire_uplink(self);
    unwire_sms(self);
    ca_agent_unwire_clock(self);
    unwire_modem(self);
    ca_agent_unwire_diagnose(self);
    ca_agent_unwire_status(self);
    unwire_mqtt(self);
    g_clear_object(&self->cancellable);
    ca_agent_settings_clear(&self->set);
    ca_config_unref(self->config);
    g_free(self->config_path);
    g_free(self);
}

void
ca_agent_start(CaAgent *self)
{
    ca_msg("cellagent %s starting as device \"%s\"", CA_VERSION, self->set.device_id);
    ca_agent_update_status(self);
    ca_mqtt_start(self->mqtt);
    ca_modem_start(self->modem);
    ca_uplink_start(self->uplink);
    /* The alerts' first fact (no uplink healthy yet): an outage counts from the start. */
    {
        g_autoptr(cJSON) link = ca_uplink_get_link_json(self->uplink);
        ca_remote_set_data_ok(self->remote, ca_alerts_link_is_healthy(link));
    }
    if (self->sms)
        ca_sms_start(self->sms);
    ca_agent_start_status(self);
}

void
ca_agent_reload(CaAgent *self, CaConfig *config)
{
    CaConfig *old = self->config;
    CaAgentSettings old_set = self->set;
    CaAgentSettingsChange changed;

    self->config = ca_config_ref(config);
    ca_agent_settings_load(&self->set, config);
    changed = ca_agent_settings_diff(&old_set, &self->set);
    /* Every reload sets the config's level: it ends a cmd/log-level override, and
     * --log-level keeps winning over it (log-level.h). */
    ca_log_set_level_from(CA_LOG_LEVEL_FROM_CONFIG, self->set.log_level);
    ca_mqtt_set_config(self->mqtt, config);
    reload_modem(self, config, &old_set, changed);
    ca_agent_reload_clock(self);
    if (self->sms)
        ca_sms_set_config(self->sms, config);
    ca_uplink_set_config(self->uplink, config);
    ca_system_settings_free(self->system);
    self->system = ca_system_settings_new(config);
    ca_remote_set_config(self->remote, config);
    ca_agent_reload_usage(self);
    ca_agent_reload_economy(self);
    ca_agent_reload_status(self, old_set.runtime_dir);
    ca_agent_reload_rconf(self);
    ca_msg("configuration reloaded");
    ca_agent_settings_clear(&old_set);
    ca_config_unref(old);
}

void
ca_agent_shutdown_async(CaAgent *self, GAsyncReadyCallback callback, gpointer user_data)
{
    g_autoptr(GTask) task = g_task_new(NULL, NULL, callback, user_data);

    g_task_set_source_tag(task, ca_agent_shutdown_async);
    g_cancellable_cancel(self->cancellable);
    /* No trial ends during the stop (its marker stays: the next start rolls it back). */
    ca_agent_unwire_rconf(self);
    ca_agent_stop_status(self);
    if (self->sms)
        ca_sms_stop(self->sms);
    g_signal_handlers_disconnect_by_data(self->uplink, self);
    /* The last bytes are booked and saved while the modem's facts are still known. */
    ca_agent_usage_stop(self);
    unwire_modem(self);
    self->shutdown_task = g_object_ref(task);
    self->stopping = 2;
    ca_uplink_shutdown_async(self->uplink, ca_agent_uplink_stop_ready, self);
    stop_mqtt(self);
}

gboolean
ca_agent_shutdown_finish(CaAgent *self, GAsyncResult *result, GError **error)
{
    return g_task_propagate_boolean(G_TASK(result), error);
}
