/* durable: crash-safe file replacement (see durable.h). */
#include "durable.h"

#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

gboolean
ca_durable_write_all(int fd, const void *data, gsize len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return FALSE;
        }
        p += n;
        len -= (gsize) n;
    }
    return TRUE;
}

static gboolean
fail(GError **error, int err, const char *what, const char *dir, const char *name, int dirfd,
     const char *tmp)
{
    if (tmp)
        unlinkat(dirfd, tmp, 0);
    g_set_error(error, CA_ERROR, CA_ERROR_IO, "%s %s/%s: %s", what, dir, name, g_strerror(err));
    return FALSE;
}

gboolean
ca_durable_replace(int dirfd, const char *dir, const char *name, const void *data, gsize len,
                   GError **error)
{
    return ca_durable_replace_mode(dirfd, dir, name, data, len, 0600, TRUE, error);
}

gboolean
ca_durable_replace_mode(int dirfd, const char *dir, const char *name, const void *data, gsize len,
                        mode_t mode, gboolean sync, GError **error)
{
    g_autofree char *tmp = g_strconcat(name, ".tmp", NULL);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int err;

    if (fd < 0)
        return fail(error, errno, "cannot create", dir, tmp, dirfd, NULL);
    /* Explicitly: the service's UMask=0077 would take the group's bits away. */
    if ((mode != 0600 && fchmod(fd, mode) < 0) || !ca_durable_write_all(fd, data, len) ||
        (sync && fsync(fd) < 0)) {
        err = errno;
        close(fd);
        return fail(error, err, "cannot write", dir, tmp, dirfd, tmp);
    }
    if (close(fd) < 0)
        return fail(error, errno, "cannot write", dir, tmp, dirfd, tmp);
    if (renameat(dirfd, tmp, dirfd, name) < 0)
        return fail(error, errno, "cannot rename", dir, tmp, dirfd, tmp);
    if (sync && fsync(dirfd) < 0)
        return fail(error, errno, "cannot sync", dir, ".", dirfd, NULL);
    return TRUE;
}
