/* secret-file: reading secret files under one rule (secret-file.h). */
#include "secret-file.h"

#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
wipe_free(gpointer data)
{
    char *buf = data;

    explicit_bzero(buf, CA_SECRET_FILE_MAX + 1);
    g_free(buf);
}

/* The rule on the open file's own metadata (not the path's: no race with a rename). */
static gboolean
check_stat(const char *path, const struct stat *st, GError **error)
{
    if (!S_ISREG(st->st_mode)) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG, "%s is not a regular file", path);
        return FALSE;
    }
    if (st->st_uid != 0 && st->st_uid != geteuid()) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG,
                    "%s is owned by uid %u, not by root or the agent's user (uid %u); chown it",
                    path, (unsigned) st->st_uid, (unsigned) geteuid());
        return FALSE;
    }
    if (st->st_mode & 0077) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG,
                    "%s is accessible to group or others (mode %04o); chmod go-rwx it", path,
                    (unsigned) (st->st_mode & 07777));
        return FALSE;
    }
    return TRUE;
}

GBytes *
ca_secret_file_read(const char *path, GError **error)
{
    char *buf = NULL;
    struct stat st;
    gsize got = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;

        g_set_error(error, CA_ERROR, CA_ERROR_IO, "cannot open %s: %s", path, g_strerror(e));
        return NULL;
    }
    if (fstat(fd, &st) < 0) {
        int e = errno;

        close(fd);
        g_set_error(error, CA_ERROR, CA_ERROR_IO, "cannot stat %s: %s", path, g_strerror(e));
        return NULL;
    }
    if (!check_stat(path, &st, error)) {
        close(fd);
        return NULL;
    }
    buf = g_malloc0(CA_SECRET_FILE_MAX + 1);
    while (got <= CA_SECRET_FILE_MAX) {
        ssize_t n = read(fd, buf + got, CA_SECRET_FILE_MAX + 1 - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;

            close(fd);
            wipe_free(buf);
            g_set_error(error, CA_ERROR, CA_ERROR_IO, "cannot read %s: %s", path, g_strerror(e));
            return NULL;
        }
        if (n == 0)
            break;
        got += (gsize) n;
    }
    close(fd);
    if (got > CA_SECRET_FILE_MAX) {
        wipe_free(buf);
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG, "%s is larger than %d bytes", path,
                    CA_SECRET_FILE_MAX);
        return NULL;
    }
    if (memchr(buf, '\0', got)) {
        wipe_free(buf);
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG, "%s contains a NUL byte", path);
        return NULL;
    }
    return g_bytes_new_with_free_func(buf, got, wipe_free, buf);
}

char *
ca_secret_file_read_line(const char *path, GError **error)
{
    g_autoptr(GBytes) data = ca_secret_file_read(path, error);
    const char *text;
    gsize len = 0;
    const char *end;
    char *line;

    if (!data)
        return NULL;
    text = g_bytes_get_data(data, &len);
    end = len ? memchr(text, '\n', len) : NULL;
    line = g_strndup(text ? text : "", end ? (gsize) (end - text) : len);
    /* Only the line end goes: spaces may be part of a password. */
    if (*line && line[strlen(line) - 1] == '\r')
        line[strlen(line) - 1] = '\0';
    if (!*line) {
        g_free(line);
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG,
                    "%s: the first line is empty (an empty secret is never used)", path);
        return NULL;
    }
    return line;
}
