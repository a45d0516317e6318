/* uplink-checkpoint: NetworkManager checkpoints for remote configuration
 * (docs/remote-config.md). A checkpoint of every device (their connections' settings and
 * activation state) is taken before a change to the uplinks or the cellular profile, with a
 * rollback timeout so that NetworkManager restores it by itself if the agent is gone, then
 * destroyed when the change is confirmed or rolled back otherwise. NetworkManager keeps
 * checkpoints in memory only: the agent's own trial marker covers its restarts.
 * Needs the polkit action org.freedesktop.NetworkManager.checkpoint-rollback
 * (docs/polkit.md). */
#define CA_LOG_MODULE "uplink"
#include "uplink-private.h"

#include "error.h"
#include "log.h"

static void
create_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GTask) task = user_data;
    GError *error = NULL;
    g_autoptr(NMCheckpoint) cp =
        nm_client_checkpoint_create_finish(NM_CLIENT(source), result, &error);

    if (!cp) {
        g_task_return_error(task, error);
        return;
    }
    g_task_return_pointer(task, g_strdup(nm_object_get_path(NM_OBJECT(cp))), g_free);
}

void
ca_uplink_checkpoint_create_async(CaUplink *self, guint rollback_timeout_s,
                                  GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task = g_task_new(self, self->cancellable, callback, user_data);

    g_task_set_source_tag(task, ca_uplink_checkpoint_create_async);
    if (!ca_uplink_nm_running(self)) {
        /* Nothing of NetworkManager's to protect; the agent's own rollback still applies. */
        g_task_return_pointer(task, NULL, NULL);
        g_object_unref(task);
        return;
    }
    /* No devices: all of them. Connections and devices that appear during the trial are
     * removed and disconnected by a rollback. */
    nm_client_checkpoint_create(self->client, NULL, rollback_timeout_s,
                                NM_CHECKPOINT_CREATE_FLAG_DELETE_NEW_CONNECTIONS |
                                    NM_CHECKPOINT_CREATE_FLAG_DISCONNECT_NEW_DEVICES,
                                self->cancellable, create_ready, task);
}

char *
ca_uplink_checkpoint_create_finish(CaUplink *self, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, self), NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}

static void
rollback_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GTask) task = user_data;
    GError *error = NULL;
    g_autoptr(GHashTable) devices =
        nm_client_checkpoint_rollback_finish(NM_CLIENT(source), result, &error);

    if (!devices) {
        g_task_return_error(task, error);
        return;
    }
    {
        GHashTableIter it;
        gpointer path, rc;

        g_hash_table_iter_init(&it, devices);
        while (g_hash_table_iter_next(&it, &path, &rc)) {
            if (GPOINTER_TO_UINT(rc) != NM_ROLLBACK_RESULT_OK)
                ca_warn("checkpoint rollback: device %s not restored (result %u)",
                        (const char *) path, GPOINTER_TO_UINT(rc));
        }
    }
    g_task_return_boolean(task, TRUE);
}

void
ca_uplink_checkpoint_rollback_async(CaUplink *self, const char *path, GAsyncReadyCallback callback,
                                    gpointer user_data)
{
    GTask *task = g_task_new(self, self->cancellable, callback, user_data);

    g_task_set_source_tag(task, ca_uplink_checkpoint_rollback_async);
    if (!ca_uplink_nm_running(self)) {
        g_task_return_new_error(task, CA_ERROR, CA_ERROR_NOT_READY,
                                "NetworkManager is not running: checkpoint %s is gone with it",
                                path);
        g_object_unref(task);
        return;
    }
    ca_msg("rolling NetworkManager back to checkpoint %s", path);
    nm_client_checkpoint_rollback(self->client, path, self->cancellable, rollback_ready, task);
}

gboolean
ca_uplink_checkpoint_rollback_finish(CaUplink *self, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}

static void
destroy_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *path = user_data;

    if (!nm_client_checkpoint_destroy_finish(NM_CLIENT(source), result, &error) &&
        !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        ca_warn("destroying NetworkManager checkpoint %s: %s (it expires by itself)", path,
                error->message);
}

void
ca_uplink_checkpoint_destroy(CaUplink *self, const char *path)
{
    if (!ca_uplink_nm_running(self))
        return;
    nm_client_checkpoint_destroy(self->client, path, self->cancellable, destroy_ready,
                                 g_strdup(path));
}
