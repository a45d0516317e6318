/* config-keys: the key table, the single source of every key's type, default, range and
 * meaning (validation, --check-config, README.md, config/cellagent.conf and the typed
 * settings loaders all read it), and the validators the table names.
 * Does not own: parsing files (config.c), documentation output (config-doc.c). */
#include "config.h"

#include "probe-spec.h"
#include "sms-codec.h"
#include "sms-command.h"
#include "usage-settings.h"

#include <string.h>

/*****************************************************************************/
/* The key table */

static const char *const log_levels[] = {"error", "warning", "info", "debug", NULL};
static const char *const network_time_modes[] = {"set", "use", "off", NULL};
static const char *const protocols[] = {"5", "3.1.1", NULL};
static const char *const tls_versions[] = {"tlsv1.2", "tlsv1.3", NULL};
static const char *const activate_modes[] = {"always", "on-demand", "never", NULL};
static const char *const watchdog_steps[] = {"reactivate", "modem-reset", "power-cycle", "reboot",
                                             NULL};

static const char *const cycle_kinds[] = {"monthly", "weekly", "daily", "days", NULL};
static const char *const at_limit_actions[] = {"alert", "essential-only", "disconnect",
                                               "next-uplink", NULL};
static const char *const units[] = {"binary", "decimal", NULL};
static const char *const economy_modes[] = {"auto", "on", "off", NULL};

static gboolean check_topic_prefix(const char *value, char **why);
static gboolean check_client_id(const char *value, char **why);
static gboolean check_allowed_group(const char *value, char **why);

#define NOLIMIT 0, 0
static const CaConfigKey keys[] = {
    /* [agent] */
    {"agent", "device-id", CA_KEY_STRING, NULL, "hostname", 1, 64, NULL, ca_config_check_device_id,
     CA_KEY_FLAG_LOCAL, "Device identity in topic names: 1-64 of A-Z a-z 0-9 . _ -"},
    {"agent", "state-dir", CA_KEY_PATH, "/var/lib/cellagent", NULL, 1, 4096, NULL, NULL,
     CA_KEY_FLAG_LOCAL, "Directory for spools, dedupe sets and counters (created when missing)"},
    {"agent", "runtime-dir", CA_KEY_PATH, "/run/cellagent", NULL, 1, 4096, NULL, NULL,
     CA_KEY_FLAG_LOCAL,
     "Directory for status.json, the running agent's status that cellagent --status reads "
     "(systemd's RuntimeDirectory; created when missing)"},
    {"agent", "log-level", CA_KEY_ENUM, "info", NULL, NOLIMIT, log_levels, NULL, 0,
     "Log verbosity: error, warning, info or debug"},
    {"agent", "network-time", CA_KEY_ENUM, "set", NULL, NOLIMIT, network_time_modes, NULL, 0,
     "While NTP has not synchronised and the modem's network time differs by more than a "
     "minute: set = set the system clock through timedated (use network time for SMS command "
     "codes if refused), use = only use network time for SMS command codes, off = the system "
     "clock alone"},

    /* [diagnose] */
    {"diagnose", "max-size", CA_KEY_INT, "1048576", NULL, 1024, 16777216, NULL, NULL, 0,
     "Largest support bundle cmd/diagnose sends (bytes of tar.gz); a larger one is refused"},
    {"diagnose", "chunk-size", CA_KEY_INT, "49152", NULL, 1024, 196608, NULL, NULL, 0,
     "Bytes of the bundle per <base>/diagnose/<bundle>/<n> message (base64 adds a third)"},

    /* [mqtt] */
    {"mqtt", "host", CA_KEY_STRING, "localhost", NULL, 1, 253, NULL, NULL, 0,
     "Broker host name or address"},
    {"mqtt", "port", CA_KEY_INT, NULL, "1883, or 8883 when tls=true", 1, 65535, NULL, NULL, 0,
     "Broker TCP port"},
    {"mqtt", "client-id", CA_KEY_STRING, NULL, "device-id", 1, 128, NULL, check_client_id, 0,
     "MQTT client identifier"},
    {"mqtt", "username", CA_KEY_STRING, "", NULL, 0, 256, NULL, NULL, CA_KEY_FLAG_CREDENTIAL,
     "User name for broker authentication (empty: none)"},
    {"mqtt", "password-file", CA_KEY_PATH, "", NULL, 0, 4096, NULL, NULL, CA_KEY_FLAG_CREDENTIAL,
     "File whose first line is the broker password (mode 0600, owned by root or the agent's user)"},
    {"mqtt", "topic-prefix", CA_KEY_STRING, "cellagent", NULL, 1, 128, NULL, check_topic_prefix, 0,
     "Base topic is <topic-prefix>/<device-id>"},
    {"mqtt", "keepalive", CA_KEY_INT, "60", NULL, 5, 3600, NULL, NULL, 0,
     "MQTT keepalive in seconds"},
    {"mqtt", "protocol", CA_KEY_ENUM, "5", NULL, NOLIMIT, protocols, NULL, 0,
     "MQTT protocol version: 5 or 3.1.1"},
    {"mqtt", "tls", CA_KEY_BOOL, "false", NULL, NOLIMIT, NULL, NULL, 0,
     "Connect with TLS (hostname verification on)"},
    {"mqtt", "ca-file", CA_KEY_PATH, "", NULL, 0, 4096, NULL, NULL, CA_KEY_FLAG_CREDENTIAL,
     "CA certificates (PEM); empty with tls=true: the system trust store"},
    {"mqtt", "cert-file", CA_KEY_PATH, "", NULL, 0, 4096, NULL, NULL, CA_KEY_FLAG_CREDENTIAL,
     "Client certificate (PEM) for TLS client authentication"},
    {"mqtt", "key-file", CA_KEY_PATH, "", NULL, 0, 4096, NULL, NULL, CA_KEY_FLAG_CREDENTIAL,
     "Client private key (PEM)"},
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
    {"modem", "pin-file", CA_KEY_PATH, "", NULL, 0, 4096, NULL, NULL, CA_KEY_FLAG_CREDENTIAL,
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
     "Seconds allowed to create a message in ModemManager; the send itself waits as long as "
     "ModemManager may take (300 s per part), so a stalled ModemManager never sends it twice"},
    {"sms", "rate-limit", CA_KEY_INT, "30", NULL, 1, 100000, NULL, NULL, 0,
     "Outgoing SMS segments per hour (a message of 3 parts counts 3, as operators bill it)"},
    {"sms", "allowed-destinations", CA_KEY_STRING, "", NULL, 2, 16, NULL,
     ca_sms_destination_entry_check, CA_KEY_FLAG_LIST,
     "Where sms/out may send: international prefixes (+2547) or exact numbers; empty = any "
     "number of 7 digits or more. Shorter numbers (short codes, premium services) only when "
     "listed exactly"},
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
    {"cellular", "username", CA_KEY_STRING, "", NULL, 0, 256, NULL, NULL, CA_KEY_FLAG_CREDENTIAL,
     "APN user name"},
    {"cellular", "password-file", CA_KEY_PATH, "", NULL, 0, 4096, NULL, NULL,
     CA_KEY_FLAG_CREDENTIAL,
     "File whose first line is the APN password (mode 0600, owned by root or the agent's user)"},

    /* [commands] */
    {"commands", "allow-reboot", CA_KEY_BOOL, "false", NULL, NOLIMIT, NULL, NULL, 0,
     "Allow the reboot command (MQTT cmd/reboot and the SMS command); refused otherwise"},
    {"commands", "reboot-command", CA_KEY_STRING, "systemctl reboot", NULL, 1, 1024, NULL, NULL,
     CA_KEY_FLAG_LOCAL,
     "Command run by the reboot command (split like a shell line, run without a shell)"},
    {"commands", "reboot-delay", CA_KEY_INT, "5", NULL, 0, 300, NULL, NULL, 0,
     "Seconds between answering the reboot command and running reboot-command, so the "
     "answer can go out first"},

    /* [sms-commands] */
    {"sms-commands", "enabled", CA_KEY_BOOL, "false", NULL, NOLIMIT, NULL, NULL, 0,
     "Accept commands by SMS, each starting with a one-time TOTP code (docs/commands.md)"},
    {"sms-commands", "allowed-senders", CA_KEY_STRING, "", NULL, 3, 32, NULL,
     ca_phone_check_international, CA_KEY_FLAG_LIST,
     "International numbers (+CC... or 00CC...) allowed to send commands, compared exactly "
     "after removing spaces - . ( ); national forms are refused (a sender name can spell one)"},
    {"sms-commands", "secret-file", CA_KEY_PATH, "", NULL, 0, 4096, NULL, NULL,
     CA_KEY_FLAG_CREDENTIAL,
     "File with the shared TOTP secret in base32 (at least 16 bytes; not readable by others)"},
    {"sms-commands", "lockout", CA_KEY_INT, "3600", NULL, 60, 86400, NULL, NULL, 0,
     "Seconds every SMS command is refused once max-failures-per-hour codes failed; kept "
     "across restarts"},
    {"sms-commands", "max-failures-per-hour", CA_KEY_INT, "10", NULL, 1, 1000, NULL, NULL, 0,
     "Wrong or replayed codes per hour over all senders (never per claimed sender) that "
     "start the lockout"},

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

    /* [usage] */
    {"usage", "enabled", CA_KEY_BOOL, "true", NULL, NOLIMIT, NULL, NULL, 0,
     "Count the cellular data per SIM and billing cycle (kernel counters of the bearer's "
     "interface), publish <base>/usage, keep the counts in state-dir (docs/usage.md)"},
    {"usage", "sample-interval", CA_KEY_INT, "10", NULL, 1, 3600, NULL, NULL, 0,
     "Seconds between readings of the interface counters while a bearer is connected"},
    {"usage", "save-interval", CA_KEY_INT, "300", NULL, 5, 86400, NULL, NULL, 0,
     "Seconds between durable saves of the counts while they change (also saved at every "
     "stop, SIM change and cycle change): the most a power cut can lose"},
    {"usage", "publish-interval", CA_KEY_INT, "60", NULL, 0, 86400, NULL, NULL, 0,
     "Least seconds between <base>/usage messages caused by traffic alone (a state, plan, "
     "SIM or cycle change publishes at once); 0 = at every reading that changed"},
    {"usage", "timezone", CA_KEY_STRING, "", NULL, 0, 64, NULL, ca_usage_check_timezone, 0,
     "Time zone of the billing calendars (IANA name, e.g. Africa/Nairobi); empty = the "
     "system's local time zone"},
    {"usage", "max-sims", CA_KEY_INT, "8", NULL, 1, 64, NULL, NULL, 0,
     "SIMs whose counts are kept (current and previous cycle each); the one seen longest "
     "ago is dropped first"},

    /* [plan-NAME]: one group per data plan */
    {"plan-*", "iccid", CA_KEY_STRING, "", NULL, 3, 23, NULL, ca_usage_check_iccid,
     CA_KEY_FLAG_LIST,
     "SIMs on this plan: ICCIDs, or prefixes ending in * (8925402*); empty = any SIM no "
     "other plan names"},
    {"plan-*", "limit-mb", CA_KEY_INT, "0", NULL, 0, 100000000, NULL, NULL, 0,
     "Data included per billing cycle, in MB (see units); 0 = no limit"},
    {"plan-*", "units", CA_KEY_ENUM, "binary", NULL, NOLIMIT, units, NULL, 0,
     "How the operator counts MB and KB: binary (1 MB = 1048576 bytes, 1 KB = 1024) or "
     "decimal (1000000, 1000)"},
    {"plan-*", "cycle", CA_KEY_ENUM, "monthly", NULL, NOLIMIT, cycle_kinds, NULL, 0,
     "Billing cycle: monthly, weekly, daily, or days (every cycle-days days from "
     "cycle-anchor)"},
    {"plan-*", "cycle-start-day", CA_KEY_INT, "1", NULL, 1, 31, NULL, NULL, 0,
     "monthly: day of the month the cycle starts (29-31 become the month's last day in "
     "shorter months); weekly: weekday, 1 = Monday .. 7 = Sunday"},
    {"plan-*", "cycle-start-hour", CA_KEY_INT, "0", NULL, 0, 23, NULL, NULL, 0,
     "Hour (local, see [usage] timezone) at which a cycle starts"},
    {"plan-*", "cycle-days", CA_KEY_INT, "30", NULL, 1, 3660, NULL, NULL, 0,
     "cycle=days: the cycle's length in days"},
    {"plan-*", "cycle-anchor", CA_KEY_STRING, "", NULL, 0, 10, NULL, ca_usage_check_date, 0,
     "cycle=days: a date (YYYY-MM-DD) on which a cycle started"},
    {"plan-*", "alerts", CA_KEY_STRING, "80;90", NULL, 1, 3, NULL, ca_usage_check_percent,
     CA_KEY_FLAG_LIST,
     "Percentages of limit-mb that raise the event usage-threshold (and an SMS to [sms-alerts] "
     "numbers), each once per cycle"},
    {"plan-*", "at-limit", CA_KEY_ENUM, "alert", NULL, NOLIMIT, at_limit_actions, NULL, 0,
     "What reaching limit-mb does, besides the event usage-limit and an SMS to [sms-alerts] "
     "numbers: alert = nothing more; essential-only = cellular carries only the agent's own "
     "traffic (broker, DNS, probes) while it is the uplink in use; disconnect = the cellular "
     "connection is taken down (SMS still work); next-uplink = any other usable uplink "
     "first, cellular essential-only when none is. Until the cycle ends or cmd/usage-override"},
    {"plan-*", "packet-overhead", CA_KEY_INT, "0", NULL, 0, 1000, NULL, NULL, 0,
     "Bytes the operator counts per packet on top of what the interface counts (e.g. GTP/IP "
     "headers): added to the billable estimate"},
    {"plan-*", "session-rounding-kb", CA_KEY_INT, "0", NULL, 0, 1048576, NULL, NULL, 0,
     "Each data session's volume is billed rounded up to a multiple of this many KB; 0 = no "
     "rounding"},

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

    /* [economy] (docs/economy.md): figures used while economising; each is only ever a
     * longer period or a wider deadband than the normal setting */
    {"economy", "mode", CA_KEY_ENUM, "auto", NULL, NOLIMIT, economy_modes, NULL, 0,
     "Economy mode for metered links: auto = while NetworkManager's Metered property of the "
     "uplink in use is yes or guess-yes (modems are guessed metered), on = always, off = never"},
    {"economy", "telemetry-interval", CA_KEY_INT, "21600", NULL, 0, 86400, NULL, NULL, 0,
     "Seconds between periodic telemetry while economising ([telemetry] interval=0 stays 0)"},
    {"economy", "min-spacing", CA_KEY_INT, "3600", NULL, 0, 86400, NULL, NULL, 0,
     "Least seconds between telemetry messages caused by signal changes while economising"},
    {"economy", "quality-deadband", CA_KEY_INT, "15", NULL, 1, 100, NULL, NULL, 0,
     "Signal quality change (points) that publishes telemetry while economising"},
    {"economy", "signal-deadband", CA_KEY_INT, "8", NULL, 1, 100, NULL, NULL, 0,
     "RSSI/RSRP/RSRQ/SNR change (dB) that publishes telemetry while economising"},
    {"economy", "keepalive", CA_KEY_INT, "280", NULL, 5, 3600, NULL, NULL, 0,
     "MQTT keepalive (s) while economising; keepalive + 10 s is the longest idle gap, keep it "
     "under the carrier's NAT idle timeout (5 min on the strictest carriers)"},
    {"economy", "probe-interval", CA_KEY_INT, "300", NULL, 1, 3600, NULL, NULL, 0,
     "Seconds between health rounds of the uplink in use while economising; a round is "
     "passed without probes when MQTT traffic came in through it since the last one"},
    {"economy", "link-interval", CA_KEY_INT, "21600", NULL, 0, 86400, NULL, NULL, 0,
     "Seconds between refreshes of <base>/link when nothing changed, while economising"},
    {"economy", "usage-interval", CA_KEY_INT, "21600", NULL, 0, 86400, NULL, NULL, 0,
     "Least seconds between <base>/usage messages caused by traffic alone, while economising"},
    {"economy", "topic-aliases", CA_KEY_BOOL, "true", NULL, NOLIMIT, NULL, NULL, 0,
     "Use MQTT 5 topic aliases for the agent's own topics while economising, when the broker "
     "allows them (CONNACK Topic Alias Maximum)"},

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
    {"watchdog", "power-cycle-command", CA_KEY_STRING, "", NULL, 0, 1024, NULL, NULL,
     CA_KEY_FLAG_LOCAL,
     "Command that power-cycles the modem (split like a shell line, run without a shell); "
     "empty: step skipped"},
    {"watchdog", "reboot", CA_KEY_BOOL, "false", NULL, NOLIMIT, NULL, NULL, 0,
     "Allow rebooting the device when no uplink is usable after the other steps"},
    {"watchdog", "reboot-command", CA_KEY_STRING, "", NULL, 0, 1024, NULL, NULL, CA_KEY_FLAG_LOCAL,
     "Command run to reboot; empty: ask systemd-logind (Reboot) over D-Bus"},
    {"watchdog", "command-timeout", CA_KEY_INT, "60", NULL, 1, 3600, NULL, NULL, 0,
     "Seconds a power-cycle or reboot command may run before it is killed"},

    /* [remote-config]: docs/remote-config.md; none of it can be set remotely */
    {"remote-config", "enabled", CA_KEY_BOOL, "false", NULL, NOLIMIT, NULL, NULL, CA_KEY_FLAG_LOCAL,
     "Act on <base>/config/desired: apply the backend's configuration layer, confirm it or roll "
     "it back"},
    {"remote-config", "allowed-groups", CA_KEY_STRING,
     "agent;diagnose;mqtt;telemetry;modem;sms;cellular;sms-alerts;usage;plan-*;uplink-*;health;"
     "watchdog",
     NULL, 1, 128, NULL, check_allowed_group, CA_KEY_FLAG_LIST | CA_KEY_FLAG_LOCAL,
     "Groups a remote document may set (plan-* and uplink-* match every such group); a "
     "credential key (a password, key, certificate or secret file, a user name) only when named "
     "as group.key; device-id, state-dir, runtime-dir and the command lines never"},
    {"remote-config", "max-bytes", CA_KEY_INT, "16384", NULL, 256, 262144, NULL, NULL,
     CA_KEY_FLAG_LOCAL, "Largest config/desired document accepted (bytes)"},
    {"remote-config", "confirm-within", CA_KEY_INT, "120", NULL, 10, 3600, NULL, NULL,
     CA_KEY_FLAG_LOCAL,
     "Seconds a change has to be confirmed (a publish acknowledged by the broker under the new "
     "configuration) before it is rolled back, when the document gives no confirm_within"},
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

/* An allowed-groups entry: GROUP, PREFIX-* or GROUP.KEY of the table. */
static gboolean
check_allowed_group(const char *value, char **why)
{
    const char *dot = strchr(value, '.');
    g_autofree char *group = dot ? g_strndup(value, dot - value) : g_strdup(value);
    gboolean pattern = g_str_has_suffix(group, "*");

    if (pattern)
        group[strlen(group) - 1] = 'x'; /* "uplink-*" is known when "uplink-x" is */
    if (!ca_config_group_known(group) || g_str_equal(group, "x")) {
        *why = g_strdup("not a group of the configuration");
        return FALSE;
    }
    if (dot && !ca_config_find_key(group, dot + 1)) {
        *why = g_strdup_printf("no key \"%s\" in that group", dot + 1);
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
