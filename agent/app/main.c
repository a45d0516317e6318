/* main: options, config, logging, signals, sd_notify, the loop and a bounded shutdown.
 * Nothing else lives here; the agent (composition root) does the work. */
#define CA_LOG_MODULE "main"
#include "agent-settings.h"
#include "agent.h"
#include "config.h"
#include "diagnose-cli.h"
#include "log.h"
#include "remote-layer.h"
#include "sd-notify.h"
#include "status-cli.h"
#include "version.h"

#include <errno.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define SHUTDOWN_LIMIT_MS 3000

/* Process-wide state, in one place (no scattered statics). */
static struct {
    GMainLoop *loop;
    CaAgent *agent;
    CaNotify *notify;
    CaConfig *config;
    const char *config_path;
    char *log_level_override;
    gboolean stopping;
    gboolean shutdown_done;
} gl;

static void
log_warnings(CaConfig *config)
{
    for (const char *const *w = ca_config_get_warnings(config); *w; w++)
        ca_warn("%s", *w);
}

/* The levels of the start: the config's, and --log-level's over it for the life of the
 * process (reloads set the config's again, in agent.c; log-level.h has the precedence). */
static void
apply_log_levels(const CaAgentSettings *set)
{
    CaLogLevel level;

    ca_log_set_level_from(CA_LOG_LEVEL_FROM_CONFIG, set->log_level);
    if (gl.log_level_override && ca_log_level_from_string(gl.log_level_override, &level))
        ca_log_set_level_from(CA_LOG_LEVEL_FROM_COMMAND_LINE, level);
}

/* Load, validate and apply the config files again (SIGHUP, cmd/reload). */
static gboolean
reload_config(GError **error, gpointer user_data)
{
    g_autoptr(CaConfig) config = NULL;
    gboolean ok;

    ca_notify_reloading(gl.notify);
    config = ca_remote_layer_load_config(gl.config_path, FALSE, error);
    ok = config != NULL;
    if (ok) {
        log_warnings(config);
        ca_agent_reload(gl.agent, config);
        g_clear_pointer(&gl.config, ca_config_unref);
        gl.config = g_steal_pointer(&config);
    }
    ca_notify_ready(gl.notify, "running");
    return ok;
}

static gboolean
sighup_cb(gpointer user_data)
{
    g_autoptr(GError) error = NULL;

    if (!reload_config(&error, NULL))
        ca_err("reload failed, keeping the running configuration:\n%s", error->message);
    return G_SOURCE_CONTINUE;
}

static void
shutdown_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;

    if (!ca_agent_shutdown_finish(gl.agent, result, &error))
        ca_warn("shutdown was not clean: %s", error->message);
    gl.shutdown_done = TRUE;
    g_main_loop_quit(gl.loop);
}

static gboolean
shutdown_deadline_cb(gpointer user_data)
{
    ca_warn("shutdown did not finish within %d ms, exiting anyway", SHUTDOWN_LIMIT_MS);
    g_main_loop_quit(gl.loop);
    return G_SOURCE_REMOVE;
}

static gboolean
sigterm_cb(gpointer user_data)
{
    GSource *deadline;

    if (gl.stopping)
        return G_SOURCE_CONTINUE;
    gl.stopping = TRUE;
    ca_msg("stopping on %s", (const char *) user_data);
    ca_notify_stopping(gl.notify);
    deadline = g_timeout_source_new(SHUTDOWN_LIMIT_MS);
    g_source_set_callback(deadline, shutdown_deadline_cb, NULL, NULL);
    g_source_attach(deadline, NULL);
    g_source_unref(deadline); /* destroyed with the main context at exit */
    ca_agent_shutdown_async(gl.agent, shutdown_ready, NULL);
    return G_SOURCE_CONTINUE;
}

int
main(int argc, char **argv)
{
    gboolean check_config = FALSE, version = FALSE, personal = FALSE, status = FALSE;
    gboolean json = FALSE, diagnose = FALSE;
    char *output = NULL, *since = NULL;
    char *config_path = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GOptionContext) ctx = NULL;
    CaLogLevel level;
    CaAgentSettings set;
    GOptionEntry entries[] = {
        {"config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
         "Config file (default " CA_CONFIG_DEFAULT_PATH ", plus <file>.d/*.conf)", "PATH"},
        {"check-config", 0, 0, G_OPTION_ARG_NONE, &check_config,
         "Validate the config, print the effective settings and exit", NULL},
        {"version", 0, 0, G_OPTION_ARG_NONE, &version, "Print the version and exit", NULL},
        {"status", 0, 0, G_OPTION_ARG_NONE, &status,
         "Summarise the running agent (from its runtime directory) and exit: 0 running, 2 "
         "stale, 3 not running",
         NULL},
        {"json", 0, 0, G_OPTION_ARG_NONE, &json, "With --status: print JSON", NULL},
        {"diagnose", 0, 0, G_OPTION_ARG_NONE, &diagnose,
         "Write a support bundle (tar.gz; the journal too when run as root) and exit", NULL},
        {"output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
         "With --diagnose: the bundle's file (default ./cellagent-diagnose-ID-TIME.tar.gz; - "
         "for standard output)",
         "FILE"},
        {"since", 0, 0, G_OPTION_ARG_STRING, &since,
         "With --diagnose: the journal's period (default " CA_DIAGNOSE_DEFAULT_SINCE ")", "PERIOD"},
        {"log-level", 0, 0, G_OPTION_ARG_STRING, &gl.log_level_override,
         "error, warning, info or debug (overrides [agent] log-level)", "LEVEL"},
        {"log-personal-info", 0, 0, G_OPTION_ARG_NONE, &personal,
         "Log IMSI, ICCID, IMEI, phone numbers and SMS text unredacted", NULL},
        {NULL},
    };

    ctx = g_option_context_new(NULL);
    g_option_context_set_summary(ctx, "Keeps an LTE edge device online and bridges its modem "
                                      "telemetry and SMS to MQTT.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        fprintf(stderr, "cellagent: %s\n", error->message);
        return 2;
    }
    if (gl.log_level_override && !ca_log_level_from_string(gl.log_level_override, &level)) {
        fprintf(stderr,
                "cellagent: --log-level: \"%s\" is not one of error, warning, info, debug\n",
                gl.log_level_override);
        return 2;
    }
    if (version) {
        printf("cellagent %s\n", CA_VERSION);
        return 0;
    }
    if ((json && !status) || ((output || since) && !diagnose) || (status && diagnose)) {
        fprintf(stderr, "cellagent: --json goes with --status, --output and --since with "
                        "--diagnose\n");
        g_free(config_path);
        g_free(output);
        g_free(since);
        g_free(gl.log_level_override);
        return 2;
    }
    if (diagnose) {
        int rc = ca_diagnose_cli_run(config_path, output, since, personal);

        g_free(config_path);
        g_free(output);
        g_free(since);
        g_free(gl.log_level_override);
        return rc;
    }
    if (status) {
        int rc = ca_status_cli_run(config_path, json, personal);

        g_free(config_path);
        g_free(gl.log_level_override);
        return rc;
    }
    gl.config_path = config_path;
    ca_log_init(CA_LOG_INFO, personal);

    /* The start rolls back a remote change left on trial (docs/remote-config.md). */
    gl.config = ca_remote_layer_load_config(config_path, !check_config, &error);
    if (check_config) {
        g_autofree char *dump = NULL;

        if (!gl.config) {
            fprintf(stderr, "%s\n", error->message);
            return 1;
        }
        for (const char *const *w = ca_config_get_warnings(gl.config); *w; w++)
            fprintf(stderr, "warning: %s\n", *w);
        dump = ca_config_dump(gl.config);
        printf("%s", dump);
        ca_config_unref(gl.config);
        return 0;
    }
    if (!gl.config) {
        ca_err("invalid configuration:\n%s", error->message);
        return 1;
    }
    ca_agent_settings_load(&set, gl.config);
    apply_log_levels(&set);
    log_warnings(gl.config);
    if (g_mkdir_with_parents(set.state_dir, 0700) < 0) {
        ca_err("cannot create state-dir \"%s\": %s", set.state_dir, g_strerror(errno));
        ca_agent_settings_clear(&set);
        ca_config_unref(gl.config);
        return 1;
    }
    ca_agent_settings_clear(&set);

    gl.loop = g_main_loop_new(NULL, FALSE);
    gl.notify = ca_notify_new();
    gl.agent = ca_agent_new(gl.config, gl.notify);
    ca_agent_set_reload_func(gl.agent, reload_config, NULL);
    ca_agent_set_config_path(gl.agent, config_path);
    g_unix_signal_add(SIGTERM, sigterm_cb, (gpointer) "SIGTERM");
    g_unix_signal_add(SIGINT, sigterm_cb, (gpointer) "SIGINT");
    g_unix_signal_add(SIGHUP, sighup_cb, NULL);
    signal(SIGPIPE, SIG_IGN);

    ca_agent_start(gl.agent);
    ca_notify_ready(gl.notify, "running");
    g_main_loop_run(gl.loop);

    g_clear_pointer(&gl.agent, ca_agent_free);
    g_clear_pointer(&gl.notify, ca_notify_free);
    g_clear_pointer(&gl.config, ca_config_unref);
    g_clear_pointer(&gl.loop, g_main_loop_unref);
    g_free(config_path);
    g_free(gl.log_level_override);
    ca_msg("stopped");
    return gl.shutdown_done ? 0 : 1;
}
