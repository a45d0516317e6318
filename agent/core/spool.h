/* spool: a durable, bounded directory of small records (one file each) that survives
 * crashes and power loss. Every write is: write "<name>.tmp", fsync it, rename it over
 * "<name>", fsync the directory; a removal is unlink + fsync of the directory. Records are
 * kept in name order, so sequence names ("ca_spool_append") give a FIFO.
 * Owns: files in one directory and its limits. Does not own: what the records mean. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

typedef struct _CaSpool CaSpool;

/* Longest record name. Names are 1-100 of A-Z a-z 0-9 . _ : - and do not start with '.'
 * nor end in ".tmp" or ".bad". */
#define CA_SPOOL_MAX_NAME 100

/* Open (creating it, mode 0700, and its parents) the spool in dir, holding at most
 * max_records records of at most max_bytes bytes in total. Leftover "*.tmp" files of an
 * interrupted write are removed. Error: CA_ERROR_IO. */
CaSpool *ca_spool_open(const char *dir, guint max_records, guint64 max_bytes, GError **error);
void ca_spool_free(CaSpool *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaSpool, ca_spool_free)

/* Change the bounds (existing records are kept even when above them). */
void ca_spool_set_limits(CaSpool *self, guint max_records, guint64 max_bytes);

/* Store a new record under the next sequence name (20 digits, above every sequence name
 * present); *out_name (optional) receives it. Errors: CA_ERROR_LIMIT (full), CA_ERROR_IO. */
gboolean ca_spool_append(CaSpool *self, const char *data, gsize len, char **out_name,
                         GError **error);
/* Store (or durably replace) the record name. Errors: CA_ERROR_INVALID_INPUT (name),
 * CA_ERROR_LIMIT (a new record, or a larger one, would exceed the bounds), CA_ERROR_IO. */
gboolean ca_spool_put(CaSpool *self, const char *name, const char *data, gsize len, GError **error);
/* Read a record; NULL with CA_ERROR_IO when missing or unreadable. The result is
 * NUL-terminated; *out_len (optional) gets its length. */
char *ca_spool_get(CaSpool *self, const char *name, gsize *out_len, GError **error);
/* Durably remove a record (missing is not an error). Error: CA_ERROR_IO. */
gboolean ca_spool_remove(CaSpool *self, const char *name, GError **error);
/* Move a record that cannot be understood aside as "<name>.bad" (kept for inspection,
 * no longer listed or counted). Error: CA_ERROR_IO. */
gboolean ca_spool_quarantine(CaSpool *self, const char *name, GError **error);

/* TRUE when a record of that name exists. */
gboolean ca_spool_contains(CaSpool *self, const char *name);
/* Record names in order, NULL-terminated, owned by the caller (g_strfreev). */
GStrv ca_spool_list(CaSpool *self);
/* The first record's name (owned by the spool, valid until the next change), or NULL. */
const char *ca_spool_first(CaSpool *self);
guint ca_spool_count(CaSpool *self);
guint64 ca_spool_bytes(CaSpool *self);
const char *ca_spool_get_dir(CaSpool *self);

/* TRUE when name is acceptable as a record name. */
gboolean ca_spool_name_is_valid(const char *name);

G_END_DECLS
