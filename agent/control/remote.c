/* remote: the command-set's handlers, the SMS command channel and the SMS alerts, on the
 * main loop. Owns: the guard and alert policy instances, the reboot timer and process,
 * replies in flight. Does not own: decisions (sms-command.c, alerts.c), formats
 * (command-set.c), transports and facts (hooks from agent.c). */
#define CA_LOG_MODULE "remote"
#include "remote.h"

#include "alerts.h"
#include "autocleanups.h"
#include "error.h"
#include "log.h"
#include "remote-settings.h"
#include "sms-command.h"
#include "timestamp.h"
#include "totp.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>

#define REBOOT_TIMEOUT_S 60 /* a reboot command running longer is killed */

typedef struct _SmsReply SmsReply;

struct _CaRemote {
    CaRemoteSettings set;
    CaCommands *registry; /* borrowed; outlives us */
    CaRemoteHooks hooks;
    gint64 started_at; /* monotonic us */

    /* SMS commands */
    gboolean sms_enabled;
    CaSmsGuard *guard;  /* NULL when disabled or the secret is unusable */
    GBytes *secret;     /* to notice a changed secret file on reload */
    GPtrArray *replies; /* SmsReply* in flight (not owned) */

    /* Reboot */
    GSource *reboot_timer; /* owned: the delay before reboot-command */
    GSubprocess *reboot_proc;
    GSource *reboot_timeout; /* owned */
    GCancellable *cancellable;

    /* Alerts */
    CaAlerts *alerts;     /* NULL while disabled or before the first fact */
    GSource *alert_timer; /* owned */
    gboolean data_known;
    gboolean data_ok;
    CaAlertsState alert_state; /* last logged */
};

struct _SmsReply {
    CaRemote *remote; /* NULL once the remote is gone */
    char *to;
    char *command;
    gint64 counter;
};

static void alerts_schedule(CaRemote *self);

static void
publish_event(CaRemote *self, const char *type, const cJSON *fields)
{
    if (self->hooks.publish_event)
        self->hooks.publish_event(type, fields, self->hooks.user_data);
}

static const char *
device_id(CaRemote *self)
{
    return self->set.device_id;
}

static char *
state_path(CaRemote *self, const char *name)
{
    return g_build_filename(self->set.state_dir, name, NULL);
}

/*****************************************************************************/
/* The registry's hooks: args checks and events */

static gboolean
validate_cb(const char *name, const cJSON *args, GError **error, gpointer user_data)
{
    return ca_cmdset_check_args(name, args, error);
}

static void
observe_cb(CaCommand *cmd, gboolean ok, const cJSON *result, const char *error, gpointer user_data)
{
    CaRemote *self = user_data;
    const CaCommandInfo *info = ca_cmdset_lookup(ca_command_get_name(cmd));
    g_autoptr(cJSON) fields = NULL;

    if (!info || !info->changes)
        return;
    fields = ca_cmdset_event_json(ca_command_get_name(cmd), ca_command_get_source(cmd),
                                  ca_command_get_id(cmd), ok, result, error);
    publish_event(self, "command", fields);
}

/*****************************************************************************/
/* status, log-level */

static void
status_cb(CaCommand *cmd, gpointer user_data)
{
    CaRemote *self = user_data;
    g_autoptr(GPtrArray) strings = g_ptr_array_new_with_free_func(g_free);
    CaStatusFacts facts;

    ca_status_facts_init(&facts);
    if (self->hooks.get_status)
        self->hooks.get_status(&facts, strings, self->hooks.user_data);
    facts.device_id = device_id(self);
    facts.uptime_s = (g_get_monotonic_time() - self->started_at) / G_USEC_PER_SEC;
    ca_command_return_ok(cmd, ca_cmdset_status_json(&facts));
}

static void
log_level_cb(CaCommand *cmd, gpointer user_data)
{
    const cJSON *level = cJSON_GetObjectItemCaseSensitive(ca_command_get_args(cmd), "level");
    CaLogLevel previous = ca_log_get_level();
    CaLogLevel wanted;
    cJSON *result;

    /* The validator checked args.level. */
    if (!ca_log_level_from_string(level->valuestring, &wanted)) {
        ca_command_return_error(cmd, "args.level: unknown level");
        return;
    }
    /* Wins over --log-level and the config until the next reload (log-level.h). */
    ca_log_set_level_from(CA_LOG_LEVEL_FROM_COMMAND, wanted);
    ca_msg("log level %s (was %s), asked by %s, until the next reload",
           ca_log_level_to_string(wanted), ca_log_level_to_string(previous),
           ca_command_get_source(cmd));
    result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "level", ca_log_level_to_string(wanted));
    cJSON_AddStringToObject(result, "previous", ca_log_level_to_string(previous));
    ca_command_return_ok(cmd, result);
}

/*****************************************************************************/
/* reboot */

static void
reboot_failed(CaRemote *self, const char *why)
{
    g_autoptr(cJSON) fields = cJSON_CreateObject();

    ca_err("reboot: %s", why);
    cJSON_AddStringToObject(fields, "error", why);
    publish_event(self, "reboot-failed", fields);
}

static void
reboot_done(CaRemote *self)
{
    ca_clear_source(&self->reboot_timeout);
    g_clear_object(&self->reboot_proc);
}

static void
reboot_wait_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaRemote *self = user_data;
    GSubprocess *proc = G_SUBPROCESS(source);
    g_autoptr(GError) error = NULL;

    if (!g_subprocess_wait_finish(proc, result, &error)) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            reboot_failed(self, error->message);
        /* Cancelled: the remote is going away; self must not be touched further. */
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            return;
    } else if (g_subprocess_get_if_signaled(proc)) {
        g_autofree char *why =
            g_strdup_printf("reboot-command killed by signal %d", g_subprocess_get_term_sig(proc));
        reboot_failed(self, why);
    } else if (g_subprocess_get_exit_status(proc) != 0) {
        g_autofree char *why = g_strdup_printf("reboot-command exited with status %d",
                                               g_subprocess_get_exit_status(proc));
        reboot_failed(self, why);
    } else {
        ca_msg("reboot-command done; waiting for the system to stop us");
    }
    reboot_done(self);
}

static gboolean
reboot_timeout_cb(gpointer user_data)
{
    CaRemote *self = user_data;

    ca_clear_source(&self->reboot_timeout);
    if (self->reboot_proc)
        g_subprocess_force_exit(self->reboot_proc);
    return G_SOURCE_REMOVE;
}

static gboolean
reboot_timer_cb(gpointer user_data)
{
    CaRemote *self = user_data;
    const char *line = self->set.reboot_command;
    g_auto(GStrv) argv = NULL;
    g_autoptr(GError) error = NULL;

    ca_clear_source(&self->reboot_timer);
    if (!g_shell_parse_argv(line, NULL, &argv, &error)) {
        reboot_failed(self, error->message);
        return G_SOURCE_REMOVE;
    }
    ca_msg("rebooting: running reboot-command %s", argv[0]);
    self->reboot_proc = g_subprocess_newv(
        (const char *const *) argv,
        G_SUBPROCESS_FLAGS_STDIN_INHERIT | G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &error);
    if (!self->reboot_proc) {
        reboot_failed(self, error->message);
        return G_SOURCE_REMOVE;
    }
    self->reboot_timeout = g_timeout_source_new_seconds(REBOOT_TIMEOUT_S);
    g_source_set_callback(self->reboot_timeout, reboot_timeout_cb, self, NULL);
    g_source_attach(self->reboot_timeout, NULL);
    g_subprocess_wait_async(self->reboot_proc, self->cancellable, reboot_wait_ready, self);
    return G_SOURCE_REMOVE;
}

static void
reboot_cb(CaCommand *cmd, gpointer user_data)
{
    CaRemote *self = user_data;
    const char *line = self->set.reboot_command;
    gint64 delay = self->set.reboot_delay_s;
    g_auto(GStrv) argv = NULL;
    g_autoptr(GError) error = NULL;
    cJSON *result;

    if (!self->set.allow_reboot) {
        ca_command_return_error(cmd, "reboot not allowed ([commands] allow-reboot=false)");
        return;
    }
    if (self->reboot_timer || self->reboot_proc) {
        ca_command_return_error(cmd, "a reboot is already under way");
        return;
    }
    if (!g_shell_parse_argv(line, NULL, &argv, &error)) {
        ca_command_return_error(cmd, "[commands] reboot-command: %s", error->message);
        return;
    }
    if (self->hooks.take_reboot_budget &&
        !self->hooks.take_reboot_budget(ca_command_get_source(cmd), &error,
                                        self->hooks.user_data)) {
        ca_command_return_error(cmd, "%s", error->message);
        return;
    }
    /* Answer first, so the result (and an SMS reply) can go out before the system stops. */
    ca_msg("reboot asked by %s; running reboot-command in %" G_GINT64_FORMAT " s",
           ca_command_get_source(cmd), delay);
    result = cJSON_CreateObject();
    cJSON_AddStringToObject(result, "command", argv[0]);
    cJSON_AddNumberToObject(result, "delay", (double) delay);
    ca_command_return_ok(cmd, result);
    self->reboot_timer = g_timeout_source_new_seconds((guint) delay);
    g_source_set_callback(self->reboot_timer, reboot_timer_cb, self, NULL);
    g_source_attach(self->reboot_timer, NULL);
}

/*****************************************************************************/
/* SMS commands */

static void
sms_reply_free(gpointer data)
{
    SmsReply *r = data;

    if (r->remote)
        g_ptr_array_remove(r->remote->replies, r);
    g_free(r->to);
    g_free(r->command);
    g_free(r);
}

static void
sms_reply_cb(CaCommand *cmd, const char *result_json, gpointer user_data)
{
    SmsReply *r = user_data;
    CaRemote *self = r->remote;
    g_autofree char *text = NULL;
    g_autofree char *id = NULL;
    g_autoptr(GError) error = NULL;

    if (!self)
        return;
    text = ca_cmdset_sms_reply(device_id(self), r->command, result_json);
    id = g_strdup_printf("sms-cmd-%" G_GINT64_FORMAT "-reply", r->counter);
    if (!self->hooks.send_sms ||
        !self->hooks.send_sms(id, r->to, text, &error, self->hooks.user_data))
        ca_warn("SMS command %s: reply not sent: %s", r->command,
                error ? error->message : "no SMS bridge");
}

/* Load the secret and build the guard; on failure log and leave guard NULL. */
static void
guard_setup(CaRemote *self)
{
    const char *path = self->set.sms_commands.secret_file;
    g_autofree char *state = state_path(self, "sms-commands.state");
    g_autofree char *warning = NULL;
    g_autoptr(GError) error = NULL;

    g_clear_pointer(&self->guard, ca_sms_guard_free);
    g_clear_pointer(&self->secret, g_bytes_unref);
    self->sms_enabled = self->set.sms_commands.enabled;
    if (!self->sms_enabled)
        return;
    self->secret = ca_totp_load_secret(path, &error);
    if (!self->secret) {
        ca_err("SMS commands refused until fixed: secret-file %s", error->message);
        return;
    }
    self->guard = ca_sms_guard_new(&self->set.sms_commands, self->secret, state,
                                   g_get_real_time() / G_USEC_PER_SEC, &warning, &error);
    if (warning)
        ca_warn("SMS commands: %s", warning);
    if (!self->guard)
        ca_err("SMS commands refused until fixed: %s", error->message);
    else
        ca_msg("SMS commands enabled for %u sender(s)",
               g_strv_length(self->set.sms_commands.allowed_senders));
}

gboolean
ca_remote_handle_sms(CaRemote *self, const char *id, const char *from, const char *text)
{
    CaSmsDecision d;
    g_autoptr(cJSON) audit = NULL;
    g_autofree char *masked = NULL;
    g_autofree char *audit_id = NULL;
    CaSmsCommandText parsed;
    const char *detail;
    const char *clock = NULL;
    gint64 now;

    if (!self->sms_enabled)
        return FALSE;
    masked = ca_phone_mask(from ? from : "", ca_log_get_personal_info());
    if (!self->guard) {
        /* Enabled but unusable: keep command SMS (and their codes) off sms/in anyway. */
        if (!ca_sms_command_has_shape(text) ||
            ca_sms_command_parse(text, &parsed, &detail) == CA_SMS_REASON_UNKNOWN_COMMAND ||
            !parsed.command[0])
            return FALSE;
        audit = cJSON_CreateObject();
        cJSON_AddStringToObject(audit, "from", masked);
        cJSON_AddStringToObject(audit, "outcome", "rejected");
        cJSON_AddStringToObject(audit, "command", parsed.command);
        cJSON_AddStringToObject(audit, "reason", "SMS commands unavailable (secret-file)");
        cJSON_AddStringToObject(audit, "sms_id", audit_id = ca_sms_command_audit_id(NULL, id));
        publish_event(self, "sms-command", audit);
        ca_warn("SMS command %s from %s refused: SMS commands unavailable", parsed.command, masked);
        return TRUE;
    }
    now = self->hooks.get_time ? self->hooks.get_time(&clock, self->hooks.user_data)
                               : g_get_real_time();
    ca_sms_guard_check(self->guard, from ? from : "", text ? text : "", now / G_USEC_PER_SEC, &d);
    if (!d.is_command)
        return FALSE;
    audit = ca_sms_decision_audit_json(&d, from, ca_log_get_personal_info());
    audit_id = ca_sms_command_audit_id(self->secret, id);
    cJSON_AddStringToObject(audit, "sms_id", audit_id);
    if (clock)
        cJSON_AddStringToObject(audit, "clock", clock);
    if (!d.accepted) {
        publish_event(self, "sms-command", audit);
        ca_msg("SMS command %s from %s rejected: %s%s%s%s",
               d.parsed.command[0] ? d.parsed.command : "(unknown)", masked,
               ca_sms_reason_to_string(d.reason), d.detail ? " (" : "", d.detail ? d.detail : "",
               d.detail ? ")" : "");
        if (d.lockout_ms > 0) {
            g_autoptr(cJSON) locked = cJSON_CreateObject();
            g_autofree char *until = ca_timestamp_format(now + d.lockout_ms * 1000);

            cJSON_AddNumberToObject(locked, "failures", d.failures);
            cJSON_AddNumberToObject(locked, "seconds", (double) (d.lockout_ms / 1000));
            cJSON_AddStringToObject(locked, "until", until);
            publish_event(self, "sms-commands-locked", locked);
            ca_warn("SMS commands locked out for %" G_GINT64_FORMAT " s after %u failed codes "
                    "within an hour (last from %s)",
                    d.lockout_ms / 1000, d.failures, masked);
        }
        return TRUE;
    }
    {
        g_autofree char *cmd_id = g_strdup_printf("sms-%" G_GINT64_FORMAT, d.counter);
        g_autofree char *payload = g_strdup_printf("{\"id\":\"%s\"}", cmd_id);
        SmsReply *r = g_new0(SmsReply, 1);

        cJSON_AddStringToObject(audit, "command_id", cmd_id);
        publish_event(self, "sms-command", audit);
        ca_msg("SMS command %s from %s accepted", d.parsed.command, masked);
        r->remote = self;
        r->to = g_strdup(d.sender);
        r->command = g_strdup(d.parsed.command);
        r->counter = d.counter;
        g_ptr_array_add(self->replies, r);
        ca_commands_dispatch(self->registry, d.parsed.command, payload, strlen(payload), "sms",
                             sms_reply_cb, r, sms_reply_free);
    }
    return TRUE;
}

/*****************************************************************************/
/* Alerts */

#define ALERT_STATE_GROUP "sms-alerts"

static void
alerts_persist(CaRemote *self)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *path = state_path(self, "sms-alerts.state");
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *data = NULL;
    g_autoptr(GError) error = NULL;
    gsize len = 0;

    g_key_file_set_int64(kf, ALERT_STATE_GROUP, "last-alert", g_get_real_time() / G_USEC_PER_SEC);
    data = g_key_file_to_data(kf, &len, NULL);
    if (g_mkdir_with_parents(dir, 0700) < 0 ||
        !g_file_set_contents_full(path, data, (gssize) len, G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                  &error))
        ca_warn("cannot save %s: %s", path, error ? error->message : g_strerror(errno));
}

/* The rate limit survives restarts: an alert sent before is remembered. */
static void
alerts_restore(CaRemote *self)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *path = state_path(self, "sms-alerts.state");
    gint64 last, age;

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, NULL))
        return;
    last = g_key_file_get_int64(kf, ALERT_STATE_GROUP, "last-alert", NULL);
    age = g_get_real_time() / G_USEC_PER_SEC - last;
    if (last > 0 && age >= 0 && age < 7 * 86400)
        ca_alerts_restore_last_alert(self->alerts, g_get_monotonic_time() / 1000 - age * 1000);
}

static void
alerts_send(CaRemote *self, const CaAlert *alert, gint64 now)
{
    const char *const *numbers = (const char *const *) self->set.alert_numbers;
    g_autoptr(GPtrArray) strings = g_ptr_array_new_with_free_func(g_free);
    CaStatusFacts facts;
    g_autofree char *text = NULL;
    g_autoptr(cJSON) fields = cJSON_CreateObject();
    const char *kind = alert->kind == CA_ALERT_DOWN ? "down" : "recovered";
    gint64 wall_s = g_get_real_time() / G_USEC_PER_SEC;
    guint sent = 0;

    ca_status_facts_init(&facts);
    if (self->hooks.get_status)
        self->hooks.get_status(&facts, strings, self->hooks.user_data);
    text = ca_alerts_format(alert, device_id(self), now, g_get_real_time(), facts.uplink);
    for (guint i = 0; numbers[i]; i++) {
        g_autofree char *to = ca_phone_normalize(numbers[i]);
        g_autofree char *id =
            g_strdup_printf("sms-alert-%" G_GINT64_FORMAT "-%s-%u", wall_s, kind, i);
        g_autoptr(GError) error = NULL;

        if (to && self->hooks.send_sms &&
            self->hooks.send_sms(id, to, text, &error, self->hooks.user_data))
            sent++;
        else
            ca_warn("alert SMS %s not queued: %s", id, error ? error->message : "no SMS bridge");
    }
    ca_msg("%s", text);
    cJSON_AddStringToObject(fields, "kind", kind);
    cJSON_AddNumberToObject(fields, "duration", (double) (alert->duration_ms / 1000));
    cJSON_AddNumberToObject(fields, "unreported", alert->unreported);
    cJSON_AddNumberToObject(fields, "sms", sent);
    cJSON_AddStringToObject(fields, "text", text);
    publish_event(self, "sms-alert", fields);
    if (alert->kind == CA_ALERT_DOWN)
        alerts_persist(self);
}

guint
ca_remote_send_alert_sms(CaRemote *self, const char *key, const char *text)
{
    const char *const *numbers = (const char *const *) self->set.alert_numbers;
    g_autofree char *safe = NULL;
    guint sent = 0;

    if (!self->set.alerts_enabled || !numbers)
        return 0;
    safe = ca_cmdset_sms_safe(text, CA_SMS_TEXT_MAX);
    for (guint i = 0; numbers[i]; i++) {
        g_autofree char *to = ca_phone_normalize(numbers[i]);
        g_autofree char *id = g_strdup_printf("sms-alert-%s-%u", key, i);
        g_autoptr(GError) error = NULL;

        if (to && self->hooks.send_sms &&
            self->hooks.send_sms(id, to, safe, &error, self->hooks.user_data))
            sent++;
        else
            ca_warn("alert SMS %s not queued: %s", id, error ? error->message : "no SMS bridge");
    }
    return sent;
}

static void
alerts_handle(CaRemote *self, CaAlert alert, gint64 now)
{
    CaAlertsState state = ca_alerts_get_state(self->alerts);

    if (state != self->alert_state) {
        ca_msg("alerts: %s%s", ca_alerts_state_to_string(state),
               state == CA_ALERTS_PENDING      ? " (no uplink passes its health check)"
               : state == CA_ALERTS_SUPPRESSED ? " (alert held back by min-interval)"
                                               : "");
        self->alert_state = state;
    }
    if (alert.kind != CA_ALERT_NONE)
        alerts_send(self, &alert, now);
    alerts_schedule(self);
}

static gboolean
alert_timer_cb(gpointer user_data)
{
    CaRemote *self = user_data;
    gint64 now = g_get_monotonic_time() / 1000;

    ca_clear_source(&self->alert_timer);
    alerts_handle(self, ca_alerts_tick(self->alerts, now), now);
    return G_SOURCE_REMOVE;
}

static void
alerts_schedule(CaRemote *self)
{
    gint64 deadline, now;

    ca_clear_source(&self->alert_timer);
    if (!self->alerts)
        return;
    deadline = ca_alerts_next_deadline(self->alerts);
    if (deadline == G_MAXINT64)
        return;
    now = g_get_monotonic_time() / 1000;
    self->alert_timer = g_timeout_source_new((guint) CLAMP(deadline - now, 0, G_MAXUINT));
    g_source_set_callback(self->alert_timer, alert_timer_cb, self, NULL);
    g_source_attach(self->alert_timer, NULL);
}

/* Create or drop the policy as [sms-alerts] enabled says; it starts at the first fact. */
static void
alerts_setup(CaRemote *self)
{
    const CaAlertsConfig *c = &self->set.alerts;

    if (!self->set.alerts_enabled) {
        ca_clear_source(&self->alert_timer);
        g_clear_pointer(&self->alerts, ca_alerts_free);
        return;
    }
    if (self->alerts) {
        ca_alerts_set_config(self->alerts, c);
        alerts_schedule(self);
        return;
    }
    if (!self->data_known)
        return;
    self->alerts = ca_alerts_new(c, g_get_monotonic_time() / 1000);
    self->alert_state = CA_ALERTS_UP; /* so the first state is logged */
    alerts_restore(self);
    ca_remote_set_data_ok(self, self->data_ok);
}

void
ca_remote_set_data_ok(CaRemote *self, gboolean data_ok)
{
    gint64 now = g_get_monotonic_time() / 1000;
    gboolean first = !self->data_known;

    self->data_known = TRUE;
    self->data_ok = data_ok;
    if (first && !self->alerts) {
        alerts_setup(self); /* calls back in with the policy in place */
        return;
    }
    if (!self->alerts)
        return;
    alerts_handle(self, ca_alerts_set_data(self->alerts, data_ok, now), now);
}

const char *
ca_remote_get_alert_state(CaRemote *self)
{
    return self->alerts ? ca_alerts_state_to_string(ca_alerts_get_state(self->alerts)) : "disabled";
}

/*****************************************************************************/
/* Lifecycle */

CaRemote *
ca_remote_new(CaConfig *config, CaCommands *registry, const CaRemoteHooks *hooks)
{
    CaRemote *self = g_new0(CaRemote, 1);

    ca_remote_settings_load(&self->set, config);
    self->registry = registry;
    self->hooks = *hooks;
    self->started_at = g_get_monotonic_time();
    self->replies = g_ptr_array_new();
    self->cancellable = g_cancellable_new();
    ca_commands_set_validator(registry, validate_cb, self);
    ca_commands_set_observer(registry, observe_cb, self);
    ca_commands_register(registry, "status", status_cb, self, NULL);
    ca_commands_set_read_only(registry, "status");
    ca_commands_register(registry, "log-level", log_level_cb, self, NULL);
    ca_commands_register(registry, "reboot", reboot_cb, self, NULL);
    guard_setup(self);
    alerts_setup(self);
    return self;
}

void
ca_remote_free(CaRemote *self)
{
    if (!self)
        return;
    ca_commands_unregister(self->registry, "status");
    ca_commands_unregister(self->registry, "log-level");
    ca_commands_unregister(self->registry, "reboot");
    ca_commands_set_validator(self->registry, NULL, NULL);
    ca_commands_set_observer(self->registry, NULL, NULL);
    for (guint i = 0; i < self->replies->len; i++)
        ((SmsReply *) self->replies->pdata[i])->remote = NULL;
    g_ptr_array_unref(self->replies);
    g_cancellable_cancel(self->cancellable);
    ca_clear_source(&self->reboot_timer);
    ca_clear_source(&self->reboot_timeout);
    g_clear_object(&self->reboot_proc);
    g_clear_object(&self->cancellable);
    ca_clear_source(&self->alert_timer);
    g_clear_pointer(&self->alerts, ca_alerts_free);
    g_clear_pointer(&self->guard, ca_sms_guard_free);
    g_clear_pointer(&self->secret, g_bytes_unref);
    ca_remote_settings_clear(&self->set);
    g_free(self);
}

void
ca_remote_set_config(CaRemote *self, CaConfig *config)
{
    CaRemoteSettings set;
    CaRemoteSettingsChange changed;
    gboolean rebuild;

    ca_remote_settings_load(&set, config);
    changed = ca_remote_settings_diff(&self->set, &set);
    ca_remote_settings_clear(&self->set);
    self->set = set;
    /* [commands] and the device id are read when used. */
    rebuild = (changed & (CA_REMOTE_SETTINGS_SMS_COMMANDS | CA_REMOTE_SETTINGS_STATE_DIR)) != 0;
    if (!rebuild && self->sms_enabled) {
        /* Same settings: rebuild only when the secret file's content changed. */
        g_autoptr(GBytes) secret = ca_totp_load_secret(self->set.sms_commands.secret_file, NULL);
        rebuild = !secret || !self->secret || !g_bytes_equal(secret, self->secret);
    }
    if (rebuild)
        guard_setup(self);
    if (changed & CA_REMOTE_SETTINGS_ALERTS)
        alerts_setup(self);
}
