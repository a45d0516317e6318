/* durable: crash-safe files for the SMS spool and the dedupe journal.
 * A file is replaced by writing NAME.tmp, fsync, rename over NAME, fsync the directory:
 * after a crash or power loss either the old or the new content is there, never a mix. */
#pragma once
#include <glib.h>
#include <sys/types.h>

/* write(2) until done or a real error (EINTR retried); on FALSE errno says why. */
gboolean ca_durable_write_all(int fd, const void *data, gsize len);

/* Replace NAME in the directory open as dirfd (dir is its path, for messages).
 * Errors: CA_ERROR_IO naming the file. */
gboolean ca_durable_replace(int dirfd, const char *dir, const char *name, const void *data,
                            gsize len, GError **error);

/* The same with the file's mode (e.g. 0640 for a file the service's group reads); sync FALSE
 * skips both fsyncs: still atomic for readers (the rename), not across a power loss, for
 * files in /run that a power loss removes anyway (no blocking I/O, no flash wear). */
gboolean ca_durable_replace_mode(int dirfd, const char *dir, const char *name, const void *data,
                                 gsize len, mode_t mode, gboolean sync, GError **error);
