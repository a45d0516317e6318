/* diagnose: the support bundle (a tar.gz) of `cellagent --diagnose` and cmd/diagnose: the
 * effective configuration (file and line, secrets masked), the agent's status and last
 * events, ModemManager's objects for the modem, SIM and bearers (message counts, not
 * contents), NetworkManager's devices, active connections and profiles (secrets removed),
 * system facts (os-release, kernel, uptime, memory, state-dir space, the modem's USB ids and
 * drivers, routes) and, when asked, the journal of cellagent, ModemManager and
 * NetworkManager. Personal data redacted as in the logs unless kept.
 *
 * Never blocks: every D-Bus call and child process has a short timeout, and the whole
 * bundle is done within CA_DIAGNOSE_LIMIT_MS even when a daemon does not answer; what timed
 * out is marked in the part and in README.txt. */
#pragma once
#include "config.h"

#include <cjson/cJSON.h>
#include <gio/gio.h>

/* The bundle is complete within this, whatever the daemons do. */
#define CA_DIAGNOSE_LIMIT_MS 8000

typedef struct {
    CaConfig *config;         /* the effective configuration (borrowed for the call) */
    gboolean personal;        /* keep personal data (--log-personal-info) */
    gboolean journal;         /* include the journal (the command line, as root) */
    gint64 since_s;           /* the journal's period, seconds back from now */
    const cJSON *status;      /* the agent's status document, or NULL */
    const char *status_note;  /* why there is none, or how it was judged (stale ...) */
    const char *origin;       /* "command line" or "cmd/diagnose" (README.txt) */
    const char *config_error; /* the configuration did not load: why (config is defaults) */
} CaDiagnoseOptions;

/* Collect the bundle. opts and what it points to must live until the callback runs. */
void ca_diagnose_async(const CaDiagnoseOptions *opts, GCancellable *cancellable,
                       GAsyncReadyCallback callback, gpointer user_data);
/* The tar.gz; *out_name (may be NULL) the bundle's name (its top directory, no suffix);
 * *out_timed_out (may be NULL) the parts that timed out, comma-separated, or NULL. */
GBytes *ca_diagnose_finish(GAsyncResult *result, char **out_name, char **out_timed_out,
                           GError **error);
