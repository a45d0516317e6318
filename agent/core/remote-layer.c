/* remote-layer: the remote configuration layer's files (remote-layer.h). */
#define CA_LOG_MODULE "remote-config"
#include "remote-layer.h"

#include "autocleanups.h"
#include "durable.h"
#include "error.h"
#include "log.h"
#include "remote-desired.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CURRENT   "current.conf"
#define PREVIOUS  "previous.conf"
#define PENDING   "pending.json"
#define RECOVERED "recovered.json"
#define REPORTED  "reported.json"
/* An fd closed when it goes out of scope (GLib 2.74 has no g_autofd). */
static void
close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
#define autofd __attribute__((cleanup(close_fd)))

/* Larger files are not ours (the layer is bounded by max-bytes, at most 256 KiB of JSON). */
#define FILE_MAX (1024 * 1024)

void
ca_remote_pending_free(CaRemotePending *p)
{
    if (!p)
        return;
    g_free(p->checkpoint);
    g_free(p);
}

static char *
dir_path(const char *state_dir)
{
    return g_build_filename(state_dir, CA_REMOTE_LAYER_DIR, NULL);
}

/* The directory, created when missing (0700), open for ca_durable_replace; -1 on error. */
static int
open_dir(const char *state_dir, char **out_dir, GError **error)
{
    g_autofree char *dir = dir_path(state_dir);
    int fd;

    if (g_mkdir_with_parents(dir, 0700) < 0) {
        g_set_error(error, CA_ERROR, CA_ERROR_IO, "cannot create %s: %s", dir, g_strerror(errno));
        return -1;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        g_set_error(error, CA_ERROR, CA_ERROR_IO, "cannot open %s: %s", dir, g_strerror(errno));
        return -1;
    }
    *out_dir = g_steal_pointer(&dir);
    return fd;
}

/* A file's content; NULL with no error when absent. */
static char *
read_file(const char *state_dir, const char *name, GError **error)
{
    g_autofree char *path = g_build_filename(state_dir, CA_REMOTE_LAYER_DIR, name, NULL);
    g_autoptr(GError) ferr = NULL;
    char *data = NULL;
    gsize len = 0;

    if (!g_file_get_contents(path, &data, &len, &ferr)) {
        if (!g_error_matches(ferr, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            g_set_error(error, CA_ERROR, CA_ERROR_IO, "cannot read %s: %s", path, ferr->message);
        return NULL;
    }
    if (len > FILE_MAX || strlen(data) != len) {
        g_set_error(error, CA_ERROR, CA_ERROR_IO, "%s: not a file the agent wrote", path);
        g_free(data);
        return NULL;
    }
    return data;
}

static gboolean
write_file(int dirfd, const char *dir, const char *name, const char *text, GError **error)
{
    return ca_durable_replace(dirfd, dir, name, text, strlen(text), error);
}

/* Remove name (absent is fine) and sync the directory. */
static gboolean
remove_file(int dirfd, const char *dir, const char *name, GError **error)
{
    if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT) {
        g_set_error(error, CA_ERROR, CA_ERROR_IO, "cannot remove %s/%s: %s", dir, name,
                    g_strerror(errno));
        return FALSE;
    }
    if (fsync(dirfd) < 0) {
        g_set_error(error, CA_ERROR, CA_ERROR_IO, "cannot sync %s: %s", dir, g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

char *
ca_remote_layer_read(const char *state_dir, GError **error)
{
    return read_file(state_dir, CURRENT, error);
}

static char *
pending_to_json(const CaRemotePending *p)
{
    g_autoptr(cJSON) o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "version", (double) p->version);
    cJSON_AddNumberToObject(o, "previous_version", (double) p->previous_version);
    cJSON_AddNumberToObject(o, "confirm_within", (double) p->confirm_within);
    cJSON_AddNumberToObject(o, "started_at", (double) (p->started_at / G_USEC_PER_SEC));
    if (p->checkpoint)
        cJSON_AddStringToObject(o, "checkpoint", p->checkpoint);
    else
        cJSON_AddNullToObject(o, "checkpoint");
    return cJSON_PrintUnformatted(o);
}

gboolean
ca_remote_layer_write_pending(const char *state_dir, const CaRemotePending *p, GError **error)
{
    g_autofree char *dir = NULL;
    g_autofree char *json = pending_to_json(p);
    autofd int dirfd = open_dir(state_dir, &dir, error);

    return dirfd >= 0 && write_file(dirfd, dir, PENDING, json, error);
}

CaRemotePending *
ca_remote_layer_read_pending(const char *state_dir, const char *name, GError **error)
{
    g_autoptr(GError) ferr = NULL;
    g_autofree char *text = read_file(state_dir, name, &ferr);
    g_autoptr(cJSON) o = NULL;
    CaRemotePending *p;
    const cJSON *cp;

    if (!text) {
        if (ferr)
            g_propagate_error(error, g_steal_pointer(&ferr));
        return NULL;
    }
    o = cJSON_Parse(text);
    p = g_new0(CaRemotePending, 1);
    /* An unreadable marker still means "a trial was under way": version 0. */
    p->version = (gint64) cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "version"));
    p->previous_version =
        (gint64) cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "previous_version"));
    p->confirm_within =
        (gint64) cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "confirm_within"));
    p->started_at =
        (gint64) cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "started_at")) *
        G_USEC_PER_SEC;
    if (p->version < 0 || p->version > CA_REMOTE_VERSION_MAX)
        p->version = 0;
    cp = cJSON_GetObjectItemCaseSensitive(o, "checkpoint");
    if (cJSON_IsString(cp) && g_str_has_prefix(cp->valuestring, "/org/freedesktop/NetworkManager/"))
        p->checkpoint = g_strdup(cp->valuestring);
    return p;
}

gboolean
ca_remote_layer_begin(const char *state_dir, const char *layer, const CaRemotePending *p,
                      GError **error)
{
    g_autofree char *dir = NULL;
    g_autofree char *current = NULL;
    g_autofree char *json = pending_to_json(p);
    autofd int dirfd = -1;

    current = read_file(state_dir, CURRENT, error);
    if (!current && error && *error)
        return FALSE;
    dirfd = open_dir(state_dir, &dir, error);
    /* previous.conf first: a marker must never exist without the layer it restores. */
    return dirfd >= 0 && write_file(dirfd, dir, PREVIOUS, current ? current : "", error) &&
           write_file(dirfd, dir, PENDING, json, error) &&
           write_file(dirfd, dir, CURRENT, layer, error);
}

gboolean
ca_remote_layer_confirm(const char *state_dir, GError **error)
{
    g_autofree char *dir = NULL;
    autofd int dirfd = open_dir(state_dir, &dir, error);

    return dirfd >= 0 && remove_file(dirfd, dir, PENDING, error);
}

gboolean
ca_remote_layer_rollback(const char *state_dir, GError **error)
{
    g_autofree char *dir = NULL;
    g_autofree char *previous = NULL;
    autofd int dirfd = -1;
    gboolean ok;

    previous = read_file(state_dir, PREVIOUS, error);
    if (!previous && error && *error)
        return FALSE;
    dirfd = open_dir(state_dir, &dir, error);
    if (dirfd < 0)
        return FALSE;
    if (previous && *previous)
        ok = write_file(dirfd, dir, CURRENT, previous, error);
    else
        ok = remove_file(dirfd, dir, CURRENT, error);
    /* The marker goes last: a crash before this line rolls back again, to the same. */
    return ok && remove_file(dirfd, dir, PENDING, error);
}

gboolean
ca_remote_layer_recover(const char *state_dir, gint64 *out_version, GError **error)
{
    g_autoptr(CaRemotePending) p = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *json = NULL;
    autofd int dirfd = -1;

    *out_version = 0;
    p = ca_remote_layer_read_pending(state_dir, PENDING, error);
    if (!p)
        return !(error && *error);
    json = pending_to_json(p);
    dirfd = open_dir(state_dir, &dir, error);
    if (dirfd < 0 || !write_file(dirfd, dir, RECOVERED, json, error) ||
        !ca_remote_layer_rollback(state_dir, error))
        return FALSE;
    *out_version = p->version;
    return TRUE;
}

gboolean
ca_remote_layer_finish_recovery(const char *state_dir, GError **error)
{
    g_autofree char *dir = NULL;
    autofd int dirfd = open_dir(state_dir, &dir, error);

    return dirfd >= 0 && remove_file(dirfd, dir, RECOVERED, error);
}

char *
ca_remote_layer_read_report(const char *state_dir)
{
    return read_file(state_dir, REPORTED, NULL);
}

gboolean
ca_remote_layer_save_report(const char *state_dir, const char *json, GError **error)
{
    g_autofree char *dir = NULL;
    autofd int dirfd = open_dir(state_dir, &dir, error);

    return dirfd >= 0 && write_file(dirfd, dir, REPORTED, json, error);
}

char *
ca_remote_layer_name(gint64 version)
{
    return g_strdup_printf("remote version %" G_GINT64_FORMAT, version);
}

CaConfig *
ca_remote_layer_load_config(const char *path, gboolean recover, GError **error)
{
    g_autoptr(CaConfig) base = ca_config_load(path, error);
    g_autoptr(GError) lerr = NULL;
    g_autofree char *layer = NULL;
    g_autofree char *name = NULL;
    const char *state_dir;
    CaConfig *layered;
    gint64 recovered = 0;

    if (!base || !ca_config_get_bool(base, "remote-config", "enabled"))
        return g_steal_pointer(&base);
    state_dir = ca_config_get_string(base, "agent", "state-dir");
    if (recover && !ca_remote_layer_recover(state_dir, &recovered, &lerr)) {
        ca_warn("remote configuration: %s; the local files alone apply", lerr->message);
        return g_steal_pointer(&base);
    }
    if (recovered)
        ca_warn("remote configuration version %" G_GINT64_FORMAT " was on trial when the agent "
                "stopped: rolled back",
                recovered);
    layer = ca_remote_layer_read(state_dir, &lerr);
    if (!layer) {
        if (lerr)
            ca_warn("remote configuration: %s; the local files alone apply", lerr->message);
        return g_steal_pointer(&base);
    }
    name = ca_remote_layer_name(ca_remote_layer_version(layer));
    layered = ca_config_load_layered(path, name, layer, strlen(layer), &lerr);
    if (!layered) {
        ca_warn("remote configuration no longer valid with the local files, left out:\n%s",
                lerr->message);
        return g_steal_pointer(&base);
    }
    return layered;
}
