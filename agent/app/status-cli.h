/* status-cli: `cellagent --status [--json]`, the reader of the running agent's status file
 * (agent-status.c writes it). Needs no privileges beyond reading the runtime directory and
 * never talks to the broker or the daemons. */
#pragma once
#include <cjson/cJSON.h>
#include <glib.h>

/* Exit codes of --status (and --diagnose's view of the agent). */
#define CA_STATUS_EXIT_RUNNING     0 /* running, the file is fresh */
#define CA_STATUS_EXIT_ERROR       1 /* the file cannot be read or parsed */
#define CA_STATUS_EXIT_STALE       2 /* the file is stale: hung, or killed */
#define CA_STATUS_EXIT_NOT_RUNNING 3 /* no file, or its process is gone */

/* The runtime directory of the config at config_path (NULL: the default), or the default
 * when the config cannot be loaded (a note on stderr then). */
char *ca_status_cli_runtime_dir(const char *config_path);

/* Read and judge the status file in runtime_dir. Returns one of the exit codes above;
 * *out_status (the parsed document, personal data redacted unless personal) and *out_why
 * (a sentence for people when not running or unreadable) may be NULL. */
int ca_status_cli_read(const char *runtime_dir, gboolean personal, cJSON **out_status,
                       char **out_why);

/* Print the summary (or the JSON document with a "reader" member) and return the exit code. */
int ca_status_cli_run(const char *config_path, gboolean json, gboolean personal);
