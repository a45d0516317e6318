/* config: key table, file loading with line tracking, validation, documentation.
 * Owns: turning files into an immutable CaConfig or a list of every problem.
 * Does not own: applying values; modules read the snapshot they are handed. */
#define CA_LOG_MODULE "config"
#include "config.h"
#include "sms-command.h"

#include "error.h"
#include "log.h"
#include "probe-spec.h"

#include <string.h>

/*****************************************************************************/
/* The key table */

static const char *const log_levels[] = {"error", "warning", "info", "debug", NULL};
static const char *const protocols[] = {"5", "3.1.1", NULL};
static const char *const tls_versions[] = {"tlsv1.2", "tlsv1.3", NULL};
static const char *const activate_modes[] = {"always", "on-demand", "never", NULL};
static const char *const watchdog_steps[] = {"reactivate", "modem-reset", "power-cycle", "reboot",
                                             NULL};

static gboolean check_topic_prefix(const char *value, char **why);
static gboolean check_client_id(const char *value, char **why);

#define NOLIMIT 0, 0
static const CaConfigKey keys[] = {
    /* [agent] */
    {"agent", "device-id", CA_KEY_STRING, NULL, "hostname", 1, 64, NULL, ca_config_check_device_id,
     0, "Device identity in topic names: 1-64 of A-Z a-z 0-9 . _ -"},
    {"agent", "state-dir", CA_KEY_PATH, "/var/lib/cellagent", NULL, 1, 4096, NULL, NULL, 0,
     "Directory for spools, dedupe sets and counters (created when missing)"},
    {"agent", "log-level", CA_KEY_ENUM, "info", NULL, NOLIMIT, log_levels, NULL, 0,
     "Log verbosity: error, warning, info or debug"},

    /* [mqtt] */
    {"mqtt", "host", CA_KEY_STRING, "localhost", NULL, 1, 253, NULL, NULL, 0,
     "Broker host name or address"},
    {"mqtt", "port", CA_KEY_INT, NULL, "1883, or 8883 when tls=true", 1, 65535, NULL, NULL, 0,
     "Broker TCP port"},
    {"mqtt", "client-id", CA_KEY_STRING, NULL, "device-id", 1, 128, NULL, check_client_id, 0,
     "MQTT client identifier"},
    {"mqtt", "username", CA_KEY_STRING, "", NULL, 0, 256, NULL, NULL, 0,
     "User name for broker authentication (empty: none)"},
    {"mqtt", "password-file", CA_KEY_PATH, "", NULL, 0, 4096, NULL, NULL, 0,
     "File whose first line is the broker password"},
    {"mqtt", "topic-prefix", CA_KEY_STRING, "cellagent", NULL, 1, 128, NULL, check_topic_prefix, 0,
     "Base topic is <topic-prefix>/<device-id>"},
    {"mqtt", "keepalive", CA_KEY_INT, "60", NULL, 5, 3600, NULL, NULL, 0,
     "MQTT keepalive in seconds"},
    {"mqtt", "protocol", CA_KEY_ENUM, "5", NULL, NOLIMIT, protocols, NULL, 0,
     "MQTT protocol version: 5 or 3.1.1"},
    {"mqtt", "tls", CA_KEY_BOOL, "false", NULL, NOLIMIT, NULL, NULL, 0,
     "Connect with TLS (hostname verification on)"},
    {"mqtt", "ca-file", CA_KEY_PATH, "", NULL, 0, 4096, NULL, NULL, 0,
     "CA certificates (PEM); empty with tls=true: the system trust store"},
    {"mqtt", "cert-file", CA_KEY_PATH, "", NULL, 0, 4096, NULL, NULL, 0,
     "Client certificate (PEM) for TLS client authentication"},
    {"mqtt", "key-file", CA_KEY_PATH, "", NULL, 0, 4096, NULL, NULL, 0, "Client private key (PEM)"},
    {"mqtt", "tls-version", CA_KEY_ENUM, "tlsv1.2", NULL, NOLIMIT, tls_versions, NULL, 0,
     "Minimum TLS version: tlsv1.2 or tlsv1.3"},
    {"mqtt", "queue-limit", CA_KEY_INT, "1000", NULL, 1, 100000, NULL, NULL, 0,
     "Messages buffered while the broker is unreachable (oldest telemetry dropped first)"},
    {"mqtt", "queue-limit-bytes", CA_KEY_INT, "4194304", NULL, 65536, 1073741824, NULL, NULL, 0,
     "Payload bytes buffered while the broker is unreachable (same drop order)"},
    {"mqtt", "session-expiry", CA_KEY_INT, "86400", NULL, 0, 4294967295, NULL, NULL, 0,
     "Seconds the broker keeps this device's session (subscriptions, QoS 1 messages for it) "
     "while it is offline (MQTT 5; with 3.1.1 any value > 0 keeps the session); 0 = a clean "
     "session on every connect"},

    /* [telemetry] */
    {"telemetry", "interval", CA_KEY_INT, "60", NULL, 0, 86400, NULL, NULL, 0,
     "Seconds between periodic telemetry; 0 = only on change and on request"},
    {"telemetry", "signal-rate", CA_KEY_INT, "30", NULL, 0, 3600, NULL, NULL, 0,
     "Refresh rate (s) asked of ModemManager's Signal interface; 0 = off"},
    {"telemetry", "min-spacing", CA_KEY_INT, "10", NULL, 0, 3600, NULL, NULL, 0,
     "Least seconds between telemetry messages caused by signal changes (other changes: at once)"},
    {"telemetry", "quality-deadband", CA_KEY_INT, "5", NULL, 1, 100, NULL, NULL, 0,
     "Signal quality change (percentage points) that publishes telemetry"},
    {"telemetry", "signal-deadband", CA_KEY_INT, "3", NULL, 1, 100, NULL, NULL, 0,
     "RSSI/RSRP/RSRQ/SNR change (dB) that publishes telemetry"},
    {"telemetry", "homeassistant", CA_KEY_BOOL, "false", NULL, NOLIMIT, NULL, NULL, 0,
     "Publish Home Assistant MQTT discovery messages for the telemetry sensors"},
    {"telemetry", "homeassistant-prefix", CA_KEY_STRING, "homeassistant", NULL, 1, 128, NULL,
     check_topic_prefix, 0, "Home Assistant discovery prefix"},

    /* [modem] */
    {"modem", "match", CA_KEY_STRING, "", NULL, 0, 512, NULL, NULL, 0,
     "Equipment id (IMEI) or physical device path of the modem to use; empty = the first"},
    {"modem", "enable", CA_KEY_BOOL, "true", NULL, NOLIMIT, NULL, NULL, 0,
     "Enable the modem when ModemManager reports it disabled"},
    {"modem", "pin-file", CA_KEY_PATH, "", NULL, 0, 4096, NULL, NULL, 0,
     "File with the SIM PIN, used when the SIM is locked (never retried when wrong)"},

    /* [sms] */
    {"sms", "enabled", CA_KEY_BOOL, "true", NULL, NOLIMIT, NULL, NULL, 0,
     "Bridge SMS between the modem and MQTT"},
    {"sms", "keep-on-modem", CA_KEY_BOOL, "false", NULL, NOLIMIT, NULL, NULL, 0,
     "Keep received SMS on the modem for good (false: delete each one as soon as it is safely "
     "in the agent's spool on disk)"},
    {"sms", "max-parts", CA_KEY_INT, "10", NULL, 1, 255, NULL, NULL, 0,
     "Longest outgoing message, in SMS segments"},
    {"sms", "send-timeout", CA_KEY_INT, "120", NULL, 5, 3600, NULL, NULL, 0,
     "Seconds allowed for one send"},
    {"sms", "rate-limit", CA_KEY_INT, "30", NULL, 1, 100000, NULL, NULL, 0,
     "Outgoing SMS per hour"},
    {"sms", "retries", CA_KEY_INT, "3", NULL, 0, 20, NULL, NULL, 0,
     "Times a send that failed transiently (+CMS ERROR, timeout) is retried before it fails"},
    {"sms", "spool-limit", CA_KEY_INT, "1000", NULL, 1, 100000, NULL, NULL, 0,
     "Outgoing requests waiting, and received messages waiting for the broker, at most each"},
    {"sms", "dedupe-limit", CA_KEY_INT, "10000", NULL, 100, 1000000, NULL, NULL, 0,
     "Request ids (and published message ids) remembered to answer repeats"},
    {"sms", "dedupe-days", CA_KEY_INT, "30", NULL, 1, 3650, NULL, NULL, 0,
     "Days a request id (and a published message id) is remembered"},
    {"sms", "receive-timeout", CA_KEY_INT, "60", NULL, 5, 86400, NULL, NULL, 0,
     "Seconds a multipart SMS may stay incomplete before the modem storage is re-read"},
    {"sms", "resync-delay", CA_KEY_INT, "60", NULL, 0, 86400, NULL, NULL, 0,
     "Re-read the modem storage this many seconds after the last received SMS, to catch "
     "notices ModemManager dropped in a burst (disables and enables the modem; while cellular "
     "carries the traffic at most once per resync-interval); 0 = never"},
    {"sms", "resync-interval", CA_KEY_INT, "21600", NULL, 60, 604800, NULL, NULL, 0,
     "Least seconds between two automatic re-reads of the modem storage while cellular "
     "carries the traffic (each one drops the data link for a moment)"},
    {"sms", "partial-after", CA_KEY_INT, "10800", NULL, 10, 604800, NULL, NULL, 0,
     "Seconds after which a multipart SMS still missing parts is published with "
     "\"incomplete\":true and deleted from the modem"},
    {"sms", "storage-warn", CA_KEY_INT, "20", NULL, 0, 10000, NULL, NULL, 0,
     "Event sms-storage-full when this many received SMS are held on the modem; 0 = off"},

    /* [cellular] */
    {"cellular", "connection", CA_KEY_STRING, "cellular", NULL, 1, 255, NULL, NULL, 0,
     "NetworkManager connection id used for the modem; created when missing"},
    {"cellular", "apn", CA_KEY_STRING, "internet", NULL, 0, 100, NULL, NULL, 0,
     "Access point name"},
    {"cellular", "username", CA_KEY_STRING, "", NULL, 0, 256, NULL, NULL, 0, "APN user name"},
    {"cellular", "password-file", CA_KEY_PATH, "", NULL, 0, 4096, NULL, NULL, 0,
     "File whose first line is the APN password"},

    /* [commands] */
    {"commands", "allow-reboot", CA_KEY_BOOL, "false", NULL, NOLIMIT, NULL, NULL, 0,
     "Allow the reboot command (MQTT cmd/reboot and the SMS command); refused otherwise"},
    {"commands", "reboot-command", CA_KEY_STRING, "systemctl reboot", NULL, 1, 1024, NULL, NULL, 0,
     "Command run by the reboot command (split like a shell line, run without a shell)"},
    {"commands", "reboot-delay", CA_KEY_INT, "5", NULL, 0, 300, NULL, NULL, 0,
     "Seconds between answering the reboot command and running reboot-command, so the "
     "answer can go out first"},

    /* [sms-commands] */
    {"sms-commands", "enabled", CA_KEY_BOOL, "false", NULL, NOLIMIT, NULL, NULL, 0,
     "Accept commands by SMS, each starting with a one-time TOTP code (docs/commands.md)"},
    {"sms-commands", "allowed-senders", CA_KEY_STRING, "", NULL, 3, 32, NULL, ca_phone_check,
     CA_KEY_FLAG_LIST,
     "Numbers allowed to send commands, compared exactly after removing spaces - . ( ) and "
     "writing a leading 00 as +; +CC... and national forms never match each other"},
    {"sms-commands", "secret-file", CA_KEY_PATH, "", NULL, 0, 4096, NULL, NULL, 0,
     "File with the shared TOTP secret in base32 (at least 16 bytes; not readable by others)"},
    {"sms-commands", "max-failures", CA_KEY_INT, "3", NULL, 1, 100, NULL, NULL, 0,
     "Wrong or replayed codes in a row before a sender is locked out"},
    {"sms-commands", "lockout", CA_KEY_INT, "900", NULL, 1, 86400, NULL, NULL, 0,
     "Seconds a sender stays locked out; doubles with each further lockout, up to 24 h"},
    {"sms-commands", "max-failures-per-hour", CA_KEY_INT, "10", NULL, 1, 1000, NULL, NULL, 0,
     "Wrong or replayed codes per hour over all senders; beyond it no code is checked until "
     "the oldest is an hour old"},

    /* [sms-alerts] */
    {"sms-alerts", "enabled", CA_KEY_BOOL, "false", NULL, NOLIMIT, NULL, NULL, 0,
     "Send an SMS when no uplink has passed its health check for data-down-after seconds, "
     "and one when data is back"},
    {"sms-alerts", "numbers", CA_KEY_STRING, "", NULL, 3, 32, NULL, ca_phone_check,
     CA_KEY_FLAG_LIST, "Numbers that receive alert and recovery SMS"},
    {"sms-alerts", "data-down-after", CA_KEY_INT, "600", NULL, 10, 86400, NULL, NULL, 0,
     "Seconds without any healthy uplink before the alert SMS"},
    {"sms-alerts", "min-interval", CA_KEY_INT, "3600", NULL, 0, 604800, NULL, NULL, 0,
     "Least seconds between two alert SMS; an outage that starts sooner is reported once "
     "the interval has passed, if still down"},
    /* [uplink-NAME]: one group per uplink; [uplink-cellular] is implied when absent */
    {"uplink-*", "connection", CA_KEY_STRING, NULL,
     "NAME; for [uplink-cellular] the [cellular] connection", 1, 255, NULL, NULL, 0,
     "NetworkManager connection id or uuid of this uplink"},
    {"uplink-*", "priority", CA_KEY_INT, NULL, "100; 200 for [uplink-cellular]", 0, 10000, NULL,
     NULL, 0, "Lower is preferred; among equals the healthiest, then wired before cellular"},
    {"uplink-*", "activate", CA_KEY_ENUM, "always", NULL, NOLIMIT, activate_modes, NULL, 0,
     "always: keep up and probed; on-demand: up only while no better uplink is usable; "
     "never: not managed"},
    {"uplink-*", "probes", CA_KEY_STRING, NULL, "[health] probes", 1, 300, NULL,
     ca_probe_spec_check, CA_KEY_FLAG_LIST, "Probes for this uplink instead of [health] probes"},

    /* [health] */
    {"health", "probes", CA_KEY_STRING, "icmp:1.1.1.1;dns:9.9.9.9;tcp:mqtt", NULL, 1, 300, NULL,
     ca_probe_spec_check, CA_KEY_FLAG_LIST,
     "Probes sent through each uplink's own interface, first (lead) one cheapest: icmp:ADDR, "
     "dns:ADDR[:PORT], tcp:HOST:PORT, tcp:mqtt (the broker)"},
    {"health", "dns-name", CA_KEY_STRING, ".", NULL, 1, 253, NULL, ca_probe_check_dns_name, 0,
     "Name asked by dns: probes (type A); any answer counts"},
    {"health", "interval", CA_KEY_INT, "20", NULL, 1, 3600, NULL, NULL, 0,
     "Seconds between probe rounds of a healthy (or down) uplink"},
    {"health", "fast-interval", CA_KEY_INT, "2", NULL, 1, 600, NULL, NULL, 0,
     "Seconds between probe rounds once a probe failed or passive evidence came in"},
    {"health", "timeout", CA_KEY_INT, "2", NULL, 1, 60, NULL, NULL, 0,
     "Seconds to wait for one probe's answer"},
    {"health", "down-after", CA_KEY_INT, "3", NULL, 1, 100, NULL, NULL, 0,
     "Failed rounds in a row before an uplink is down"},
    {"health", "up-after", CA_KEY_INT, "3", NULL, 1, 100, NULL, NULL, 0,
     "Good rounds in a row before a down uplink is up again"},
    {"health", "hold-down", CA_KEY_INT, "60", NULL, 0, 86400, NULL, NULL, 0,
     "Seconds a recovered better uplink must stay up before traffic moves back"},
    {"health", "max-hold-down", CA_KEY_INT, "1800", NULL, 0, 86400, NULL, NULL, 0,
     "Cap of hold-down, which doubles with each further flap within flap-window"},
    {"health", "flap-window", CA_KEY_INT, "1800", NULL, 10, 86400, NULL, NULL, 0,
     "Seconds over which flaps (up to down) are counted for damping"},
    {"health", "report-interval", CA_KEY_INT, "3600", NULL, 0, 86400, NULL, NULL, 0,
     "Seconds between refreshes of <base>/link when nothing changed; 0 = only on change"},

    /* [watchdog] */
    {"watchdog", "enabled", CA_KEY_BOOL, "true", NULL, NOLIMIT, NULL, NULL, 0,
     "Recover uplinks that stay unhealthy"},
    {"watchdog", "steps", CA_KEY_ENUM, "reactivate;modem-reset;power-cycle;reboot", NULL, NOLIMIT,
     watchdog_steps, NULL, CA_KEY_FLAG_LIST,
     "Enabled recovery steps (always taken in the order reactivate, modem-reset, power-cycle, "
     "reboot)"},
    {"watchdog", "start-after", CA_KEY_INT, "30", NULL, 0, 86400, NULL, NULL, 0,
     "Seconds an uplink is down before the first step"},
    {"watchdog", "reactivate-cooldown", CA_KEY_INT, "60", NULL, 1, 86400, NULL, NULL, 0,
     "Seconds after a re-activation before the next step"},
    {"watchdog", "modem-reset-cooldown", CA_KEY_INT, "600", NULL, 1, 86400, NULL, NULL, 0,
     "Seconds after a modem reset before the next step; also the least time between two resets"},
    {"watchdog", "power-cycle-cooldown", CA_KEY_INT, "1800", NULL, 1, 86400, NULL, NULL, 0,
     "Seconds after a power cycle before the next step; also the least time between two"},
    {"watchdog", "reboot-cooldown", CA_KEY_INT, "3600", NULL, 1, 86400, NULL, NULL, 0,
     "Seconds after a reboot request before the next step; also the least time between two"},
    {"watchdog", "modem-reset-budget", CA_KEY_INT, "6", NULL, 0, 50, NULL, NULL, 0,
     "Modem resets allowed per 24 h"},
    {"watchdog", "power-cycle-budget", CA_KEY_INT, "3", NULL, 0, 50, NULL, NULL, 0,
     "Power cycles allowed per 24 h"},
    {"watchdog", "reboot-budget", CA_KEY_INT, "2", NULL, 0, 50, NULL, NULL, 0,
     "Reboots allowed per 24 h (counted across reboots, in state-dir)"},
    {"watchdog", "healthy-reset", CA_KEY_INT, "600", NULL, 1, 86400, NULL, NULL, 0,
     "Seconds of health after which the ladder starts over at reactivate"},
    {"watchdog", "power-cycle-command", CA_KEY_STRING, "", NULL, 0, 1024, NULL, NULL, 0,
     "Command that power-cycles the modem (split like a shell line, run without a shell); "
     "empty: step skipped"},
    {"watchdog", "reboot", CA_KEY_BOOL, "false", NULL, NOLIMIT, NULL, NULL, 0,
     "Allow rebooting the device when no uplink is usable after the other steps"},
    {"watchdog", "reboot-command", CA_KEY_STRING, "", NULL, 0, 1024, NULL, NULL, 0,
     "Command run to reboot; empty: ask systemd-logind (Reboot) over D-Bus"},
    {"watchdog", "command-timeout", CA_KEY_INT, "60", NULL, 1, 3600, NULL, NULL, 0,
     "Seconds a power-cycle or reboot command may run before it is killed"},
    {NULL},
};

const CaConfigKey *
ca_config_keys(void)
{
    return keys;
}

/*****************************************************************************/
/* Validators */

gboolean
ca_config_check_device_id(const char *value, char **why)
{
    for (const char *p = value; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '.' && *p != '_' && *p != '-') {
            *why = g_strdup_printf("character '%c' not allowed (use A-Z a-z 0-9 . _ -)", *p);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
check_topic_prefix(const char *value, char **why)
{
    if (strpbrk(value, "+#")) {
        *why = g_strdup("MQTT wildcards + and # are not allowed");
        return FALSE;
    }
    if (value[0] == '/' || g_str_has_suffix(value, "/") || strstr(value, "//")) {
        *why = g_strdup("empty topic levels are not allowed");
        return FALSE;
    }
    if (value[0] == '$') {
        *why = g_strdup("topics starting with $ are reserved by the broker");
        return FALSE;
    }
    return TRUE;
}

static gboolean
check_client_id(const char *value, char **why)
{
    for (const char *p = value; *p; p++) {
        if (g_ascii_iscntrl(*p)) {
            *why = g_strdup("control characters are not allowed");
            return FALSE;
        }
    }
    return TRUE;
}

/*****************************************************************************/
/* Snapshot */

typedef struct {
    char *text; /* as written (unescaped) or the default */
    char *file; /* NULL when defaulted */
    int line;   /* 0 when unknown */
    gint64 i;   /* CA_KEY_INT */
    gboolean b; /* CA_KEY_BOOL */
    GStrv list; /* CA_KEY_FLAG_LIST */
} Value;

struct _CaConfig {
    gint ref;
    GHashTable *values;  /* "group\037key" -> Value* */
    GPtrArray *warnings; /* char*, NULL-terminated */
    GPtrArray *files;    /* char*, NULL-terminated */
    GPtrArray *errors;   /* while loading only */
    GHashTable *groups;  /* group names present in files -> NULL */
};

static void
value_free(gpointer data)
{
    Value *v = data;

    g_free(v->text);
    g_free(v->file);
    g_strfreev(v->list);
    g_free(v);
}

static char *
vkey(const char *group, const char *key)
{
    return g_strconcat(group, "\037", key, NULL);
}

static CaConfig *
config_new(void)
{
    CaConfig *c = g_new0(CaConfig, 1);

    c->ref = 1;
    c->values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, value_free);
    c->warnings = g_ptr_array_new_with_free_func(g_free);
    c->files = g_ptr_array_new_with_free_func(g_free);
    c->errors = g_ptr_array_new_with_free_func(g_free);
    c->groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return c;
}

CaConfig *
ca_config_ref(CaConfig *config)
{
    g_atomic_int_inc(&config->ref);
    return config;
}

void
ca_config_unref(CaConfig *config)
{
    if (!config || !g_atomic_int_dec_and_test(&config->ref))
        return;
    g_hash_table_unref(config->values);
    g_ptr_array_unref(config->warnings);
    g_ptr_array_unref(config->files);
    g_clear_pointer(&config->errors, g_ptr_array_unref);
    g_hash_table_unref(config->groups);
    g_free(config);
}

static gboolean
group_matches(const CaConfigKey *k, const char *group)
{
    if (g_str_has_suffix(k->group, "*")) {
        gsize n = strlen(k->group) - 1;
        return strncmp(k->group, group, n) == 0 && group[n] != '\0';
    }
    return strcmp(k->group, group) == 0;
}

static const CaConfigKey *
find_key(const char *group, const char *key)
{
    for (const CaConfigKey *k = keys; k->group; k++) {
        if (strcmp(k->key, key) == 0 && group_matches(k, group))
            return k;
    }
    return NULL;
}

static gboolean
group_known(const char *group)
{
    for (const CaConfigKey *k = keys; k->group; k++) {
        if (group_matches(k, group))
            return TRUE;
    }
    return FALSE;
}

static const Value *
lookup(const CaConfig *config, const char *group, const char *key)
{
    g_autofree char *vk = vkey(group, key);
    const Value *v = g_hash_table_lookup(config->values, vk);

    if (!v)
        g_critical("config: no value for [%s] %s (not in the key table?)", group, key);
    return v;
}

const char *
ca_config_get_string(const CaConfig *config, const char *group, const char *key)
{
    const Value *v = lookup(config, group, key);
    return v ? v->text : "";
}

gint64
ca_config_get_int(const CaConfig *config, const char *group, const char *key)
{
    const Value *v = lookup(config, group, key);
    return v ? v->i : 0;
}

gboolean
ca_config_get_bool(const CaConfig *config, const char *group, const char *key)
{
    const Value *v = lookup(config, group, key);
    return v ? v->b : FALSE;
}

const char *const *
ca_config_get_list(const CaConfig *config, const char *group, const char *key)
{
    static const char *const empty[] = {NULL};
    const Value *v = lookup(config, group, key);
    return v && v->list ? (const char *const *) v->list : empty;
}

gboolean
ca_config_is_set(const CaConfig *config, const char *group, const char *key)
{
    g_autofree char *vk = vkey(group, key);
    const Value *v = g_hash_table_lookup(config->values, vk);
    return v && v->file;
}

/* g_ptr_array_sort hands over pointers to the elements. */
static int
compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

GStrv
ca_config_get_groups_with_prefix(const CaConfig *config, const char *prefix)
{
    GPtrArray *out = g_ptr_array_new();
    GHashTableIter it;
    gpointer group;

    g_hash_table_iter_init(&it, config->groups);
    while (g_hash_table_iter_next(&it, &group, NULL)) {
        if (g_str_has_prefix(group, prefix))
            g_ptr_array_add(out, g_strdup(group));
    }
    g_ptr_array_sort(out, compare_names);
    g_ptr_array_add(out, NULL);
    return (GStrv) g_ptr_array_free(out, FALSE);
}

const char *const *
ca_config_get_warnings(const CaConfig *config)
{
    return (const char *const *) config->warnings->pdata;
}

const char *const *
ca_config_get_files(const CaConfig *config)
{
    return (const char *const *) config->files->pdata;
}

/*****************************************************************************/
/* Loading */

static void G_GNUC_PRINTF(6, 7) problem(GPtrArray *into, const char *file, int line,
                                        const char *group, const char *key, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *what = NULL;
    GString *s = g_string_new(NULL);

    va_start(ap, fmt);
    what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (file)
        g_string_append(s, file);
    if (file && line > 0)
        g_string_append_printf(s, ":%d", line);
    if (file)
        g_string_append(s, ": ");
    if (group)
        g_string_append_printf(s, "[%s] ", group);
    if (key)
        g_string_append_printf(s, "%s: ", key);
    g_string_append(s, what);
    g_ptr_array_add(into, g_string_free(s, FALSE));
}

/* Lines of groups and keys, from a plain scan of the text (GKeyFile keeps none). */
typedef struct {
    GHashTable *lines; /* "group\037key" or "group" -> line number */
    int bad_line;      /* first line GKeyFile cannot parse, 0 if none found */
} LineMap;

static void
scan_lines(const char *data, gsize len, LineMap *map)
{
    g_auto(GStrv) lines = NULL;
    g_autofree char *copy = g_strndup(data, len);
    g_autofree char *group = NULL;

    map->lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    map->bad_line = 0;
    lines = g_strsplit(copy, "\n", -1);
    for (int n = 0; lines[n]; n++) {
        g_autofree char *t = g_strstrip(g_strdup(lines[n]));
        char *eq;

        if (t[0] == '\0' || t[0] == '#')
            continue;
        if (t[0] == '[') {
            char *end = strchr(t, ']');
            if (!end || end[1] != '\0') {
                if (!map->bad_line)
                    map->bad_line = n + 1;
                continue;
            }
            g_free(group);
            group = g_strndup(t + 1, end - t - 1);
            g_hash_table_replace(map->lines, g_strdup(group), GINT_TO_POINTER(n + 1));
            continue;
        }
        eq = strchr(t, '=');
        if (!eq || !group) {
            if (!map->bad_line)
                map->bad_line = n + 1;
            continue;
        }
        *eq = '\0';
        g_strchomp(t);
        g_hash_table_replace(map->lines, vkey(group, t), GINT_TO_POINTER(n + 1));
    }
}

static int
line_of(const LineMap *map, const char *group, const char *key)
{
    g_autofree char *vk = key ? vkey(group, key) : g_strdup(group);
    return GPOINTER_TO_INT(g_hash_table_lookup(map->lines, vk));
}

/* A raw value's text and escapes (GKeyFile's \s \n \t \r \\); NULL when fine, else the
 * problem. Checked before g_key_file_get_string(), which (GLib 2.74) returns a half-parsed
 * value together with its error for a bad escape, and sets its GError twice (a GLib
 * warning) when a bad escape is followed by a trailing backslash. */
static char *
check_raw(const char *raw)
{
    if (!g_utf8_validate(raw, -1, NULL))
        return g_strdup("not valid UTF-8");
    for (const char *p = raw; *p; p++) {
        if (*p != '\\')
            continue;
        p++;
        if (*p == '\0')
            return g_strdup("ends in an escape character (write \\\\ for a backslash)");
        if (!strchr("sntr\\", *p)) {
            g_autofree char *seq = g_strndup(p, g_utf8_next_char(p) - p);
            return g_strdup_printf("invalid escape sequence \"\\%s\" (write \\\\ for a "
                                   "backslash)",
                                   seq);
        }
    }
    return NULL;
}

/* Merge one file's values over what earlier files set. */
static void
load_one(CaConfig *c, const char *name, const char *data, gsize len)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) groups = NULL;
    LineMap map;

    g_ptr_array_add(c->files, g_strdup(name));
    scan_lines(data, len, &map);
    if (!g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, &error)) {
        problem(c->errors, name, map.bad_line, NULL, NULL, "syntax error: %s", error->message);
        g_hash_table_unref(map.lines);
        return;
    }
    groups = g_key_file_get_groups(kf, NULL);
    for (int gi = 0; groups[gi]; gi++) {
        const char *group = groups[gi];
        g_auto(GStrv) gkeys = g_key_file_get_keys(kf, group, NULL, NULL);

        if (!group_known(group)) {
            problem(c->warnings, name, line_of(&map, group, NULL), group, NULL,
                    "unknown group, ignored");
            continue;
        }
        g_hash_table_add(c->groups, g_strdup(group));
        for (int ki = 0; gkeys && gkeys[ki]; ki++) {
            const char *key = gkeys[ki];
            int line = line_of(&map, group, key);
            g_autoptr(GError) verr = NULL;
            g_autofree char *raw = NULL;
            g_autofree char *why = NULL;
            g_autofree char *text = NULL;
            Value *v;

            if (!find_key(group, key)) {
                problem(c->warnings, name, line, group, key, "unknown key, ignored");
                continue;
            }
            raw = g_key_file_get_value(kf, group, key, NULL);
            why = raw ? check_raw(raw) : g_strdup("cannot be read");
            if (why) {
                problem(c->errors, name, line, group, key, "%s", why);
                continue;
            }
            text = g_key_file_get_string(kf, group, key, &verr);
            if (!text || verr) {
                problem(c->errors, name, line, group, key, "%s",
                        verr ? verr->message : "cannot be read");
                continue;
            }
            v = g_new0(Value, 1);
            v->text = g_strstrip(g_steal_pointer(&text));
            v->file = g_strdup(name);
            v->line = line;
            g_hash_table_replace(c->values, vkey(group, key), v);
        }
    }
    g_hash_table_unref(map.lines);
}

static void
set_default(CaConfig *c, const char *group, const CaConfigKey *k)
{
    g_autofree char *vk = vkey(group, k->key);
    Value *v;

    if (g_hash_table_contains(c->values, vk) || !k->def)
        return;
    v = g_new0(Value, 1);
    v->text = g_strdup(k->def);
    g_hash_table_replace(c->values, g_steal_pointer(&vk), v);
}

static gboolean
parse_bool(const char *s, gboolean *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (gsize i = 0; i < G_N_ELEMENTS(yes); i++) {
        if (g_ascii_strcasecmp(s, yes[i]) == 0) {
            *out = TRUE;
            return TRUE;
        }
        if (g_ascii_strcasecmp(s, no[i]) == 0) {
            *out = FALSE;
            return TRUE;
        }
    }
    return FALSE;
}

/* Validate one element; NULL when fine, else the problem. */
static char *
check_text(const CaConfigKey *k, const char *text, Value *v)
{
    g_autofree char *why = NULL;
    glong n;

    if (!g_utf8_validate(text, -1, NULL))
        return g_strdup("not valid UTF-8");
    n = g_utf8_strlen(text, -1);
    switch (k->type) {
    case CA_KEY_INT:
        if (!g_ascii_string_to_signed(text, 10, k->min, k->max, &v->i, NULL))
            return g_strdup_printf("\"%s\" is not an integer from %" G_GINT64_FORMAT
                                   " to %" G_GINT64_FORMAT,
                                   text, k->min, k->max);
        break;
    case CA_KEY_BOOL:
        if (!parse_bool(text, &v->b))
            return g_strdup_printf("\"%s\" is not a boolean (true or false)", text);
        break;
    case CA_KEY_ENUM:
        if (!g_strv_contains(k->choices, text)) {
            g_autofree char *all = g_strjoinv(", ", (char **) k->choices);
            return g_strdup_printf("\"%s\" is not one of: %s", text, all);
        }
        break;
    case CA_KEY_PATH:
        if (n > 0 && !g_path_is_absolute(text))
            return g_strdup_printf("\"%s\" is not an absolute path", text);
        G_GNUC_FALLTHROUGH;
    case CA_KEY_STRING:
        if (n < k->min || n > k->max) {
            if (k->min == k->max)
                return g_strdup_printf("must be %" G_GINT64_FORMAT " characters", k->min);
            return g_strdup_printf("length %ld is outside %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT,
                                   n, k->min, k->max);
        }
        break;
    }
    if (k->check && !k->check(text, &why))
        return g_strdup_printf("\"%s\": %s", text, why);
    return NULL;
}

static void
validate_value(CaConfig *c, const char *group, const CaConfigKey *k)
{
    g_autofree char *vk = vkey(group, k->key);
    Value *v = g_hash_table_lookup(c->values, vk);

    if (!v)
        return;
    if (k->flags & CA_KEY_FLAG_LIST) {
        g_auto(GStrv) parts = g_strsplit(v->text, ";", -1);
        GPtrArray *list = g_ptr_array_new();

        for (int i = 0; parts[i]; i++) {
            g_autofree char *why = NULL;
            char *p = g_strstrip(parts[i]);

            if (*p == '\0')
                continue;
            why = check_text(k, p, v);
            if (why)
                problem(c->errors, v->file, v->line, group, k->key, "%s", why);
            g_ptr_array_add(list, g_strdup(p));
        }
        g_ptr_array_add(list, NULL);
        v->list = (GStrv) g_ptr_array_free(list, FALSE);
    } else {
        g_autofree char *why = check_text(k, v->text, v);
        if (why)
            problem(c->errors, v->file, v->line, group, k->key, "%s", why);
    }
}

/* Defaults that depend on other values or on the machine. */
static void
resolve_derived(CaConfig *c)
{
    g_autofree char *dk = vkey("agent", "device-id");
    g_autofree char *pk = vkey("mqtt", "port");
    g_autofree char *ck = vkey("mqtt", "client-id");
    Value *v;

    if (!g_hash_table_contains(c->values, dk)) {
        const char *host = g_get_host_name();
        g_autofree char *why = NULL;

        v = g_new0(Value, 1);
        v->text = g_strdup(host);
        g_hash_table_replace(c->values, g_strdup(dk), v);
        if (strlen(host) > 64 || !ca_config_check_device_id(host, &why))
            problem(c->errors, NULL, 0, "agent", "device-id",
                    "the host name \"%s\" is not a valid device id (%s); set device-id", host,
                    why ? why : "longer than 64 characters");
    }
    if (!g_hash_table_contains(c->values, pk)) {
        v = g_new0(Value, 1);
        v->i = ca_config_get_bool(c, "mqtt", "tls") ? 8883 : 1883;
        v->text = g_strdup_printf("%" G_GINT64_FORMAT, v->i);
        g_hash_table_replace(c->values, g_strdup(pk), v);
    }
    if (!g_hash_table_contains(c->values, ck)) {
        v = g_new0(Value, 1);
        v->text = g_strdup(ca_config_get_string(c, "agent", "device-id"));
        g_hash_table_replace(c->values, g_strdup(ck), v);
    }
}

/* group's key must not be empty when group's enabled=true. */
static void
require_when_enabled(CaConfig *c, const char *group, const char *key)
{
    g_autofree char *ek = vkey(group, "enabled");
    const Value *enabled = g_hash_table_lookup(c->values, ek);

    if (ca_config_get_bool(c, group, "enabled") && !*ca_config_get_string(c, group, key))
        problem(c->errors, enabled->file, enabled->line, group, key, "required when enabled=true");
}

/* Rules that involve more than one key. */
static void
cross_check(CaConfig *c)
{
    const char *cert = ca_config_get_string(c, "mqtt", "cert-file");
    const char *key = ca_config_get_string(c, "mqtt", "key-file");

    g_auto(GStrv) uplinks = ca_config_get_groups_with_prefix(c, "uplink-");

    /* Every uplink needs at least one probe to be judged by. */
    if (!ca_config_get_list(c, "health", "probes")[0]) {
        g_autofree char *vk = vkey("health", "probes");
        const Value *v = g_hash_table_lookup(c->values, vk);
        problem(c->errors, v->file, v->line, "health", "probes", "at least one probe is needed");
    }
    for (int i = 0; uplinks[i]; i++) {
        g_autofree char *vk = vkey(uplinks[i], "probes");
        const Value *v = g_hash_table_lookup(c->values, vk);
        if (v && !(v->list && v->list[0]))
            problem(c->errors, v->file, v->line, uplinks[i], "probes",
                    "at least one probe is needed (omit the key for [health] probes)");
    }
    if ((*cert != '\0') != (*key != '\0')) {
        g_autofree char *vk = vkey("mqtt", *cert ? "cert-file" : "key-file");
        const Value *v = g_hash_table_lookup(c->values, vk);
        problem(c->errors, v->file, v->line, "mqtt", *cert ? "key-file" : "cert-file",
                "required when %s is set", *cert ? "cert-file" : "key-file");
    }
    require_when_enabled(c, "sms-commands", "secret-file");
    require_when_enabled(c, "sms-commands", "allowed-senders");
    require_when_enabled(c, "sms-alerts", "numbers");
}

static CaConfig *
finish(CaConfig *c, GError **error)
{
    /* Defaults, then validation of every value, then derived values. */
    for (const CaConfigKey *k = keys; k->group; k++) {
        if (g_str_has_suffix(k->group, "*")) {
            g_autofree char *prefix = g_strndup(k->group, strlen(k->group) - 1);
            g_auto(GStrv) groups = ca_config_get_groups_with_prefix(c, prefix);
            for (int i = 0; groups[i]; i++) {
                set_default(c, groups[i], k);
                validate_value(c, groups[i], k);
            }
        } else {
            set_default(c, k->group, k);
            validate_value(c, k->group, k);
        }
    }
    if (c->errors->len == 0) {
        resolve_derived(c);
        cross_check(c);
    }
    if (c->errors->len > 0) {
        g_autofree char *all = NULL;

        g_ptr_array_add(c->errors, NULL);
        all = g_strjoinv("\n", (char **) c->errors->pdata);
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_CONFIG, all);
        ca_config_unref(c);
        return NULL;
    }
    g_clear_pointer(&c->errors, g_ptr_array_unref);
    g_ptr_array_add(c->warnings, NULL);
    g_ptr_array_add(c->files, NULL);
    return c;
}

CaConfig *
ca_config_load_from_data(const char *name, const char *data, gsize len, GError **error)
{
    CaConfig *c = config_new();

    load_one(c, name, data, len);
    return finish(c, error);
}

CaConfig *
ca_config_load(const char *path, GError **error)
{
    CaConfig *c = config_new();
    const char *main_path = path ? path : CA_CONFIG_DEFAULT_PATH;
    g_autofree char *dropin_dir = g_strconcat(main_path, ".d", NULL);
    g_autoptr(GDir) dir = NULL;
    g_autoptr(GPtrArray) dropins = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *data = NULL;
    g_autoptr(GError) ferr = NULL;
    gsize len = 0;

    if (g_file_get_contents(main_path, &data, &len, &ferr)) {
        load_one(c, main_path, data, len);
    } else if (path || !g_error_matches(ferr, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
        problem(c->errors, main_path, 0, NULL, NULL, "cannot read: %s", ferr->message);
    }
    dir = g_dir_open(dropin_dir, 0, NULL);
    for (const char *n = dir ? g_dir_read_name(dir) : NULL; n; n = g_dir_read_name(dir)) {
        if (g_str_has_suffix(n, ".conf") && n[0] != '.')
            g_ptr_array_add(dropins, g_build_filename(dropin_dir, n, NULL));
    }
    g_ptr_array_sort(dropins, compare_names);
    for (guint i = 0; i < dropins->len; i++) {
        const char *f = dropins->pdata[i];
        g_autofree char *ddata = NULL;
        g_autoptr(GError) derr = NULL;
        gsize dlen = 0;

        if (!g_file_get_contents(f, &ddata, &dlen, &derr)) {
            problem(c->errors, f, 0, NULL, NULL, "cannot read: %s", derr->message);
            continue;
        }
        load_one(c, f, ddata, dlen);
    }
    return finish(c, error);
}

/*****************************************************************************/
/* Comparison and output */

static gboolean
key_equal(const CaConfig *a, const CaConfig *b, const char *group, const char *key)
{
    g_autofree char *vk = vkey(group, key);
    const Value *va = g_hash_table_lookup(a->values, vk);
    const Value *vb = g_hash_table_lookup(b->values, vk);

    return g_strcmp0(va ? va->text : NULL, vb ? vb->text : NULL) == 0;
}

gboolean
ca_config_group_equal(const CaConfig *a, const CaConfig *b, const char *group)
{
    gboolean prefix = g_str_has_suffix(group, "*");
    g_autofree char *stem = prefix ? g_strndup(group, strlen(group) - 1) : g_strdup(group);
    g_auto(GStrv) ga = ca_config_get_groups_with_prefix(a, stem);
    g_auto(GStrv) gb = ca_config_get_groups_with_prefix(b, stem);

    if (prefix && !g_strv_equal((const char *const *) ga, (const char *const *) gb))
        return FALSE;
    for (const CaConfigKey *k = keys; k->group; k++) {
        if (prefix) {
            if (strcmp(k->group, group) != 0)
                continue;
            for (int i = 0; ga[i]; i++) {
                if (!key_equal(a, b, ga[i], k->key))
                    return FALSE;
            }
        } else if (strcmp(k->group, group) == 0 && !key_equal(a, b, group, k->key)) {
            return FALSE;
        }
    }
    return TRUE;
}

static void
dump_group(const CaConfig *c, GString *out, const char *table_group, const char *group)
{
    g_string_append_printf(out, "[%s]\n", group);
    for (const CaConfigKey *k = keys; k->group; k++) {
        g_autofree char *vk = NULL;
        const Value *v;

        if (strcmp(k->group, table_group) != 0)
            continue;
        vk = vkey(group, k->key);
        v = g_hash_table_lookup(c->values, vk);
        if (!v)
            continue;
        g_string_append_printf(out, "%s=%s", k->key,
                               (k->flags & CA_KEY_FLAG_SECRET) && *v->text ? "********" : v->text);
        if (v->file)
            g_string_append_printf(out, "    # %s:%d\n", v->file, v->line);
        else
            g_string_append(out, "    # default\n");
    }
    g_string_append_c(out, '\n');
}

char *
ca_config_dump(const CaConfig *config)
{
    GString *out = g_string_new(NULL);
    const char *last = NULL;

    for (const CaConfigKey *k = keys; k->group; k++) {
        if (last && strcmp(last, k->group) == 0)
            continue;
        last = k->group;
        if (g_str_has_suffix(k->group, "*")) {
            g_autofree char *stem = g_strndup(k->group, strlen(k->group) - 1);
            g_auto(GStrv) groups = ca_config_get_groups_with_prefix(config, stem);
            for (int i = 0; groups[i]; i++)
                dump_group(config, out, k->group, groups[i]);
        } else {
            dump_group(config, out, k->group, k->group);
        }
    }
    return g_string_free(out, FALSE);
}

static char *
range_text(const CaConfigKey *k)
{
    switch (k->type) {
    case CA_KEY_INT:
        return g_strdup_printf("%" G_GINT64_FORMAT "-%" G_GINT64_FORMAT, k->min, k->max);
    case CA_KEY_BOOL:
        return g_strdup("true, false");
    case CA_KEY_ENUM:
        return g_strjoinv(", ", (char **) k->choices);
    case CA_KEY_PATH:
        return g_strdup("absolute path");
    case CA_KEY_STRING:
        return g_strdup_printf("%" G_GINT64_FORMAT "-%" G_GINT64_FORMAT " chars", k->min, k->max);
    }
    g_assert_not_reached();
}

static const char *
type_text(const CaConfigKey *k)
{
    switch (k->type) {
    case CA_KEY_STRING:
        return (k->flags & CA_KEY_FLAG_LIST) ? "list" : "string";
    case CA_KEY_INT:
        return "integer";
    case CA_KEY_BOOL:
        return "boolean";
    case CA_KEY_ENUM:
        return "choice";
    case CA_KEY_PATH:
        return (k->flags & CA_KEY_FLAG_LIST) ? "path list" : "path";
    }
    g_assert_not_reached();
}

char *
ca_config_reference_markdown(void)
{
    GString *out = g_string_new("| group | key | type | default | range | meaning |\n"
                                "|---|---|---|---|---|---|\n");

    for (const CaConfigKey *k = keys; k->group; k++) {
        g_autofree char *range = range_text(k);
        const char *def = k->def ? k->def : k->def_doc;

        g_string_append_printf(out, "| `[%s]` | `%s` | %s | %s%s%s | %s | %s |\n", k->group, k->key,
                               type_text(k), *def && k->def ? "`" : "", *def ? def : "(empty)",
                               *def && k->def ? "`" : "", range, k->doc);
    }
    return g_string_free(out, FALSE);
}

char *
ca_config_reference_ini(void)
{
    GString *out = g_string_new(
        "# cellagent configuration: /etc/cellagent/cellagent.conf\n"
        "# Drop-ins in /etc/cellagent/cellagent.conf.d/*.conf are read after this file,\n"
        "# in name order; a later file wins. Every key is listed with its default;\n"
        "# uncomment to change. Validate with: cellagent --check-config\n"
        "# (generated from the key table in agent/core/config.c: scripts/update-config-docs)\n");
    const char *last = NULL;

    for (const CaConfigKey *k = keys; k->group; k++) {
        g_autofree char *range = range_text(k);

        if (!last || strcmp(last, k->group) != 0) {
            if (g_str_has_suffix(k->group, "*")) {
                g_autofree char *stem = g_strndup(k->group, strlen(k->group) - 1);
                g_string_append_printf(out, "\n#[%sNAME]\n", stem);
            } else {
                g_string_append_printf(out, "\n[%s]\n", k->group);
            }
            last = k->group;
        }
        g_string_append_printf(out, "# %s (%s; %s", k->doc, type_text(k), range);
        if (!k->def)
            g_string_append_printf(out, "; default: %s", k->def_doc);
        g_string_append(out, ")\n");
        g_string_append_printf(out, "#%s=%s\n", k->key, k->def ? k->def : "");
    }
    return g_string_free(out, FALSE);
}
