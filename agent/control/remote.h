/* remote: remote control of the device on the main loop. It registers the command-set's
 * own commands (status, log-level, reboot) in the registry, checks every request's args
 * before any handler runs and emits a "command" event for every answered command that
 * changes something (whoever registered it). It runs the SMS command channel (sms-command.c
 * decides, the registry runs the command, the outcome goes back as an SMS) and the SMS
 * alerts (alerts.c decides, one owned timer).
 * Owns: [commands], [sms-commands] and [sms-alerts] at run time, their state files.
 * Does not own: MQTT, the SMS bridge, modem or uplink facts: agent.c hands those in through
 * CaRemoteHooks and calls. docs/commands.md describes the behaviour. */
#pragma once
#include "command-set.h"
#include "commands.h"
#include "config.h"

#include <cjson/cJSON.h>
#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    /* Publish an event on <base>/events; fields (not consumed) are copied in. */
    void (*publish_event)(const char *type, const cJSON *fields, gpointer user_data);
    /* Queue an outgoing SMS (durably, as an sms/out request with this id). FALSE with
     * error when it cannot be queued (no SMS bridge, invalid). May be NULL: no SMS. */
    gboolean (*send_sms)(const char *id, const char *to, const char *text, GError **error,
                         gpointer user_data);
    /* Fill what is known now (facts are initialised as unknown; device_id and uptime_s
     * are filled by remote). May be NULL. Strings must stay valid until the caller is done
     * with facts: park allocated ones in strings (freed with g_free afterwards). */
    void (*get_status)(CaStatusFacts *facts, GPtrArray *strings, gpointer user_data);
    /* A reboot command is about to run: count it against the reboot budget the watchdog
     * uses (durably). FALSE with error: refused. May be NULL: no budget. */
    gboolean (*take_reboot_budget)(const char *source, GError **error, gpointer user_data);
    /* The wall clock (unix us) SMS command codes are checked against, and the name of the
     * clock it comes from ("ntp", "system", "network": the audit's "clock"). May be NULL:
     * g_get_real_time(), no "clock" in the audit. */
    gint64 (*get_time)(const char **out_clock, gpointer user_data);
    gpointer user_data;
} CaRemoteHooks;

typedef struct _CaRemote CaRemote;

/* Attach to registry (which must outlive the remote): registers status, log-level and
 * reboot, the args validator and the event observer; loads the SMS command secret and
 * replay state when [sms-commands] enabled (a problem is logged and leaves SMS commands
 * refusing every command SMS; it does not stop the agent). */
CaRemote *ca_remote_new(CaConfig *config, CaCommands *registry, const CaRemoteHooks *hooks);
/* Unregister and free; a pending reboot timer is cancelled, in-flight SMS commands lose
 * their reply. */
void ca_remote_free(CaRemote *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaRemote, ca_remote_free)

/* Apply a reloaded config: the SMS command guard is rebuilt when [sms-commands] or the
 * secret file changed (failure records start over), alerts keep their current outage. */
void ca_remote_set_config(CaRemote *self, CaConfig *config);

/* A received SMS (id as on sms/in, sender as received): TRUE when it was a command SMS,
 * which was audited (event "sms-command", with the clock its code was checked against), run if accepted (with a reply SMS on the
 * outcome), and must not be published on sms/in. FALSE: an ordinary SMS. */
gboolean ca_remote_handle_sms(CaRemote *self, const char *id, const char *from, const char *text);

/* The health fact for alerts: TRUE while at least one uplink passes its health check. */
void ca_remote_set_data_ok(CaRemote *self, gboolean data_ok);

/* Queue text (made GSM 7-bit safe, one SMS) to every [sms-alerts] number when
 * [sms-alerts] enabled=true; key makes the requests' ids ("sms-alert-KEY-N"), so the same
 * key is never sent twice (the SMS bridge's dedupe). Returns how many were queued. Not
 * held back by min-interval: the caller reports each event once. */
guint ca_remote_send_alert_sms(CaRemote *self, const char *key, const char *text);

/* For tests and STATUS: the alert policy's state name ("up", "pending", ...). */
const char *ca_remote_get_alert_state(CaRemote *self);

G_END_DECLS
