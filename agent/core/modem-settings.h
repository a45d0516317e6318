/* modem-settings: the typed settings of the ModemManager adapter (agent/mm), read once from a
 * config snapshot: CaModemSettings for the modem module ([modem], [telemetry] signal-rate,
 * [agent] state-dir), CaSmsSettings for the SMS bridge ([sms], [agent] state-dir). Modules
 * keep a copy and compare it with the next one on reload, instead of looking keys up by name.
 * Owns: the mapping from the key table to the structs. Does not own: applying them. */
#pragma once
#include "config.h"

#include <glib.h>

typedef struct {
    char *match;       /* [modem] match: IMEI or device path, "" = the first modem */
    gboolean enable;   /* [modem] enable */
    char *pin_file;    /* [modem] pin-file, "" = none */
    guint signal_rate; /* [telemetry] signal-rate, seconds, 0 = off */
    char *state_dir;   /* [agent] state-dir */
} CaModemSettings;

typedef struct {
    gboolean enabled;
    gboolean keep_on_modem;
    guint max_parts;
    guint send_timeout_s;
    guint rate_limit; /* per hour */
    guint retries;
    guint spool_limit;
    guint dedupe_limit;
    guint dedupe_days;
    guint receive_timeout_s;
    guint resync_delay_s;        /* 0: no resync after receptions */
    guint resync_interval_s;     /* least time between automatic resyncs while cellular is in use */
    guint partial_after_s;       /* an incomplete multipart message is published after this */
    guint storage_warn;          /* 0: off */
    char **allowed_destinations; /* NULL-terminated; empty = any (7 digits or more) */
    char *state_dir;             /* [agent] state-dir */
} CaSmsSettings;

/* Fill out from config (every field; clear it first when reusing it). */
void ca_modem_settings_load(CaModemSettings *out, const CaConfig *config);
void ca_modem_settings_clear(CaModemSettings *settings);
gboolean ca_modem_settings_equal(const CaModemSettings *a, const CaModemSettings *b);

void ca_sms_settings_load(CaSmsSettings *out, const CaConfig *config);
void ca_sms_settings_clear(CaSmsSettings *settings);
gboolean ca_sms_settings_equal(const CaSmsSettings *a, const CaSmsSettings *b);
