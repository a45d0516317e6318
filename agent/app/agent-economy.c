/* agent-economy: economy mode for metered links wired into the agent (docs/economy.md).
 * Decides (economy.c) from [economy] mode and NetworkManager's Metered property of the
 * uplink in use, again whenever the uplink module reports a change (a switch, a new link
 * state: the Metered property is part of it), and hands each module its economy figures:
 * telemetry's interval and deadbands, MQTT's keepalive, the uplink in use's health rounds
 * (passive health: MQTT traffic from the broker counts as a passed round) and link
 * refresh, usage's publish interval. Publishes an "economy" event on every change.
 * Owns: the decision. Does not own: the timers it changes (their modules). */
#define CA_LOG_MODULE "agent"
#include "agent-private.h"

#include "economy-settings.h"

struct _CaAgentEconomy {
    CaEconomySettings set;
    gboolean decided; /* a decision was applied */
    gboolean active;
    const char *reason; /* static text */
    char *uplink;       /* the uplink in use at the decision, NULL none */
    CaMetered metered;
    gboolean have_metered;
};

static void
apply(CaAgent *self)
{
    CaAgentEconomy *e = self->economy;
    const CaEconomyPolicy *p = &e->set.policy;
    gint64 before = self->last_switch;

    ca_telemetry_publisher_set_economy(self->telemetry, e->active ? &p->telemetry : NULL);
    ca_uplink_set_economy(self->uplink, e->active ? p->probe_interval_ms : 0,
                          e->active ? p->report_interval_ms : 0);
    ca_agent_usage_set_economy(self, e->active ? p->usage_interval_s : 0);
    /* A reconnect for the keepalive is ours: no evidence against the uplink ("disconnected"
     * comes inside the call). */
    self->last_switch = g_get_monotonic_time();
    if (!ca_mqtt_set_economy(self->mqtt, e->active ? p->keepalive_s : 0,
                             e->active && p->topic_aliases))
        self->last_switch = before;
}

cJSON *
ca_agent_economy_json(CaAgent *self)
{
    CaAgentEconomy *e = self->economy;
    cJSON *o = cJSON_CreateObject();

    cJSON_AddBoolToObject(o, "active", e->active);
    cJSON_AddStringToObject(o, "mode", ca_economy_mode_to_string(e->set.policy.mode));
    if (e->reason)
        cJSON_AddStringToObject(o, "reason", e->reason);
    else
        cJSON_AddNullToObject(o, "reason");
    if (e->uplink)
        cJSON_AddStringToObject(o, "uplink", e->uplink);
    else
        cJSON_AddNullToObject(o, "uplink");
    if (e->have_metered)
        cJSON_AddStringToObject(o, "metered", ca_metered_to_string(e->metered));
    else
        cJSON_AddNullToObject(o, "metered");
    cJSON_AddNumberToObject(o, "keepalive", ca_mqtt_get_keepalive(self->mqtt));
    cJSON_AddNumberToObject(o, "passive_rounds",
                            (double) ca_uplink_get_passive_rounds(self->uplink));
    return o;
}

static void
decide(CaAgent *self, gboolean force)
{
    CaAgentEconomy *e = self->economy;
    const char *active = ca_uplink_get_active(self->uplink);
    int metered = CA_METERED_UNKNOWN;
    gboolean have = ca_uplink_get_active_metered(self->uplink, &metered);
    const char *reason = NULL;
    gboolean on = ca_economy_decide(e->set.policy.mode, have, (CaMetered) metered, &reason);
    gboolean first = !e->decided;
    gboolean changed = first || on != e->active;

    e->reason = reason;
    e->have_metered = have;
    e->metered = (CaMetered) metered;
    g_free(e->uplink);
    e->uplink = g_strdup(active);
    if (!changed && !force)
        return;
    e->decided = TRUE;
    e->active = on;
    if (changed) {
        g_autoptr(cJSON) fields = NULL;

        ca_info("economy mode %s: %s%s%s%s%s%s", on ? "on" : "off", reason,
                active ? " (uplink " : "", active ? active : "", have ? ", metered " : "",
                have ? ca_metered_to_string((CaMetered) metered) : "", active ? ")" : "");
        apply(self);
        if (first && !on)
            return; /* the start, before any uplink is known: nothing to tell */
        fields = ca_agent_economy_json(self);
        cJSON_DeleteItemFromObject(fields, "keepalive");
        cJSON_DeleteItemFromObject(fields, "passive_rounds");
        ca_agent_publish_event(self, "economy", fields);
        ca_agent_status_changed(self);
    } else {
        apply(self);
    }
}

void
ca_agent_economy_update(CaAgent *self)
{
    if (self->economy)
        decide(self, FALSE);
}

static void
link_changed_cb(CaUplink *uplink, gpointer user_data)
{
    ca_agent_economy_update(user_data);
}

static void
switched_cb(CaUplink *uplink, const char *from, const char *to, const char *kind,
            gpointer user_data)
{
    ca_agent_economy_update(user_data);
}

static void
mqtt_received_cb(CaMqtt *mqtt, gpointer user_data)
{
    CaAgent *self = user_data;

    if (self->economy && self->economy->active)
        ca_uplink_note_alive(self->uplink);
}

void
ca_agent_wire_economy(CaAgent *self)
{
    self->economy = g_new0(CaAgentEconomy, 1);
    ca_economy_settings_load(&self->economy->set, self->config);
    g_signal_connect(self->uplink, "link-changed", G_CALLBACK(link_changed_cb), self);
    g_signal_connect(self->uplink, "switched", G_CALLBACK(switched_cb), self);
    g_signal_connect(self->mqtt, "received", G_CALLBACK(mqtt_received_cb), self);
    decide(self, TRUE);
}

void
ca_agent_unwire_economy(CaAgent *self)
{
    if (!self->economy)
        return;
    g_signal_handlers_disconnect_by_func(self->mqtt, mqtt_received_cb, self);
    if (self->uplink) {
        g_signal_handlers_disconnect_by_func(self->uplink, link_changed_cb, self);
        g_signal_handlers_disconnect_by_func(self->uplink, switched_cb, self);
    }
    ca_economy_settings_clear(&self->economy->set);
    g_free(self->economy->uplink);
    g_clear_pointer(&self->economy, g_free);
}

void
ca_agent_reload_economy(CaAgent *self)
{
    CaEconomySettings set;
    gboolean same;

    if (!self->economy)
        return;
    ca_economy_settings_load(&set, self->config);
    same = ca_economy_settings_equal(&set, &self->economy->set);
    self->economy->set = set;
    decide(self, !same);
}
