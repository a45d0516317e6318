/* agent-usage: usage accounting wired into the agent. Reads the kernel's counters of the
 * cellular bearer's interface (/sys/class/net/<iface>/statistics, the interface named by
 * the modem facts) every sample-interval while a bearer is connected, books them per SIM
 * (the ICCID of the modem facts) and billing cycle in the usage store (usage-store.c
 * decides), saves the store durably every save-interval and at once on what matters
 * (events, SIM change, end of session, stop), publishes <base>/usage (retained, QoS 1) on
 * change at most every publish-interval and the events at once, sends an SMS to the
 * [sms-alerts] numbers at each threshold and at the limit (remote.c), answers cmd/usage,
 * cmd/usage-adjust and cmd/usage-override, and gives telemetry the session's byte counts
 * when ModemManager reports none (AT modems).
 * Reading a few sysfs files is synchronous: they are small and answered from kernel memory.
 * Owns: its timers and the store's file. Does not own: policy (agent/core). */
#define CA_LOG_MODULE "usage"
#include "agent-private.h"

#include "command-set.h"
#include "timestamp.h"
#include "usage-store.h"

#include <errno.h>

#define SYSFS_NET "/sys/class/net"
/* The cycle boundary and an override's end are checked at least this often (s), so a
 * wall clock set forward or back is noticed without a reading. */
#define CYCLE_CHECK_MAX_S 3600
/* Longest override (s). */
#define OVERRIDE_MAX_S (366 * 86400)

struct _CaAgentUsage {
    CaUsageSettings set;
    GTimeZone *tz;
    CaUsageStore *store;
    char *boot_id;
    char *iccid;            /* the SIM in use (modem facts); NULL: not known (yet) */
    char *iface;            /* the connected bearer's interface; NULL: no session */
    GSource *sample_timer;  /* owned */
    GSource *save_timer;    /* owned */
    GSource *publish_timer; /* owned */
    GSource *cycle_timer;   /* owned */
    gint64 last_publish;    /* monotonic us, 0: never */
    guint economy_ms;       /* economy mode's publish interval, 0: not economising */
    char *published;        /* the last payload published, without "ts" */
    /* The current (or last) session's bytes, for telemetry */
    gboolean session_valid;
    guint64 session_rx, session_tx;
    gint64 session_started; /* monotonic us */
    gint64 session_ended;   /* monotonic us, 0 while connected */
};

static gint64
now_s(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

static const CaUsagePlan *
plan_of(CaAgentUsage *u)
{
    return ca_usage_settings_find_plan(&u->set, u->iccid);
}

/*****************************************************************************/
/* Reading the kernel's counters */

static gboolean
iface_name_ok(const char *iface)
{
    return iface && *iface && strlen(iface) < 16 && !strchr(iface, '/') &&
           !g_str_equal(iface, ".") && !g_str_equal(iface, "..");
}

static gboolean
read_u64(const char *dir, const char *name, guint64 *out)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    g_autofree char *text = NULL;
    char *end = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return FALSE;
    g_strstrip(text);
    *out = g_ascii_strtoull(text, &end, 10);
    return *text && end && *end == '\0';
}

/* One reading of iface's counters; FALSE when the interface is gone. */
static gboolean
read_sample(CaAgentUsage *u, const char *iface, CaIfSample *out)
{
    g_autofree char *dir = NULL;
    g_autofree char *stats = NULL;
    guint64 ifindex = 0;

    memset(out, 0, sizeof *out);
    if (!iface_name_ok(iface))
        return FALSE;
    dir = g_build_filename(SYSFS_NET, iface, NULL);
    stats = g_build_filename(dir, "statistics", NULL);
    if (!read_u64(dir, "ifindex", &ifindex) || !read_u64(stats, "rx_bytes", &out->c.rx_bytes) ||
        !read_u64(stats, "tx_bytes", &out->c.tx_bytes) ||
        !read_u64(stats, "rx_packets", &out->c.rx_packets) ||
        !read_u64(stats, "tx_packets", &out->c.tx_packets))
        return FALSE;
    out->iface = g_strdup(iface);
    out->ifindex = (int) MIN(ifindex, G_MAXINT);
    out->boot_id = g_strdup(u->boot_id);
    return TRUE;
}

/*****************************************************************************/
/* Saving and publishing */

static void schedule_cycle_check(CaAgent *self);

static void
save_now(CaAgent *self)
{
    CaAgentUsage *u = self->usage;
    g_autoptr(GError) error = NULL;

    ca_clear_source(&u->save_timer);
    if (!ca_usage_store_is_dirty(u->store))
        return;
    if (!ca_usage_store_save(u->store, u->set.state_dir, &error)) {
        ca_warn("usage counts not saved: %s; will retry in %u s", error->message,
                u->set.save_interval_ms / 1000);
        return;
    }
    ca_usage_store_mark_saved(u->store);
}

static gboolean
save_timer_cb(gpointer user_data)
{
    CaAgent *self = user_data;

    ca_clear_source(&self->usage->save_timer);
    save_now(self);
    return G_SOURCE_REMOVE;
}

/* Save within save-interval (a power cut loses at most that much). */
static void
schedule_save(CaAgent *self)
{
    CaAgentUsage *u = self->usage;

    if (u->save_timer || !ca_usage_store_is_dirty(u->store))
        return;
    u->save_timer = g_timeout_source_new(u->set.save_interval_ms);
    g_source_set_callback(u->save_timer, save_timer_cb, self, NULL);
    g_source_attach(u->save_timer, NULL);
}

static cJSON *
payload_now(CaAgent *self)
{
    CaAgentUsage *u = self->usage;

    return ca_usage_store_payload(u->store, u->iccid, plan_of(u), now_s());
}

cJSON *
ca_agent_usage_json(CaAgent *self)
{
    return self->usage && self->usage->iccid ? payload_now(self) : NULL;
}

/* Publish <base>/usage when it changed (force: even when not). */
static void
publish_now(CaAgent *self, gboolean force)
{
    CaAgentUsage *u = self->usage;
    g_autoptr(cJSON) payload = payload_now(self);
    g_autoptr(cJSON) bare = cJSON_Duplicate(payload, TRUE);
    g_autofree char *text = NULL;

    ca_clear_source(&u->publish_timer);
    /* Nothing to say before the SIM is known. */
    if (!u->iccid)
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(bare, "ts");
    text = cJSON_PrintUnformatted(bare);
    if (!force && g_strcmp0(text, u->published) == 0)
        return;
    g_free(u->published);
    u->published = g_steal_pointer(&text);
    u->last_publish = g_get_monotonic_time();
    ca_mqtt_publish_json(self->mqtt, "usage", payload, 1, TRUE, CA_MQTT_MSG_NORMAL);
}

static gboolean
publish_timer_cb(gpointer user_data)
{
    CaAgent *self = user_data;

    ca_clear_source(&self->usage->publish_timer);
    publish_now(self, FALSE);
    return G_SOURCE_REMOVE;
}

/* Traffic alone: publish at most every publish-interval. */
static void
publish_soon(CaAgent *self)
{
    CaAgentUsage *u = self->usage;
    gint64 since = g_get_monotonic_time() - u->last_publish;
    gint64 wait = (gint64) MAX(u->set.publish_interval_ms, u->economy_ms) * 1000 - since;

    if (u->last_publish == 0 || wait <= 0) {
        publish_now(self, FALSE);
        return;
    }
    if (u->publish_timer)
        return;
    u->publish_timer = g_timeout_source_new((guint) (wait / 1000) + 1);
    g_source_set_callback(u->publish_timer, publish_timer_cb, self, NULL);
    g_source_attach(u->publish_timer, NULL);
}

/*****************************************************************************/
/* Events */

/* The SMS text of a threshold or limit event (GSM 7-bit safe, one SMS). */
static char *
alert_text(CaAgent *self, const char *type, const cJSON *e)
{
    const CaUsagePlan *plan = plan_of(self->usage);
    double billable = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "billable_estimate_bytes"));
    double percent = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "percent"));
    const char *end = cJSON_GetStringValue(cJSON_GetObjectItem(e, "cycle_end"));
    g_autofree char *used = ca_cmdset_format_bytes((gint64) billable);
    g_autofree char *limit = ca_cmdset_format_bytes(plan ? (gint64) plan->limit_bytes : 0);
    g_autofree char *day = g_strndup(end ? end : "?", 10);

    if (g_str_equal(type, "usage-limit"))
        return g_strdup_printf("%s: data plan %s limit reached: %s of %s (%.0f%%); cycle ends "
                               "%s",
                               self->set.device_id, plan ? plan->name : "-", used, limit, percent,
                               day);
    return g_strdup_printf("%s: data plan %s at %.0f%%: %s of %s; cycle ends %s",
                           self->set.device_id, plan ? plan->name : "-", percent, used, limit, day);
}

/* Publish the store's events (SMS alerts for thresholds and the limit); TRUE if any. */
static gboolean
handle_events(CaAgent *self, GPtrArray *events)
{
    for (guint i = 0; events && i < events->len; i++) {
        cJSON *e = g_ptr_array_index(events, i);
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(e, "type"));
        const char *sim = cJSON_GetStringValue(cJSON_GetObjectItem(e, "sim"));

        if (g_str_equal(type, "usage-threshold") || g_str_equal(type, "usage-limit")) {
            g_autofree char *text = alert_text(self, type, e);
            const char *start = cJSON_GetStringValue(cJSON_GetObjectItem(e, "cycle_start"));
            g_autofree char *key = NULL;
            guint sent = 0;

            /* One id per SIM, cycle and threshold: never sent twice, not after a restart. */
            if (g_str_equal(type, "usage-limit"))
                key =
                    g_strdup_printf("usage-limit-%s-%s", start ? start : "0", sim ? sim + 3 : "0");
            else
                key = g_strdup_printf("usage-%g-%s-%s",
                                      cJSON_GetNumberValue(cJSON_GetObjectItem(e, "threshold")),
                                      start ? start : "0", sim ? sim + 3 : "0");
            if (self->remote)
                sent = ca_remote_send_alert_sms(self->remote, key, text);
            cJSON_AddNumberToObject(e, "sms", sent);
            ca_msg("%s", text);
        } else if (g_str_equal(type, "usage-cycle-reset")) {
            ca_msg("new billing cycle for SIM %s: %s to %s", sim ? sim : "?",
                   cJSON_GetStringValue(cJSON_GetObjectItem(e, "cycle_start")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(e, "cycle_end")));
        } else if (g_str_equal(type, "usage-counter-reset")) {
            ca_msg("interface counters of %s started over (%s): counted from 0",
                   cJSON_GetStringValue(cJSON_GetObjectItem(e, "interface")),
                   cJSON_GetStringValue(cJSON_GetObjectItem(e, "reason")));
        }
        ca_mqtt_publish_event(self->mqtt, type, e);
    }
    return events && events->len > 0;
}

/* The data cap the SIM in use is under now, as the uplink policy takes it. */
static CaFoCap
cap_now(CaAgent *self)
{
    CaAgentUsage *u = self->usage;
    CaUsageAtLimit action;

    if (!u || !ca_usage_store_action(u->store, u->iccid, plan_of(u), now_s(), &action))
        return CA_FO_CAP_NONE;
    switch (action) {
    case CA_USAGE_AT_LIMIT_ALERT:
        return CA_FO_CAP_NONE;
    case CA_USAGE_AT_LIMIT_ESSENTIAL_ONLY:
        return CA_FO_CAP_ESSENTIAL_ONLY;
    case CA_USAGE_AT_LIMIT_DISCONNECT:
        return CA_FO_CAP_DISCONNECT;
    case CA_USAGE_AT_LIMIT_NEXT_UPLINK:
        return CA_FO_CAP_NEXT_UPLINK;
    }
    g_assert_not_reached();
}

/* Tell the uplinks the cap in force (they ignore a repeat). */
void
ca_agent_usage_apply_cap(CaAgent *self)
{
    if (self->uplink)
        ca_uplink_set_cap(self->uplink, cap_now(self));
}

/* After the store changed: events out, saved (at once when something happened), published,
 * the cap given to the uplinks. */
static void
after_change(CaAgent *self, GPtrArray *events, gboolean urgent)
{
    ca_agent_usage_apply_cap(self);
    if (handle_events(self, events))
        urgent = TRUE;
    if (urgent) {
        save_now(self);
        publish_now(self, FALSE);
    } else {
        schedule_save(self);
        publish_soon(self);
    }
    schedule_cycle_check(self);
}

/*****************************************************************************/
/* Sampling */

/* Feed telemetry the modem facts, with the session's bytes where ModemManager has none. */
void
ca_agent_usage_feed_telemetry(CaAgent *self)
{
    CaAgentUsage *u = self->usage;
    const CaModemFacts *facts;
    CaModemFacts copy;

    if (!self->modem || !self->telemetry || !ca_modem_is_settled(self->modem))
        return;
    facts = ca_modem_peek_facts(self->modem);
    if (!u || !u->session_valid || !facts->present ||
        (facts->bearer_stats_valid && (facts->rx_bytes || facts->tx_bytes))) {
        ca_telemetry_publisher_update(self->telemetry, facts);
        return;
    }
    ca_modem_facts_init(&copy);
    ca_modem_facts_copy(&copy, facts);
    copy.rx_bytes = u->session_rx;
    copy.tx_bytes = u->session_tx;
    if (!copy.bearer_stats_valid)
        copy.duration = (guint) (((u->session_ended ? u->session_ended : g_get_monotonic_time()) -
                                  u->session_started) /
                                 G_USEC_PER_SEC);
    copy.bearer_stats_valid = TRUE;
    ca_telemetry_publisher_update(self->telemetry, &copy);
    ca_modem_facts_clear(&copy);
}

gboolean
ca_agent_usage_get_session(CaAgent *self, guint64 *out_rx, guint64 *out_tx)
{
    CaAgentUsage *u = self->usage;

    if (!u || !u->session_valid)
        return FALSE;
    *out_rx = u->session_rx;
    *out_tx = u->session_tx;
    return TRUE;
}

/* Read the bearer's interface and book it. */
static void
sample_now(CaAgent *self)
{
    CaAgentUsage *u = self->usage;
    g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func((GDestroyNotify) cJSON_Delete);
    CaIfSample s;
    CaUsageBytes d;

    if (!u->iface || !read_sample(u, u->iface, &s))
        return;
    if (ca_usage_delta(ca_usage_store_peek_last_sample(u->store), &s, &d, NULL) !=
        CA_USAGE_DELTA_NONE) {
        u->session_rx += d.rx_bytes;
        u->session_tx += d.tx_bytes;
    }
    ca_usage_store_sample(u->store, u->iccid, plan_of(u), u->tz, &s, now_s(), events);
    ca_if_sample_clear(&s);
    after_change(self, events, FALSE);
    ca_agent_usage_feed_telemetry(self);
}

static gboolean
sample_timer_cb(gpointer user_data)
{
    sample_now(user_data);
    return G_SOURCE_CONTINUE;
}

static void
cycle_timer_cb_step(CaAgent *self)
{
    CaAgentUsage *u = self->usage;
    g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func((GDestroyNotify) cJSON_Delete);

    ca_usage_store_touch(u->store, u->iccid, plan_of(u), u->tz, now_s(), events);
    /* An override that ended changes the payload's action: publish it. */
    after_change(self, events, FALSE);
}

static gboolean
cycle_timer_cb(gpointer user_data)
{
    CaAgent *self = user_data;

    ca_clear_source(&self->usage->cycle_timer);
    cycle_timer_cb_step(self);
    return G_SOURCE_REMOVE;
}

/* Wake at the cycle's end or an override's end (at most an hour away). */
static void
schedule_cycle_check(CaAgent *self)
{
    CaAgentUsage *u = self->usage;
    const CaUsageSim *sim = ca_usage_store_get(u->store, u->iccid);
    gint64 now = now_s(), wait = CYCLE_CHECK_MAX_S;

    ca_clear_source(&u->cycle_timer);
    if (!sim)
        return;
    if (sim->cur.end > now)
        wait = MIN(wait, sim->cur.end - now);
    if (sim->cur.override_until > now)
        wait = MIN(wait, sim->cur.override_until - now);
    u->cycle_timer = g_timeout_source_new_seconds((guint) MAX(wait, 1));
    g_source_set_callback(u->cycle_timer, cycle_timer_cb, self, NULL);
    g_source_attach(u->cycle_timer, NULL);
}

/* The modem facts changed: a new SIM, a session that started or ended. */
void
ca_agent_usage_facts_changed(CaAgent *self)
{
    CaAgentUsage *u = self->usage;
    const CaModemFacts *f;
    const char *iccid, *iface;

    if (!u || !self->modem)
        return;
    f = ca_modem_peek_facts(self->modem);
    iccid = f->present ? f->iccid : NULL;
    iface = f->present && f->bearer_connected ? f->bearer_interface : NULL;
    if (iccid && g_strcmp0(iccid, u->iccid) != 0) {
        g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func((GDestroyNotify) cJSON_Delete);
        g_autofree char *tail = ca_usage_iccid_tail(iccid);
        const CaUsagePlan *plan;

        /* What crossed the interface until now belongs to the SIM before. */
        sample_now(self);
        g_free(u->iccid);
        u->iccid = g_strdup(iccid);
        plan = plan_of(u);
        ca_msg("counting SIM %s under %s%s", tail, plan ? "plan " : "no plan",
               plan ? plan->name : " (calendar months, no limit)");
        ca_usage_store_touch(u->store, u->iccid, plan, u->tz, now_s(), events);
        after_change(self, events, TRUE);
    }
    if (g_strcmp0(iface, u->iface) == 0)
        return;
    if (u->iface) {
        /* The session ended (or moved): its last bytes, then its rounding. */
        sample_now(self);
        ca_usage_store_end_session(u->store);
        ca_clear_source(&u->sample_timer);
        u->session_ended = g_get_monotonic_time();
        g_clear_pointer(&u->iface, g_free);
        after_change(self, NULL, TRUE);
    }
    if (iface) {
        u->iface = g_strdup(iface);
        u->session_valid = TRUE;
        u->session_rx = u->session_tx = 0;
        u->session_started = g_get_monotonic_time();
        u->session_ended = 0;
        sample_now(self);
        u->sample_timer = g_timeout_source_new(u->set.sample_interval_ms);
        g_source_set_callback(u->sample_timer, sample_timer_cb, self, NULL);
        g_source_attach(u->sample_timer, NULL);
    }
}

/*****************************************************************************/
/* Commands */

/* The SIM commands apply to: the one in use, else the one counted last. */
static const char *
command_sim(CaAgent *self, CaCommand *cmd)
{
    CaAgentUsage *u = self->usage;

    if (u->iccid && ca_usage_store_get(u->store, u->iccid))
        return u->iccid;
    ca_command_return_error(cmd, "no SIM counted yet");
    return NULL;
}

/* cmd/usage: read the counters, publish <base>/usage now; result: the payload. */
static void
usage_cmd_cb(CaCommand *cmd, gpointer user_data)
{
    CaAgent *self = user_data;

    sample_now(self);
    publish_now(self, TRUE);
    ca_command_return_ok(cmd, payload_now(self));
}

/* cmd/usage-adjust {"bytes":N}: the cycle's billable estimate becomes N (the operator's
 * figure); event usage-adjusted. */
static void
usage_adjust_cmd_cb(CaCommand *cmd, gpointer user_data)
{
    CaAgent *self = user_data;
    CaAgentUsage *u = self->usage;
    const char *iccid = command_sim(self, cmd);
    double bytes = cJSON_GetNumberValue(cJSON_GetObjectItem(ca_command_get_args(cmd), "bytes"));
    const CaUsagePlan *plan = plan_of(u);
    g_autoptr(cJSON) fields = NULL;
    g_autofree char *tail = NULL;
    guint64 before = 0;

    if (!iccid)
        return;
    sample_now(self);
    ca_usage_store_adjust(u->store, iccid, plan, (guint64) bytes, &before);
    tail = ca_usage_iccid_tail(iccid);
    fields = cJSON_CreateObject();
    cJSON_AddStringToObject(fields, "sim", tail);
    if (plan)
        cJSON_AddStringToObject(fields, "plan", plan->name);
    else
        cJSON_AddNullToObject(fields, "plan");
    cJSON_AddNumberToObject(fields, "from", (double) before);
    cJSON_AddNumberToObject(fields, "to", bytes);
    cJSON_AddStringToObject(fields, "source", ca_command_get_source(cmd));
    ca_msg("billable estimate of SIM %s set from %.0f to %.0f bytes (cmd/usage-adjust from %s)",
           tail, (double) before, bytes, ca_command_get_source(cmd));
    ca_mqtt_publish_event(self->mqtt, "usage-adjusted", fields);
    {
        g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func((GDestroyNotify) cJSON_Delete);

        /* Raised above a threshold: reported like traffic would. */
        ca_usage_store_touch(u->store, iccid, plan, u->tz, now_s(), events);
        after_change(self, events, TRUE);
    }
    ca_command_return_ok(cmd, payload_now(self));
}

/* cmd/usage-override {"until":TS|null}: lift the cap until TS. With at-limit=alert the cap
 * is the alert: the payload's action says "override" while it lasts. */
static void
usage_override_cmd_cb(CaCommand *cmd, gpointer user_data)
{
    CaAgent *self = user_data;
    CaAgentUsage *u = self->usage;
    const char *iccid = command_sim(self, cmd);
    const cJSON *v = cJSON_GetObjectItem(ca_command_get_args(cmd), "until");
    gint64 until = 0, now = now_s();

    if (!iccid)
        return;
    if (cJSON_IsString(v)) {
        g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(v->valuestring, NULL);

        until = dt ? g_date_time_to_unix(dt) : 0;
        if (until <= now || until > now + OVERRIDE_MAX_S) {
            ca_command_return_error(cmd, "args.until: must be in the future, within a year");
            return;
        }
    }
    ca_usage_store_override(u->store, iccid, until);
    if (until)
        ca_msg("data cap lifted until %s (cmd/usage-override from %s)", v->valuestring,
               ca_command_get_source(cmd));
    else
        ca_msg("data cap override ended (cmd/usage-override from %s)", ca_command_get_source(cmd));
    after_change(self, NULL, TRUE);
    ca_command_return_ok(cmd, payload_now(self));
}

/*****************************************************************************/
/* Life cycle */

static char *
read_boot_id(void)
{
    g_autofree char *text = NULL;

    if (!g_file_get_contents("/proc/sys/kernel/random/boot_id", &text, NULL, NULL))
        return NULL;
    return g_strdup(g_strstrip(text));
}

void
ca_agent_wire_usage(CaAgent *self)
{
    CaAgentUsage *u;
    g_autofree char *problem = NULL;

    u = g_new0(CaAgentUsage, 1);
    ca_usage_settings_load(&u->set, self->config);
    if (!u->set.enabled) {
        ca_usage_settings_clear(&u->set);
        g_free(u);
        return;
    }
    self->usage = u;
    u->tz = ca_usage_settings_get_tz(&u->set);
    u->boot_id = read_boot_id();
    u->store = ca_usage_store_load(u->set.state_dir, u->set.max_sims, &problem);
    if (problem)
        ca_warn("%s", problem);
    ca_commands_register(self->commands, "usage", usage_cmd_cb, self, NULL);
    ca_commands_set_read_only(self->commands, "usage");
    ca_commands_register(self->commands, "usage-adjust", usage_adjust_cmd_cb, self, NULL);
    ca_commands_register(self->commands, "usage-override", usage_override_cmd_cb, self, NULL);
}

/* Book the last bytes and save: at stop, before the modem is let go. */
void
ca_agent_usage_stop(CaAgent *self)
{
    CaAgentUsage *u = self->usage;

    if (!u)
        return;
    sample_now(self);
    ca_clear_source(&u->sample_timer);
    ca_clear_source(&u->cycle_timer);
    ca_clear_source(&u->publish_timer);
    save_now(self);
}

void
ca_agent_unwire_usage(CaAgent *self)
{
    CaAgentUsage *u = self->usage;

    if (!u)
        return;
    if (self->commands) {
        ca_commands_unregister(self->commands, "usage");
        ca_commands_unregister(self->commands, "usage-adjust");
        ca_commands_unregister(self->commands, "usage-override");
    }
    ca_clear_source(&u->sample_timer);
    ca_clear_source(&u->publish_timer);
    ca_clear_source(&u->cycle_timer);
    save_now(self);
    ca_clear_source(&u->save_timer);
    ca_usage_store_free(u->store);
    u->store = NULL;
    g_time_zone_unref(u->tz);
    ca_usage_settings_clear(&u->set);
    g_free(u->boot_id);
    g_free(u->iccid);
    g_free(u->iface);
    g_free(u->published);
    g_free(u);
    self->usage = NULL;
}

/* Reload: unchanged settings keep everything; otherwise save, start again from the file
 * with the new settings and take the modem's facts again. */
void
ca_agent_reload_usage(CaAgent *self)
{
    CaUsageSettings next;
    gboolean same;

    ca_usage_settings_load(&next, self->config);
    same = self->usage ? ca_usage_settings_equal(&self->usage->set, &next) : !next.enabled;
    ca_usage_settings_clear(&next);
    if (same)
        return;
    ca_agent_usage_stop(self);
    ca_agent_unwire_usage(self);
    ca_agent_wire_usage(self);
    ca_agent_usage_facts_changed(self);
    if (self->usage)
        publish_now(self, TRUE);
    /* A plan's new limit or action, or no accounting any more (no cap then). The uplinks
     * ignore a cap that stays the same, so an unchanged one costs nothing. */
    ca_agent_usage_apply_cap(self);
}

void
ca_agent_usage_set_economy(CaAgent *self, guint interval_s)
{
    if (self->usage)
        self->usage->economy_ms = interval_s * 1000;
}
