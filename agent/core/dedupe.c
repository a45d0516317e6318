/* dedupe: persistent bounded id -> latest value set on an append-only JSON-lines journal.
 * Line format: {"id":ID,"t":SECONDS,"v":VALUE}; the last line of an id wins. */
#include "dedupe.h"

#include "autocleanups.h"
#include "durable.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *id;
    cJSON *value;
    gint64 time_s;
    GList link; /* in CaDedupe.order; data = this entry */
} Entry;

struct _CaDedupe {
    char *path;
    int fd;              /* journal, O_APPEND */
    GHashTable *entries; /* id (borrowed from the entry) -> Entry* */
    GQueue order;        /* Entry*, least recently updated first */
    guint lines;         /* lines in the journal file */
    gboolean dirty; /* a failed append may have left a torn line, or times moved: rewrite first */
    guint max_entries;
    gint64 max_age_s;
    guint quarantined;   /* damaged lines moved to <path>.bad when the journal was opened */
    CaDedupeClock clock; /* boot-time seconds */
    gpointer clock_data;
    gint64 last_wall_s; /* now_s and clock() at the previous call, for jump detection */
    gint64 last_boot_s;
};

/* Compact when the journal holds this many more lines than live entries. */
#define SLACK_LINES 256
/* <path>.bad grows no further than this (the first damaged lines are the telling ones). */
#define QUARANTINE_MAX (256 * 1024)

static void
entry_free(gpointer data)
{
    Entry *e = data;

    g_free(e->id);
    cJSON_Delete(e->value);
    g_free(e);
}

static void
set_errno_error(GError **error, int err, const char *what, const char *path)
{
    g_set_error(error, CA_ERROR, CA_ERROR_IO, "%s %s: %s", what, path, g_strerror(err));
}

static gint64
boot_time_s(gpointer user_data)
{
    struct timespec ts;

    (void) user_data;
    if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
        return g_get_monotonic_time() / G_USEC_PER_SEC;
    return (gint64) ts.tv_sec;
}

/* Insert or update in memory; value is consumed. */
static void
put(CaDedupe *self, const char *id, cJSON *value, gint64 time_s)
{
    Entry *e = g_hash_table_lookup(self->entries, id);

    if (e) {
        cJSON_Delete(e->value);
        g_queue_unlink(&self->order, &e->link);
    } else {
        e = g_new0(Entry, 1);
        e->id = g_strdup(id);
        e->link.data = e;
        g_hash_table_insert(self->entries, e->id, e);
    }
    e->value = value;
    e->time_s = time_s;
    g_queue_push_tail_link(&self->order, &e->link);
}

static void
drop_head(CaDedupe *self)
{
    GList *link = g_queue_pop_head_link(&self->order);
    Entry *e = link->data;

    g_hash_table_remove(self->entries, e->id); /* frees e */
}

/* Apply the bounds in memory; TRUE when something was dropped. */
static gboolean
prune(CaDedupe *self, gint64 now_s)
{
    gboolean dropped = FALSE;

    while (self->order.length > self->max_entries) {
        drop_head(self);
        dropped = TRUE;
    }
    while (self->order.head &&
           ((Entry *) self->order.head->data)->time_s < now_s - self->max_age_s) {
        drop_head(self);
        dropped = TRUE;
    }
    return dropped;
}

static char *
encode_line(const char *id, const cJSON *value, gint64 time_s)
{
    g_autoptr(cJSON) line = cJSON_CreateObject();
    g_autofree char *text = NULL;

    cJSON_AddStringToObject(line, "id", id);
    cJSON_AddNumberToObject(line, "t", (double) time_s);
    cJSON_AddItemToObject(line, "v", cJSON_Duplicate(value, TRUE));
    text = cJSON_PrintUnformatted(line);
    return g_strconcat(text, "\n", NULL);
}

static gboolean
open_journal(CaDedupe *self, GError **error)
{
    if (self->fd >= 0)
        close(self->fd);
    self->fd = open(self->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (self->fd < 0) {
        set_errno_error(error, errno, "cannot open", self->path);
        return FALSE;
    }
    return TRUE;
}

/* Rewrite the journal with only the live entries. */
static gboolean
compact(CaDedupe *self, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(self->path);
    g_autofree char *name = g_path_get_basename(self->path);
    GString *all = g_string_new(NULL);
    gboolean ok;
    int dirfd;

    for (GList *l = self->order.head; l; l = l->next) {
        Entry *e = l->data;
        g_autofree char *line = encode_line(e->id, e->value, e->time_s);
        g_string_append(all, line);
    }
    dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        set_errno_error(error, errno, "cannot open", dir);
        g_string_free(all, TRUE);
        return FALSE;
    }
    ok = ca_durable_replace(dirfd, dir, name, all->str, all->len, error);
    close(dirfd);
    g_string_free(all, TRUE);
    if (!ok)
        return FALSE;
    self->lines = self->order.length;
    return open_journal(self, error);
}

static gboolean
maybe_compact(CaDedupe *self, GError **error)
{
    if (self->lines <= 2 * self->order.length + SLACK_LINES)
        return TRUE;
    return compact(self, error);
}

/* Notice a wall-clock step since the previous call and move every recorded time by it:
 * in memory, and on disk by marking the journal for a rewrite (done before the next
 * append). */
static void
follow_clock(CaDedupe *self, gint64 now_s)
{
    gint64 boot_s = self->clock(self->clock_data);
    gint64 jump = (now_s - self->last_wall_s) - (boot_s - self->last_boot_s);

    self->last_wall_s = now_s;
    self->last_boot_s = boot_s;
    if (jump <= CA_DEDUPE_JUMP_S && jump >= -CA_DEDUPE_JUMP_S)
        return;
    if (self->order.length == 0)
        return;
    for (GList *l = self->order.head; l; l = l->next)
        ((Entry *) l->data)->time_s += jump;
    self->dirty = TRUE;
}

/* Append the damaged lines to <path>.bad, synced, so a person can see what was lost; the
 * journal itself is rewritten without them. Best effort: a failure here loses nothing more
 * than the copy. */
static void
quarantine(CaDedupe *self, const GString *bad)
{
    g_autofree char *path = g_strconcat(self->path, ".bad", NULL);
    struct stat st;
    int fd;

    if (stat(path, &st) == 0 && st.st_size + (off_t) bad->len > QUARANTINE_MAX)
        return;
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    if (write(fd, bad->str, bad->len) == (ssize_t) bad->len)
        fsync(fd);
    close(fd);
}

/* Read the journal; TRUE in *out_dirty when it must be rewritten (bad or torn lines). */
static gboolean
load(CaDedupe *self, gboolean *out_dirty, GError **error)
{
    g_autofree char *data = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(GString) bad = g_string_new(NULL);
    gsize len = 0;
    char *p;

    *out_dirty = FALSE;
    if (!g_file_get_contents(self->path, &data, &len, &local)) {
        if (g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            return TRUE;
        g_set_error(error, CA_ERROR, CA_ERROR_IO, "%s", local->message);
        return FALSE;
    }
    if (len > 0 && data[len - 1] != '\n')
        *out_dirty = TRUE; /* torn last line: dropped by the rewrite */
    p = data;
    while (p < data + len) {
        char *nl = memchr(p, '\n', (gsize) (data + len - p));
        const char *start;
        g_autoptr(cJSON) line = NULL;
        const cJSON *id, *t, *v;

        if (!nl)
            break;
        *nl = '\0';
        self->lines++;
        start = p;
        line = cJSON_Parse(p);
        p = nl + 1;
        id = cJSON_GetObjectItemCaseSensitive(line, "id");
        t = cJSON_GetObjectItemCaseSensitive(line, "t");
        v = cJSON_GetObjectItemCaseSensitive(line, "v");
        if (!cJSON_IsString(id) || !cJSON_IsNumber(t) || !v) {
            *out_dirty = TRUE;
            g_string_append(bad, start);
            g_string_append_c(bad, '\n');
            continue;
        }
        put(self, id->valuestring, cJSON_Duplicate(v, TRUE), (gint64) t->valuedouble);
    }
    if (bad->len) {
        self->quarantined = 0;
        for (gsize i = 0; i < bad->len; i++)
            self->quarantined += bad->str[i] == '\n';
        quarantine(self, bad);
    }
    return TRUE;
}

CaDedupe *
ca_dedupe_open(const char *path, guint max_entries, gint64 max_age_s, gint64 now_s, GError **error)
{
    g_autoptr(CaDedupe) self = g_new0(CaDedupe, 1);
    g_autofree char *dir = g_path_get_dirname(path);
    gboolean dirty = FALSE;

    self->path = g_strdup(path);
    self->fd = -1;
    self->entries = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, entry_free);
    g_queue_init(&self->order);
    self->max_entries = max_entries;
    self->max_age_s = max_age_s;
    self->clock = boot_time_s;
    self->last_wall_s = now_s;
    self->last_boot_s = boot_time_s(NULL);
    if (g_mkdir_with_parents(dir, 0700) < 0) {
        set_errno_error(error, errno, "cannot create", dir);
        return NULL;
    }
    if (!load(self, &dirty, error))
        return NULL;
    if (prune(self, now_s) || dirty || self->lines > 2 * self->order.length + SLACK_LINES) {
        if (!compact(self, error))
            return NULL;
    } else if (!open_journal(self, error)) {
        return NULL;
    }
    return g_steal_pointer(&self);
}

void
ca_dedupe_free(CaDedupe *self)
{
    if (!self)
        return;
    if (self->fd >= 0)
        close(self->fd);
    /* Entries are freed by the table; the queue only links them. */
    g_queue_init(&self->order);
    g_hash_table_unref(self->entries);
    g_free(self->path);
    g_free(self);
}

void
ca_dedupe_set_monotonic(CaDedupe *self, CaDedupeClock clock, gpointer user_data)
{
    self->clock = clock ? clock : boot_time_s;
    self->clock_data = user_data;
    self->last_boot_s = self->clock(self->clock_data);
}

void
ca_dedupe_set_limits(CaDedupe *self, guint max_entries, gint64 max_age_s)
{
    self->max_entries = max_entries;
    self->max_age_s = max_age_s;
}

const cJSON *
ca_dedupe_lookup(CaDedupe *self, const char *id)
{
    Entry *e = g_hash_table_lookup(self->entries, id);

    return e ? e->value : NULL;
}

gint64
ca_dedupe_get_time(CaDedupe *self, const char *id)
{
    Entry *e = g_hash_table_lookup(self->entries, id);

    return e ? e->time_s : 0;
}

gboolean
ca_dedupe_record(CaDedupe *self, const char *id, const cJSON *value, gint64 now_s, GError **error)
{
    g_autofree char *line = NULL;

    follow_clock(self, now_s);
    line = encode_line(id, value, now_s);
    if (self->dirty) {
        if (!compact(self, error))
            return FALSE;
        self->dirty = FALSE;
    }
    if (!ca_durable_write_all(self->fd, line, strlen(line)) || fdatasync(self->fd) < 0) {
        set_errno_error(error, errno, "cannot append to", self->path);
        self->dirty = TRUE;
        return FALSE;
    }
    self->lines++;
    put(self, id, cJSON_Duplicate(value, TRUE), now_s);
    prune(self, now_s);
    return maybe_compact(self, error);
}

gboolean
ca_dedupe_expire(CaDedupe *self, gint64 now_s, GError **error)
{
    follow_clock(self, now_s);
    prune(self, now_s);
    if (self->dirty) {
        if (!compact(self, error))
            return FALSE;
        self->dirty = FALSE;
        return TRUE;
    }
    return maybe_compact(self, error);
}

void
ca_dedupe_foreach(CaDedupe *self, CaDedupeFunc func, gpointer user_data)
{
    for (GList *l = self->order.head; l; l = l->next) {
        Entry *e = l->data;
        func(e->id, e->value, e->time_s, user_data);
    }
}

guint
ca_dedupe_count(CaDedupe *self)
{
    return self->order.length;
}

guint
ca_dedupe_journal_lines(CaDedupe *self)
{
    return self->lines;
}

guint
ca_dedupe_get_quarantined(CaDedupe *self)
{
    return self->quarantined;
}
