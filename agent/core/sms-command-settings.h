/* sms-command-settings: CaSmsCommandSettings, what the SMS command channel reads from the
 * config ([sms-commands]): the guard's limits (sms-command.c) and whether and with which
 * secret the remote layer builds one (remote.c). The pattern is in settings.h. */
#pragma once
#include "config.h"
#include "settings.h"

typedef struct {
    gboolean enabled;
    char *secret_file;           /* read by remote.c when it builds the guard */
    GStrv allowed_senders;       /* as written; the guard normalises them */
    gint64 lockout_ms;           /* every command refused this long once the budget is spent */
    guint max_failures_per_hour; /* the budget: failed codes per hour over all senders */
} CaSmsCommandSettings;

/* Fill out (zeroed or cleared first) from config. */
void ca_sms_command_settings_load(CaSmsCommandSettings *out, const CaConfig *config);
/* Free what settings owns and zero it; NULL-safe. */
void ca_sms_command_settings_clear(CaSmsCommandSettings *settings);
gboolean ca_sms_command_settings_equal(const CaSmsCommandSettings *a,
                                       const CaSmsCommandSettings *b);
