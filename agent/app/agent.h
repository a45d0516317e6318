/* agent: the composition root. Creates the modules, connects each module's outputs to
 * the others' inputs, applies config reloads and runs the bounded shutdown.
 * Holds no policy of its own; adapters never see each other, only this file. */
#pragma once
#include "config.h"
#include "sd-notify.h"

#include <gio/gio.h>

typedef struct _CaAgent CaAgent;

CaAgent *ca_agent_new(CaConfig *config, CaNotify *notify);
void ca_agent_free(CaAgent *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaAgent, ca_agent_free)

/* Start every module; they find their daemons and broker whenever those appear. */
void ca_agent_start(CaAgent *self);
/* Swap in a validated new config; modules re-apply only the groups that changed. */
void ca_agent_reload(CaAgent *self, CaConfig *config);
/* What main does on SIGHUP (load, validate, ca_agent_reload); FALSE with the problems in
 * error when the new config is invalid (the old one stays). */
typedef gboolean (*CaAgentReloadFunc)(GError **error, gpointer user_data);
/* Let cmd/reload do what SIGHUP does. */
void ca_agent_set_reload_func(CaAgent *self, CaAgentReloadFunc func, gpointer user_data);
/* The config file main loaded (NULL: the default), for validating remote layers with it. */
void ca_agent_set_config_path(CaAgent *self, const char *path);
/* Clean stop: publish offline, disconnect, release daemons. Completes once every
 * module is quiet; the caller bounds it with its own deadline. */
void ca_agent_shutdown_async(CaAgent *self, GAsyncReadyCallback callback, gpointer user_data);
gboolean ca_agent_shutdown_finish(CaAgent *self, GAsyncResult *result, GError **error);
