/* remote-settings: CaRemoteSettings, what the remote layer (agent/control/remote.c: the
 * command set's handlers, SMS commands, SMS alerts) reads from the config: [commands],
 * [sms-commands], [sms-alerts] and the device id and state directory of [agent]. The
 * pattern is in settings.h. */
#pragma once
#include "alerts.h"
#include "config.h"
#include "settings.h"
#include "sms-command-settings.h"

typedef struct {
    char *device_id; /* in SMS replies, alerts and cmd/status */
    char *state_dir; /* sms-commands.state, sms-alerts.state */
    /* [commands] */
    gboolean allow_reboot;
    char *reboot_command;
    guint reboot_delay_s;
    /* [sms-commands] */
    CaSmsCommandSettings sms_commands;
    /* [sms-alerts] */
    gboolean alerts_enabled;
    GStrv alert_numbers;
    CaAlertsConfig alerts; /* the policy's parameters */
} CaRemoteSettings;

/* What changed between two settings (ca_remote_settings_diff); 0 = nothing. */
typedef enum {
    CA_REMOTE_SETTINGS_DEVICE_ID = 1 << 0,
    CA_REMOTE_SETTINGS_STATE_DIR = 1 << 1,
    CA_REMOTE_SETTINGS_COMMANDS = 1 << 2,     /* [commands]: read when a command runs */
    CA_REMOTE_SETTINGS_SMS_COMMANDS = 1 << 3, /* [sms-commands]: the guard is rebuilt */
    CA_REMOTE_SETTINGS_ALERTS = 1 << 4,       /* [sms-alerts] */
} CaRemoteSettingsChange;

/* Fill out (zeroed or cleared first) from config. */
void ca_remote_settings_load(CaRemoteSettings *out, const CaConfig *config);
/* Free what settings owns and zero it; NULL-safe. */
void ca_remote_settings_clear(CaRemoteSettings *settings);
CaRemoteSettingsChange ca_remote_settings_diff(const CaRemoteSettings *a,
                                               const CaRemoteSettings *b);
gboolean ca_remote_settings_equal(const CaRemoteSettings *a, const CaRemoteSettings *b);
