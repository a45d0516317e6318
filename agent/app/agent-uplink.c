/* agent-uplink: the composition root's wiring of the uplinks (see agent.c). */
#define CA_LOG_MODULE "agent"
#include "agent-private.h"

#include <string.h>

/* Uplinks: link state and events to MQTT, MQTT reconnects after a switch, MQTT attempts
 * only while some uplink is usable, modem facts in, the watchdog's modem reset (to the
 * modem's one owner) and system steps (to agent/system) out, planned modem outages in,
 * whether cellular carries the traffic out to the SMS bridge. */

/* The SMS bridge's resyncs cost the data link while cellular carries the traffic. */
static void
uplink_tell_sms_cellular(CaAgent *self, const cJSON *link)
{
    const char *active = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(link, "active"));
    const cJSON *uplinks = cJSON_GetObjectItemCaseSensitive(link, "uplinks");
    const cJSON *u = active ? cJSON_GetObjectItemCaseSensitive(uplinks, active) : NULL;
    const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(u, "type"));

    if (self->sms)
        ca_sms_set_cellular_in_use(self->sms, g_strcmp0(type, "cellular") == 0);
}

static void
uplink_link_changed_cb(CaUplink *uplink, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autoptr(cJSON) link = ca_uplink_get_link_json(uplink);

    ca_mqtt_publish_json(self->mqtt, "link", link, 1, TRUE, CA_MQTT_MSG_NORMAL);
    ca_agent_status_changed(self);
    if (self->remote)
        ca_remote_set_data_ok(self->remote, ca_alerts_link_is_healthy(link));
    uplink_tell_sms_cellular(self, link);
}

static void
uplink_event_cb(CaUplink *uplink, const char *type, gpointer fields, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_agent_publish_event(self, type, fields);
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
    ca_agent_rconf_uplink_switched(self);
}

static void
uplink_status_cb(CaUplink *uplink, const char *status, gpointer user_data)
{
    ca_agent_update_status(user_data);
}

static void
uplink_mqtt_disconnected_cb(CaMqtt *mqtt, gpointer user_data)
{
    CaAgent *self = user_data;

    /* Passive evidence against the uplink in use, unless we caused it. */
    if (g_get_monotonic_time() - self->last_switch > 5 * G_USEC_PER_SEC)
        ca_uplink_note_trouble(self->uplink, "MQTT connection lost");
}

static void
uplink_mqtt_connected_cb(CaMqtt *mqtt, gpointer user_data)
{
    CaAgent *self = user_data;

    uplink_link_changed_cb(self->uplink, self);
}

/* The modem module's facts, as the uplink policy needs them. */
static void
uplink_modem_facts_cb(CaModem *modem, gpointer user_data)
{
    CaAgent *self = user_data;
    const CaModemFacts *m = ca_modem_peek_facts(modem);
    CaUplinkModemFacts f = {0};

    if (!ca_modem_is_manager_present(modem)) {
        ca_uplink_set_modem_facts(self->uplink, NULL);
        return;
    }
    f.present = m->present;
    f.usable = m->present && m->state != MM_MODEM_STATE_FAILED && m->state != MM_MODEM_STATE_LOCKED;
    f.registered = m->present && (m->state >= MM_MODEM_STATE_REGISTERED ||
                                  m->registration == MM_MODEM_3GPP_REGISTRATION_STATE_HOME ||
                                  m->registration == MM_MODEM_3GPP_REGISTRATION_STATE_ROAMING);
    f.bearer_connected = m->present && m->bearer_connected;
    f.signal_quality = m->present && m->signal_quality_valid ? (int) m->signal_quality : -1;
    f.state = m->present ? mm_modem_state_get_string(m->state) : "absent";
    f.registration =
        m->present ? mm_modem_3gpp_registration_state_get_string(m->registration) : NULL;
    ca_uplink_set_modem_facts(self->uplink, &f);
}

/* MQTT attempts only while a path to the broker may exist (ca_uplink_is_usable: TRUE
 * unless that is known not to be so). */
static void
uplink_usable_cb(CaUplink *uplink, gboolean usable, gpointer user_data)
{
    CaAgent *self = user_data;

    ca_mqtt_set_link_available(self->mqtt, usable);
}

static void
uplink_modem_reset_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autoptr(GError) error = NULL;

    if (!ca_modem_ops_run_finish(CA_MODEM_OPS(source), result, &error) &&
        g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    self->watchdog_resets--;
    ca_uplink_modem_reset_done(self->uplink, error);
}

/* The watchdog's modem-reset step goes through the modem's one owner. */
static gboolean
uplink_modem_reset_cb(CaUplink *uplink, const char *reason, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autofree char *why = g_strdup_printf("watchdog: %s", reason ? reason : "uplink down");

    if (!self->modem || !ca_modem_peek_facts(self->modem)->present)
        return FALSE; /* the uplink reports that there is no modem */
    self->watchdog_resets++;
    ca_modem_ops_run_async(ca_modem_get_ops(self->modem), CA_MODEM_OP_RESET, why, self->cancellable,
                           uplink_modem_reset_ready, self);
    return TRUE;
}

/* A planned outage of the modem's data link (a reset, a resync's Disable + Enable): the
 * uplink policy must neither fail over nor escalate its watchdog for it. active FALSE ends
 * it early (the operation failed). */
static void
uplink_set_planned_outage(CaAgent *self, gboolean active, guint max_seconds)
{
    ca_debug("planned modem outage %s (at most %u s)", active ? "begins" : "ends", max_seconds);
    if (self->uplink)
        ca_uplink_set_planned_outage(self->uplink, active, max_seconds);
}

static void
uplink_outage_begin_cb(CaModemOps *ops, const char *op, guint max_seconds, gpointer user_data)
{
    CaAgent *self = user_data;

    /* The watchdog's own reset step is no planned outage: the cellular uplink is down
     * already, and the ladder's modem-reset-cooldown decides whether it helped. Pausing
     * the ladder for the outage's limit would hold back its next step for minutes. */
    if (self->watchdog_resets > 0 && g_strcmp0(op, "reset") == 0) {
        ca_debug("modem reset by the watchdog: its cooldown, not a planned outage, applies");
        return;
    }
    uplink_set_planned_outage(user_data, TRUE, max_seconds);
}

static void
uplink_outage_end_cb(CaModemOps *ops, const char *op, gboolean ok, gpointer user_data)
{
    /* Succeeded: the link comes back within the announced time, which the uplink module
     * ends early once cellular is up again. Failed: nothing more is planned. */
    if (!ok)
        uplink_set_planned_outage(user_data, FALSE, 0);
}

typedef struct {
    CaAgent *agent;
    CaWdStep step;
} UplinkStepCtx;

static void
uplink_system_step_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autofree UplinkStepCtx *c = user_data;
    g_autoptr(GError) error = NULL;

    if (!ca_system_action_run_finish(result, &error) &&
        g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    ca_uplink_step_done(c->agent->uplink, c->step, error);
}

/* The watchdog's power-cycle and reboot steps go to agent/system. */
static gboolean
uplink_system_step_cb(CaUplink *uplink, int step, const char *reason, gpointer user_data)
{
    CaAgent *self = user_data;
    CaSystemAction action = CA_SYSTEM_ACTION_REBOOT; /* set below; gcc cannot see it */
    UplinkStepCtx *c;

    switch ((CaWdStep) step) {
    case CA_WD_STEP_POWER_CYCLE:
        action = CA_SYSTEM_ACTION_POWER_CYCLE;
        break;
    case CA_WD_STEP_REBOOT:
        action = CA_SYSTEM_ACTION_REBOOT;
        break;
    case CA_WD_STEP_NONE:
    case CA_WD_STEP_REACTIVATE:
    case CA_WD_STEP_MODEM_RESET:
        return FALSE;
    }
    c = g_new0(UplinkStepCtx, 1);
    c->agent = self;
    c->step = (CaWdStep) step;
    ca_system_action_run_async(action, self->system, self->cancellable, uplink_system_step_ready,
                               c);
    return TRUE;
}

void
ca_agent_wire_uplink(CaAgent *self)
{
    self->system = ca_system_settings_new(self->config);
    self->uplink = ca_uplink_new(self->config);
    g_signal_connect(self->uplink, "link-changed", G_CALLBACK(uplink_link_changed_cb), self);
    g_signal_connect(self->uplink, "event", G_CALLBACK(uplink_event_cb), self);
    g_signal_connect(self->uplink, "switched", G_CALLBACK(uplink_switched_cb), self);
    g_signal_connect(self->uplink, "status-changed", G_CALLBACK(uplink_status_cb), self);
    g_signal_connect(self->uplink, "usable-changed", G_CALLBACK(uplink_usable_cb), self);
    g_signal_connect(self->uplink, "modem-reset", G_CALLBACK(uplink_modem_reset_cb), self);
    g_signal_connect(self->uplink, "system-step", G_CALLBACK(uplink_system_step_cb), self);
    g_signal_connect(self->mqtt, "disconnected", G_CALLBACK(uplink_mqtt_disconnected_cb), self);
    g_signal_connect(self->mqtt, "connected", G_CALLBACK(uplink_mqtt_connected_cb), self);
    g_signal_connect(self->modem, "facts-changed", G_CALLBACK(uplink_modem_facts_cb), self);
    g_signal_connect(ca_modem_get_ops(self->modem), "outage-begin",
                     G_CALLBACK(uplink_outage_begin_cb), self);
    g_signal_connect(ca_modem_get_ops(self->modem), "outage-end", G_CALLBACK(uplink_outage_end_cb),
                     self);
}

void
ca_agent_unwire_uplink(CaAgent *self)
{
    if (self->uplink)
        g_signal_handlers_disconnect_by_data(self->uplink, self);
    if (self->modem)
        g_signal_handlers_disconnect_by_data(ca_modem_get_ops(self->modem), self);
    g_clear_object(&self->uplink);
    g_clear_pointer(&self->system, ca_system_settings_free);
}

void
ca_agent_uplink_stop_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    ca_uplink_shutdown_finish(CA_UPLINK(source), result, NULL);
    ca_agent_shutdown_step_done(user_data);
}

/*****************************************************************************/
/* NetworkManager checkpoints for remote configuration (agent-rconf.c) */

static void
checkpoint_created(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autoptr(GError) error = NULL;
    g_autofree char *path = ca_uplink_checkpoint_create_finish(CA_UPLINK(source), result, &error);

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return; /* stopping: self may be gone */
    if (!path && !error)
        ca_msg("NetworkManager is not running: no checkpoint, the agent's own rollback only");
    if (path || !error)
        ca_agent_rconf_checkpoint_created(self, path ? path : "", NULL);
    else
        ca_agent_rconf_checkpoint_created(self, NULL, error);
}

void
ca_agent_rconf_checkpoint_create(CaAgent *self, guint rollback_timeout_s)
{
    ca_uplink_checkpoint_create_async(self->uplink, rollback_timeout_s, checkpoint_created, self);
}

static void
checkpoint_rolled_back(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaAgent *self = user_data;
    g_autoptr(GError) error = NULL;

    if (!ca_uplink_checkpoint_rollback_finish(CA_UPLINK(source), result, &error) &&
        g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return; /* stopping: self may be gone */
    ca_agent_rconf_checkpoint_rolled_back(self, error);
}

void
ca_agent_rconf_checkpoint_rollback(CaAgent *self, const char *path)
{
    ca_uplink_checkpoint_rollback_async(self->uplink, path, checkpoint_rolled_back, self);
}

void
ca_agent_rconf_checkpoint_destroy(CaAgent *self, const char *path)
{
    ca_uplink_checkpoint_destroy(self->uplink, path);
}
