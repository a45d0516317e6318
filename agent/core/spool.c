/* spool: durable bounded record directory (write tmp, fsync, rename, fsync dir).
 * Synchronous by design: records are small and the caller must know they are on disk
 * before it acknowledges anything (see docs/sms.md, durability). */
#include "spool.h"

#include "durable.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _CaSpool {
    char *dir;
    int dirfd;
    GTree *records; /* name (owned) -> guint64 *size (owned) */
    guint64 bytes;
    guint64 next_seq;
    guint max_records;
    guint64 max_bytes;
};

#define SEQ_DIGITS 20

gboolean
ca_spool_name_is_valid(const char *name)
{
    gsize n = 0;

    if (!name || name[0] == '.' || g_str_has_suffix(name, ".tmp") || g_str_has_suffix(name, ".bad"))
        return FALSE;
    for (const char *p = name; *p; p++, n++) {
        if (!g_ascii_isalnum(*p) && !strchr("._:-", *p))
            return FALSE;
    }
    return n >= 1 && n <= CA_SPOOL_MAX_NAME;
}

/* A sequence name: exactly SEQ_DIGITS digits. */
static gboolean
parse_seq(const char *name, guint64 *out_seq)
{
    if (strlen(name) != SEQ_DIGITS)
        return FALSE;
    for (const char *p = name; *p; p++) {
        if (!g_ascii_isdigit(*p))
            return FALSE;
    }
    *out_seq = g_ascii_strtoull(name, NULL, 10);
    return TRUE;
}

static int
compare_names(gconstpointer a, gconstpointer b, gpointer user_data)
{
    return strcmp(a, b);
}

static void
set_errno_error(GError **error, int err, const char *what, const char *dir, const char *name)
{
    g_set_error(error, CA_ERROR, CA_ERROR_IO, "%s %s/%s: %s", what, dir, name ? name : "",
                g_strerror(err));
}

static gboolean
sync_dir(CaSpool *self, GError **error)
{
    if (fsync(self->dirfd) < 0) {
        set_errno_error(error, errno, "cannot sync", self->dir, NULL);
        return FALSE;
    }
    return TRUE;
}

static void
track(CaSpool *self, const char *name, guint64 size)
{
    guint64 *old = g_tree_lookup(self->records, name);
    guint64 seq;

    if (old) {
        self->bytes -= *old;
        *old = size;
    } else {
        guint64 *v = g_new(guint64, 1);
        *v = size;
        g_tree_insert(self->records, g_strdup(name), v);
    }
    self->bytes += size;
    if (parse_seq(name, &seq) && seq >= self->next_seq)
        self->next_seq = seq + 1;
}

static void
untrack(CaSpool *self, const char *name)
{
    guint64 *old = g_tree_lookup(self->records, name);

    if (old) {
        self->bytes -= *old;
        g_tree_remove(self->records, name);
    }
}

CaSpool *
ca_spool_open(const char *dir, guint max_records, guint64 max_bytes, GError **error)
{
    g_autoptr(CaSpool) self = g_new0(CaSpool, 1);
    g_autoptr(GDir) d = NULL;
    g_autoptr(GError) local = NULL;
    const char *name;

    self->dir = g_strdup(dir);
    self->dirfd = -1;
    self->records = g_tree_new_full(compare_names, NULL, g_free, g_free);
    self->max_records = max_records;
    self->max_bytes = max_bytes;
    if (g_mkdir_with_parents(dir, 0700) < 0) {
        set_errno_error(error, errno, "cannot create", dir, NULL);
        return NULL;
    }
    self->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dirfd < 0) {
        set_errno_error(error, errno, "cannot open", dir, NULL);
        return NULL;
    }
    d = g_dir_open(dir, 0, &local);
    if (!d) {
        g_set_error(error, CA_ERROR, CA_ERROR_IO, "%s", local->message);
        return NULL;
    }
    while ((name = g_dir_read_name(d))) {
        struct stat st;

        if (g_str_has_suffix(name, ".tmp")) {
            /* An interrupted write: the record it was replacing (if any) is intact. */
            if (unlinkat(self->dirfd, name, 0) < 0 && errno != ENOENT) {
                set_errno_error(error, errno, "cannot remove", dir, name);
                return NULL;
            }
            continue;
        }
        if (!ca_spool_name_is_valid(name))
            continue; /* quarantined records and foreign files are left alone */
        if (fstatat(self->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        track(self, name, (guint64) st.st_size);
    }
    return g_steal_pointer(&self);
}

void
ca_spool_free(CaSpool *self)
{
    if (!self)
        return;
    if (self->dirfd >= 0)
        close(self->dirfd);
    g_tree_unref(self->records);
    g_free(self->dir);
    g_free(self);
}

void
ca_spool_set_limits(CaSpool *self, guint max_records, guint64 max_bytes)
{
    self->max_records = max_records;
    self->max_bytes = max_bytes;
}

gboolean
ca_spool_put(CaSpool *self, const char *name, const char *data, gsize len, GError **error)
{
    guint64 *old;
    guint64 old_size;

    if (!ca_spool_name_is_valid(name)) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "invalid spool record name");
        return FALSE;
    }
    old = g_tree_lookup(self->records, name);
    old_size = old ? *old : 0;
    if (!old && g_tree_nnodes(self->records) >= (gint) self->max_records) {
        g_set_error(error, CA_ERROR, CA_ERROR_LIMIT, "spool %s is full (%u records)", self->dir,
                    self->max_records);
        return FALSE;
    }
    if (len > old_size && self->bytes - old_size + len > self->max_bytes) {
        g_set_error(error, CA_ERROR, CA_ERROR_LIMIT,
                    "spool %s is full (%" G_GUINT64_FORMAT " bytes)", self->dir, self->max_bytes);
        return FALSE;
    }
    if (!ca_durable_replace(self->dirfd, self->dir, name, data, len, error))
        return FALSE;
    track(self, name, len);
    return TRUE;
}

gboolean
ca_spool_append(CaSpool *self, const char *data, gsize len, char **out_name, GError **error)
{
    g_autofree char *name =
        g_strdup_printf("%0" G_STRINGIFY(SEQ_DIGITS) G_GUINT64_FORMAT, self->next_seq);

    if (!ca_spool_put(self, name, data, len, error))
        return FALSE;
    if (out_name)
        *out_name = g_steal_pointer(&name);
    return TRUE;
}

char *
ca_spool_get(CaSpool *self, const char *name, gsize *out_len, GError **error)
{
    g_autofree char *path = NULL;
    g_autoptr(GError) local = NULL;
    char *data = NULL;
    gsize len = 0;

    if (!ca_spool_name_is_valid(name)) {
        g_set_error(error, CA_ERROR, CA_ERROR_IO, "invalid spool record name");
        return NULL;
    }
    path = g_build_filename(self->dir, name, NULL);
    if (!g_file_get_contents(path, &data, &len, &local)) {
        g_set_error(error, CA_ERROR, CA_ERROR_IO, "%s", local->message);
        return NULL;
    }
    if (out_len)
        *out_len = len;
    return data;
}

gboolean
ca_spool_remove(CaSpool *self, const char *name, GError **error)
{
    if (!ca_spool_name_is_valid(name)) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "invalid spool record name");
        return FALSE;
    }
    if (unlinkat(self->dirfd, name, 0) < 0 && errno != ENOENT) {
        set_errno_error(error, errno, "cannot remove", self->dir, name);
        return FALSE;
    }
    untrack(self, name);
    return sync_dir(self, error);
}

gboolean
ca_spool_quarantine(CaSpool *self, const char *name, GError **error)
{
    g_autofree char *bad = g_strconcat(name, ".bad", NULL);

    if (!ca_spool_name_is_valid(name)) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "invalid spool record name");
        return FALSE;
    }
    if (renameat(self->dirfd, name, self->dirfd, bad) < 0 && errno != ENOENT) {
        set_errno_error(error, errno, "cannot rename", self->dir, name);
        return FALSE;
    }
    untrack(self, name);
    return sync_dir(self, error);
}

gboolean
ca_spool_contains(CaSpool *self, const char *name)
{
    return g_tree_lookup(self->records, name) != NULL;
}

static gboolean
collect_name(gpointer key, gpointer value, gpointer data)
{
    g_ptr_array_add(data, g_strdup(key));
    return FALSE;
}

GStrv
ca_spool_list(CaSpool *self)
{
    GPtrArray *names = g_ptr_array_new();

    g_tree_foreach(self->records, collect_name, names);
    g_ptr_array_add(names, NULL);
    return (GStrv) g_ptr_array_free(names, FALSE);
}

static gboolean
first_name(gpointer key, gpointer value, gpointer data)
{
    *(const char **) data = key;
    return TRUE;
}

const char *
ca_spool_first(CaSpool *self)
{
    const char *name = NULL;

    g_tree_foreach(self->records, first_name, &name);
    return name;
}

guint
ca_spool_count(CaSpool *self)
{
    return (guint) g_tree_nnodes(self->records);
}

guint64
ca_spool_bytes(CaSpool *self)
{
    return self->bytes;
}

const char *
ca_spool_get_dir(CaSpool *self)
{
    return self->dir;
}
