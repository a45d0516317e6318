/* status-cli: `cellagent --status` (status-cli.h). */
#include "status-cli.h"

#include "agent-settings.h"
#include "autocleanups.h"
#include "config.h"
#include "status-file.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>

char *
ca_status_cli_runtime_dir(const char *config_path)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) config = ca_config_load(config_path, &error);
    const char *dir = NULL;

    if (config)
        dir = ca_config_get_string(config, "agent", "runtime-dir");
    else
        fprintf(stderr,
                "cellagent: the configuration does not load (%s); looking in the "
                "default runtime directory\n",
                error->message);
    return g_strdup(dir ? dir : "/run/cellagent");
}

/* The agent's process is gone for sure only when kill() says ESRCH (EPERM: it exists
 * under another user, the usual case for an operator). */
static gboolean
pid_gone(const cJSON *status)
{
    const cJSON *pid = cJSON_GetObjectItemCaseSensitive(status, "pid");

    if (!cJSON_IsNumber(pid) || pid->valuedouble < 1 || pid->valuedouble > G_MAXINT32)
        return FALSE;
    return kill((pid_t) pid->valuedouble, 0) < 0 && errno == ESRCH;
}

int
ca_status_cli_read(const char *runtime_dir, gboolean personal, cJSON **out_status, char **out_why)
{
    g_autofree char *path = g_build_filename(runtime_dir, CA_STATUS_FILE_NAME, NULL);
    g_autofree char *data = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(cJSON) status = NULL;
    gsize len = 0;
    int rc;

    if (!g_file_get_contents(path, &data, &len, &error)) {
        gboolean absent = g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT);

        if (out_why)
            *out_why = absent ? g_strdup_printf("cellagent is not running (no %s: the agent "
                                                "writes it while it runs)",
                                                path)
                              : g_strdup_printf("cannot read %s: %s", path, error->message);
        return absent ? CA_STATUS_EXIT_NOT_RUNNING : CA_STATUS_EXIT_ERROR;
    }
    status = ca_status_parse(data, len, &error);
    if (!status) {
        if (out_why)
            *out_why = g_strdup_printf("%s: %s", path, error->message);
        return CA_STATUS_EXIT_ERROR;
    }
    if (pid_gone(status)) {
        rc = CA_STATUS_EXIT_NOT_RUNNING;
        if (out_why)
            *out_why = g_strdup_printf(
                "cellagent is not running (process %d is gone; %s is left from a run that "
                "did not stop cleanly)",
                (int) cJSON_GetObjectItemCaseSensitive(status, "pid")->valuedouble, path);
    } else {
        rc = ca_status_check_freshness(status, g_get_real_time(), NULL) == CA_STATUS_FRESH
                 ? CA_STATUS_EXIT_RUNNING
                 : CA_STATUS_EXIT_STALE;
        if (out_why && rc == CA_STATUS_EXIT_STALE)
            *out_why = g_strdup_printf("%s is stale: the agent is hung or was stopped without "
                                       "cleaning up",
                                       path);
    }
    if (!personal)
        ca_status_redact(status);
    if (out_status)
        *out_status = g_steal_pointer(&status);
    return rc;
}

static const char *
reader_state(int rc)
{
    if (rc == CA_STATUS_EXIT_RUNNING)
        return "running";
    if (rc == CA_STATUS_EXIT_STALE)
        return "stale";
    if (rc == CA_STATUS_EXIT_NOT_RUNNING)
        return "not-running";
    return "error";
}

int
ca_status_cli_run(const char *config_path, gboolean json, gboolean personal)
{
    g_autofree char *dir = ca_status_cli_runtime_dir(config_path);
    g_autofree char *why = NULL;
    g_autoptr(cJSON) status = NULL;
    gint64 now = g_get_real_time(), age = -1;
    int rc = ca_status_cli_read(dir, personal, &status, &why);

    if (json) {
        g_autofree char *text = NULL;
        cJSON *reader;

        /* Only a file of the process that is gone is left out: it describes nothing. */
        if (!status || rc == CA_STATUS_EXIT_NOT_RUNNING) {
            g_clear_pointer(&status, cJSON_Delete);
            status = cJSON_CreateObject();
        }
        reader = cJSON_AddObjectToObject(status, "reader");
        cJSON_AddStringToObject(reader, "state", reader_state(rc));
        if (rc == CA_STATUS_EXIT_RUNNING || rc == CA_STATUS_EXIT_STALE) {
            ca_status_check_freshness(status, now, &age);
            cJSON_AddNumberToObject(reader, "age", (double) age);
        }
        if (why)
            cJSON_AddStringToObject(reader, "message", why);
        text = cJSON_Print(status);
        printf("%s\n", text);
        return rc;
    }
    if (rc == CA_STATUS_EXIT_RUNNING || rc == CA_STATUS_EXIT_STALE) {
        CaStatusFreshness f = ca_status_check_freshness(status, now, &age);
        g_autofree char *text = ca_status_format_text(status, f, age, now);

        printf("%s", text);
    }
    if (why)
        fprintf(stderr, "cellagent: %s\n", why);
    return rc;
}
