/* uplink-settings: everything the uplink module (agent/nm) reads from the config, typed and
 * read once: the failover policy's settings ([uplink-*], [health], [watchdog] and the
 * [cellular] connection, through ca_fo_config_new), the cellular profile created when
 * missing ([cellular]), the broker address for tcp:mqtt probes ([mqtt]) and the directory of
 * the watchdog's state file ([agent] state-dir). Compared on reload to decide what to redo.
 * Owns: reading those keys. Does not own: validating them (config.c's key table does). */
#pragma once
#include "config.h"
#include "failover.h"

#include <glib.h>

typedef struct {
    CaFoConfig *policy;  /* the failover policy and its watchdog ladder */
    char *apn;           /* [cellular] apn, for the profile created when missing */
    char *username;      /* [cellular] username, "" none */
    char *password_file; /* [cellular] password-file, "" none */
    char *mqtt_host;     /* [mqtt] host, for tcp:mqtt probes */
    guint16 mqtt_port;   /* [mqtt] port (its default follows tls) */
    char *state_dir;     /* [agent] state-dir: where watchdog.state lives */
} CaUplinkSettings;

/* Read the uplink module's settings from a loaded (validated) config. */
CaUplinkSettings *ca_uplink_settings_new(const CaConfig *config);
void ca_uplink_settings_free(CaUplinkSettings *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaUplinkSettings, ca_uplink_settings_free)

/* TRUE when the broker is on this machine (localhost, a loopback address): reaching it
 * needs no uplink. */
gboolean ca_uplink_settings_broker_is_local(const CaUplinkSettings *s);

/* What a reload changed. */
typedef enum {
    CA_UPLINK_SETTINGS_SAME = 0,
    CA_UPLINK_SETTINGS_POLICY = 1 << 0, /* uplinks, health, watchdog, profile or state dir:
                                         * the policy is rebuilt */
    CA_UPLINK_SETTINGS_PROBES = 1 << 1, /* only the broker address tcp:mqtt probes use */
} CaUplinkSettingsChange;

CaUplinkSettingsChange ca_uplink_settings_diff(const CaUplinkSettings *a,
                                               const CaUplinkSettings *b);
