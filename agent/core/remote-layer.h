/* remote-layer: the remote configuration layer's files in <state-dir>/remote-config/, and
 * loading the configuration with it. Every write is durable (durable.h), in an order that
 * leaves a state the next start can finish after a crash or power loss at any point:
 *   current.conf   the layer in use (absent: none), read after the local files;
 *   previous.conf  the layer before the change on trial (empty: none), kept afterwards;
 *   pending.json   the trial marker: while it exists the change is unconfirmed, and the next
 *                  start rolls it back (previous.conf over current.conf) before loading;
 *   recovered.json a trial rolled back at start, left for the agent to finish (the
 *                  NetworkManager checkpoint, the report and the event);
 *   reported.json  the last report published on config/reported: which version was handled.
 * Does not own: the document (remote-desired.c), the trial's timing (the agent). */
#pragma once
#include "config.h"

#define CA_REMOTE_LAYER_DIR "remote-config"

typedef struct {
    gint64 version;          /* on trial */
    gint64 previous_version; /* the layer it replaced, 0: none */
    gint64 confirm_within;   /* seconds */
    gint64 started_at;       /* real time, us */
    char *checkpoint;        /* NetworkManager checkpoint path, NULL: none */
} CaRemotePending;

void ca_remote_pending_free(CaRemotePending *p);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaRemotePending, ca_remote_pending_free)

/* The layer in use: NULL with no error when there is none. */
char *ca_remote_layer_read(const char *state_dir, GError **error);
/* Start a trial: previous.conf = the layer in use, then pending.json, then current.conf. */
gboolean ca_remote_layer_begin(const char *state_dir, const char *layer, const CaRemotePending *p,
                               GError **error);
/* Rewrite pending.json (e.g. with the checkpoint's path). */
gboolean ca_remote_layer_write_pending(const char *state_dir, const CaRemotePending *p,
                                       GError **error);
/* The trial marker (name: "pending.json" or "recovered.json"); NULL with no error when absent,
 * CA_ERROR_IO when unreadable. */
CaRemotePending *ca_remote_layer_read_pending(const char *state_dir, const char *name,
                                              GError **error);
/* The change is confirmed: remove the marker (previous.conf stays). */
gboolean ca_remote_layer_confirm(const char *state_dir, GError **error);
/* The change failed: previous.conf back over current.conf, then remove the marker. */
gboolean ca_remote_layer_rollback(const char *state_dir, GError **error);
/* At start: a marker left by a crash, a stop or a power loss during a trial is rolled back
 * and moved to recovered.json; *out_version its version (0: none was pending). */
gboolean ca_remote_layer_recover(const char *state_dir, gint64 *out_version, GError **error);
/* The agent finished a recovery: remove recovered.json. */
gboolean ca_remote_layer_finish_recovery(const char *state_dir, GError **error);

/* The last report (JSON text), NULL when none. */
char *ca_remote_layer_read_report(const char *state_dir);
gboolean ca_remote_layer_save_report(const char *state_dir, const char *json, GError **error);

/* The configuration: path and its drop-ins (ca_config_load()), then, when their
 * [remote-config] enabled=true, the layer in use. recover: first roll back a trial left
 * unconfirmed (at start only). A layer that cannot be read or no longer validates with the
 * local files is left out with a warning (logged): the local files alone never fail
 * because of it. */
CaConfig *ca_remote_layer_load_config(const char *path, gboolean recover, GError **error);
/* The name the layer of version has in messages and sources: "remote version N". */
char *ca_remote_layer_name(gint64 version);
