/* tar: a support bundle's container: a POSIX ustar archive of in-memory files, gzip'd with
 * GIO's zlib converter (no library beyond GLib). Owns the format only; what goes in is
 * diagnose's business. */
#pragma once
#include <glib.h>

typedef struct _CaTar CaTar;

/* Longest member name (ustar's name field, without the prefix split). */
#define CA_TAR_NAME_MAX 100

CaTar *ca_tar_new(void);
void ca_tar_free(CaTar *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaTar, ca_tar_free)

/* Add a regular file (mode 0644, owner 0:0, mtime_s): FALSE when name is empty, too long,
 * absolute, or holds "..". */
gboolean ca_tar_add(CaTar *self, const char *name, const void *data, gsize len, gint64 mtime_s);
/* Add a directory entry (mode 0755); the same rules for name (a trailing / is added). */
gboolean ca_tar_add_dir(CaTar *self, const char *name, gint64 mtime_s);
/* Bytes of the archive so far (uncompressed, with the end blocks). */
gsize ca_tar_size(const CaTar *self);
/* The archive, ended with its two zero blocks and gzip'd. Errors: from the compressor. */
GBytes *ca_tar_finish_gzip(CaTar *self, GError **error);
