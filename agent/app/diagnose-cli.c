/* diagnose-cli: `cellagent --diagnose` (diagnose-cli.h). */
#include "diagnose-cli.h"

#include "autocleanups.h"
#include "config.h"
#include "diag-format.h"
#include "diagnose.h"
#include "remote-layer.h"
#include "status-cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

typedef struct {
    GMainLoop *loop;
    GBytes *bytes;
    char *name;
    char *timed_out;
    GError *error;
} Run;

static void
diagnose_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Run *run = user_data;

    run->bytes = ca_diagnose_finish(result, &run->name, &run->timed_out, &run->error);
    g_main_loop_quit(run->loop);
}

static gboolean
write_bundle(const char *path, GBytes *bytes, GError **error)
{
    gsize len;
    const guint8 *data = g_bytes_get_data(bytes, &len);
    int fd;

    if (g_str_equal(path, "-"))
        fd = dup(STDOUT_FILENO);
    else /* The bundle describes the device: readable by its maker only. */
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot create %s: %s",
                    path, g_strerror(errno));
        return FALSE;
    }
    while (len > 0) {
        ssize_t n = write(fd, data, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            close(fd);
            g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(err), "cannot write %s: %s",
                        path, g_strerror(err));
            return FALSE;
        }
        data += n;
        len -= (gsize) n;
    }
    if (close(fd) < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot write %s: %s",
                    path, g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

int
ca_diagnose_cli_run(const char *config_path, const char *output, const char *since,
                    gboolean personal)
{
    g_autoptr(GError) error = NULL;
    /* With the remote layer, as the agent runs it (a trial is not rolled back here). */
    g_autoptr(CaConfig) config = ca_remote_layer_load_config(config_path, FALSE, &error);
    g_autofree char *config_error = NULL, *dir = NULL, *why = NULL, *path = NULL;
    g_autoptr(cJSON) status = NULL;
    CaDiagnoseOptions opts = {0};
    Run run = {0};
    gint64 since_s = 0;
    int rc;

    if (!ca_diag_parse_since(since ? since : CA_DIAGNOSE_DEFAULT_SINCE, &since_s)) {
        fprintf(stderr,
                "cellagent: --since: \"%s\" is not a period such as 90s, 30m, 6h or 2d (at "
                "most 31 days)\n",
                since);
        return 2;
    }
    if (!config) {
        /* The bundle is most needed when the configuration is broken: say so in it. */
        config_error = g_strdup(error->message);
        g_clear_error(&error);
        config = ca_config_load_from_data("(defaults)", "", 0, NULL);
    }
    dir = g_strdup(ca_config_get_string(config, "agent", "runtime-dir"));
    rc = ca_status_cli_read(dir, personal, &status, &why);
    opts.config = config;
    opts.config_error = config_error;
    opts.personal = personal;
    opts.journal = geteuid() == 0;
    opts.since_s = since_s;
    opts.status = rc == CA_STATUS_EXIT_NOT_RUNNING ? NULL : status;
    opts.status_note = why;
    opts.origin = "cellagent --diagnose";

    run.loop = g_main_loop_new(NULL, FALSE);
    ca_diagnose_async(&opts, NULL, diagnose_ready, &run);
    g_main_loop_run(run.loop);
    g_main_loop_unref(run.loop);
    if (!run.bytes) {
        fprintf(stderr, "cellagent: no bundle: %s\n", run.error->message);
        g_error_free(run.error);
        return 1;
    }
    path = output ? g_strdup(output) : g_strconcat(run.name, ".tar.gz", NULL);
    if (!write_bundle(path, run.bytes, &error)) {
        fprintf(stderr, "cellagent: %s\n", error->message);
        rc = 1;
    } else {
        if (!g_str_equal(path, "-"))
            fprintf(stderr, "cellagent: wrote %s (%" G_GSIZE_FORMAT " bytes)\n", path,
                    g_bytes_get_size(run.bytes));
        if (run.timed_out)
            fprintf(stderr, "cellagent: timed out (marked in the bundle): %s\n", run.timed_out);
        if (!opts.journal)
            fprintf(stderr, "cellagent: the journal is included only when run as root\n");
        rc = 0;
    }
    g_bytes_unref(run.bytes);
    g_free(run.name);
    g_free(run.timed_out);
    return rc;
}
