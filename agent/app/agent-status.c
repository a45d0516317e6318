/* agent-status: the composition root's status file, <runtime-dir>/status.json, which
 * `cellagent --status` and `--diagnose` read (docs/troubleshooting.md). Gathers the facts of
 * every module into the document of status-file.h and writes it atomically: on change, at
 * most once per STATUS_MIN_GAP_MS, and at least every STATUS_REFRESH_S so a reader can tell
 * a live agent from a hung or dead one. Removed on a clean stop.
 * Also keeps the last events published (the bundle's "last events"). */
#define CA_LOG_MODULE "agent"
#include "agent-private.h"

#include "durable.h"
#include "mqtt-settings.h"
#include "status-file.h"
#include "timestamp.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#define STATUS_MIN_GAP_MS  1000
#define STATUS_EVENTS_KEPT 20

static cJSON *
sms_json(CaAgent *self)
{
    cJSON *s = cJSON_CreateObject();

    cJSON_AddBoolToObject(s, "enabled", self->sms != NULL);
    if (!self->sms)
        return s;
    cJSON_AddNumberToObject(s, "queued", ca_sms_get_queue_length(self->sms));
    cJSON_AddNumberToObject(s, "received_waiting", ca_sms_get_received_waiting(self->sms));
    if (self->sms_last_error)
        cJSON_AddStringToObject(s, "last_error", self->sms_last_error);
    else
        cJSON_AddNullToObject(s, "last_error");
    return s;
}

/* The whole document, now. */
cJSON *
ca_agent_status_json(CaAgent *self)
{
    gint64 now = g_get_real_time();
    gint64 started = now - (g_get_monotonic_time() - self->started_at);
    cJSON *root = ca_status_new(CA_VERSION, (gint64) getpid(), self->set.device_id, started, now,
                                STATUS_REFRESH_S);
    CaMqttSettings ms;
    cJSON *link, *wd, *usage, *events;

    ca_mqtt_settings_load(&ms, self->config);
    cJSON_AddItemToObject(root, "mqtt",
                          ca_status_mqtt_json(ca_mqtt_is_connected(self->mqtt), self->mqtt_since,
                                              ca_mqtt_get_queue_length(self->mqtt),
                                              ca_mqtt_get_dropped_total(self->mqtt), ms.host,
                                              ms.port));
    ca_mqtt_settings_clear(&ms);
    link = self->uplink ? ca_uplink_get_link_json(self->uplink) : NULL;
    cJSON_AddItemToObject(root, "link", link ? link : cJSON_CreateNull());
    if (self->modem && ca_modem_peek_facts(self->modem))
        cJSON_AddItemToObject(root, "modem",
                              ca_telemetry_build(ca_modem_peek_facts(self->modem), now));
    else
        cJSON_AddNullToObject(root, "modem");
    cJSON_AddItemToObject(root, "sms", sms_json(self));
    wd = self->uplink ? ca_uplink_get_watchdog_json(self->uplink) : NULL;
    cJSON_AddItemToObject(root, "watchdog", wd ? wd : cJSON_CreateNull());
    if (self->economy)
        cJSON_AddItemToObject(root, "economy", ca_agent_economy_json(self));
    usage = ca_agent_usage_json(self);
    cJSON_AddItemToObject(root, "usage", usage ? usage : cJSON_CreateNull());
    events = cJSON_AddArrayToObject(root, "events");
    for (guint i = 0; self->status_events && i < self->status_events->len; i++)
        cJSON_AddItemToArray(events,
                             cJSON_Duplicate(g_ptr_array_index(self->status_events, i), TRUE));
    return root;
}

static void
write_status(CaAgent *self)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(cJSON) doc = ca_agent_status_json(self);
    g_autofree char *text = cJSON_Print(doc);
    const char *dir = self->set.runtime_dir;
    int dirfd;

    self->status_written_at = g_get_monotonic_time();
    if (g_mkdir_with_parents(dir, 0750) < 0) {
        if (!self->status_failed)
            ca_warn("cannot create runtime-dir \"%s\": %s; cellagent --status will not see "
                    "this agent",
                    dir, g_strerror(errno));
        self->status_failed = TRUE;
        return;
    }
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0 || !ca_durable_replace_mode(dirfd, dir, CA_STATUS_FILE_NAME, text, strlen(text),
                                              0640, FALSE, &error)) {
        /* Said once: the condition lasts (a read-only or full runtime directory). */
        if (!self->status_failed)
            ca_warn("cannot write the status file: %s; cellagent --status will not see "
                    "this agent",
                    error ? error->message : g_strerror(errno));
        self->status_failed = TRUE;
    } else if (self->status_failed) {
        ca_msg("status file written again in %s", dir);
        self->status_failed = FALSE;
    }
    if (dirfd >= 0)
        close(dirfd);
}

static gboolean status_refresh_cb(gpointer user_data);

/* The next refresh, STATUS_REFRESH_S after the last write. */
static void
schedule_refresh(CaAgent *self)
{
    ca_clear_source(&self->status_refresh);
    self->status_refresh = g_timeout_source_new_seconds(STATUS_REFRESH_S);
    g_source_set_callback(self->status_refresh, status_refresh_cb, self, NULL);
    g_source_attach(self->status_refresh, NULL);
}

static gboolean
status_refresh_cb(gpointer user_data)
{
    CaAgent *self = user_data;

    ca_clear_source(&self->status_refresh);
    write_status(self);
    schedule_refresh(self);
    return G_SOURCE_REMOVE;
}

static gboolean
status_pending_cb(gpointer user_data)
{
    CaAgent *self = user_data;

    ca_clear_source(&self->status_pending);
    write_status(self);
    schedule_refresh(self);
    return G_SOURCE_REMOVE;
}

/* Something the file shows changed: write it once the events at hand are handled (an idle
 * source: a burst of changes, a modem's signal values one by one, makes one write and no
 * wakeup of its own), or, within STATUS_MIN_GAP_MS of the last write, once that has passed. */
void
ca_agent_status_changed(CaAgent *self)
{
    gint64 gap_ms = (g_get_monotonic_time() - self->status_written_at) / 1000;

    if (self->stopping || !self->status_refresh || self->status_pending)
        return; /* not started or stopped (the file stays gone), or a write is due */
    if (gap_ms >= STATUS_MIN_GAP_MS)
        self->status_pending = g_idle_source_new();
    else
        self->status_pending = g_timeout_source_new((guint) (STATUS_MIN_GAP_MS - gap_ms));
    g_source_set_callback(self->status_pending, status_pending_cb, self, NULL);
    g_source_attach(self->status_pending, NULL);
}

/* Keep a copy of an event for the status file, then publish it. */
void
ca_agent_publish_event(CaAgent *self, const char *type, const cJSON *fields)
{
    cJSON *e = fields ? cJSON_Duplicate(fields, TRUE) : cJSON_CreateObject();
    g_autofree char *ts = ca_timestamp_format(g_get_real_time());

    cJSON_DeleteItemFromObjectCaseSensitive(e, "ts");
    cJSON_DeleteItemFromObjectCaseSensitive(e, "type");
    cJSON_AddStringToObject(e, "ts", ts);
    cJSON_AddStringToObject(e, "type", type);
    if (self->status_events->len >= STATUS_EVENTS_KEPT)
        g_ptr_array_remove_index(self->status_events, 0);
    g_ptr_array_add(self->status_events, e);
    ca_mqtt_publish_event(self->mqtt, type, fields);
    ca_agent_status_changed(self);
}

/* SMS: the last failure of an sms/out request. */
void
ca_agent_status_sms_result(CaAgent *self, const char *json)
{
    g_autoptr(cJSON) r = cJSON_Parse(json);
    const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "status"));
    const char *err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "error"));
    g_autofree char *ts = ca_timestamp_format(g_get_real_time());

    if (g_strcmp0(status, "failed") == 0 || g_strcmp0(status, "rejected") == 0) {
        g_free(self->sms_last_error);
        /* The error names a field or a modem failure, never the text. */
        self->sms_last_error = g_strdup_printf("%s: %s (%s)", status, err ? err : "?", ts);
    }
    ca_agent_status_changed(self);
}

static void
mqtt_state_cb(CaMqtt *mqtt, gpointer user_data)
{
    CaAgent *self = user_data;
    gboolean connected = ca_mqtt_is_connected(mqtt);

    if (connected != self->mqtt_was_connected || self->mqtt_since == 0) {
        self->mqtt_was_connected = connected;
        self->mqtt_since = g_get_real_time();
    }
    ca_agent_status_changed(self);
}

void
ca_agent_wire_status(CaAgent *self)
{
    self->status_events = g_ptr_array_new_with_free_func((GDestroyNotify) cJSON_Delete);
    self->mqtt_since = g_get_real_time();
    g_signal_connect(self->mqtt, "connected", G_CALLBACK(mqtt_state_cb), self);
    g_signal_connect(self->mqtt, "disconnected", G_CALLBACK(mqtt_state_cb), self);
}

/* The first write, and the refresh timer from then on. */
void
ca_agent_start_status(CaAgent *self)
{
    write_status(self);
    schedule_refresh(self);
}

/* Stop writing and remove the file: a stopped agent has no status. */
void
ca_agent_stop_status(CaAgent *self)
{
    g_autofree char *path = NULL;

    if (!self->status_refresh)
        return;
    ca_clear_source(&self->status_refresh);
    ca_clear_source(&self->status_pending);
    path = g_build_filename(self->set.runtime_dir, CA_STATUS_FILE_NAME, NULL);
    if (unlink(path) < 0 && errno != ENOENT)
        ca_warn("cannot remove %s: %s", path, g_strerror(errno));
}

void
ca_agent_unwire_status(CaAgent *self)
{
    ca_agent_stop_status(self);
    if (self->mqtt)
        g_signal_handlers_disconnect_by_func(self->mqtt, mqtt_state_cb, self);
    g_clear_pointer(&self->status_events, g_ptr_array_unref);
    g_clear_pointer(&self->sms_last_error, g_free);
}

/* Reload: a new runtime-dir gets the file, the old one loses it. */
void
ca_agent_reload_status(CaAgent *self, const char *old_runtime_dir)
{
    g_autofree char *old = g_build_filename(old_runtime_dir, CA_STATUS_FILE_NAME, NULL);

    if (g_strcmp0(old_runtime_dir, self->set.runtime_dir) != 0)
        unlink(old);
    ca_agent_status_changed(self);
}
