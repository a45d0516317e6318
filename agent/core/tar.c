/* tar: ustar + gzip (tar.h). Pure. */
#include "tar.h"

#include <gio/gio.h>
#include <string.h>

#define BLOCK 512

struct _CaTar {
    GByteArray *data;
};

CaTar *
ca_tar_new(void)
{
    CaTar *self = g_new0(CaTar, 1);

    self->data = g_byte_array_new();
    return self;
}

void
ca_tar_free(CaTar *self)
{
    if (!self)
        return;
    g_byte_array_unref(self->data);
    g_free(self);
}

static gboolean
name_ok(const char *name)
{
    gsize len = name ? strlen(name) : 0;
    g_auto(GStrv) parts = NULL;

    if (len == 0 || len >= CA_TAR_NAME_MAX || name[0] == '/')
        return FALSE;
    parts = g_strsplit(name, "/", -1);
    for (int i = 0; parts[i]; i++) {
        if (g_str_equal(parts[i], ".."))
            return FALSE;
    }
    return TRUE;
}

/* An octal field of width w: w-1 digits and a NUL. */
static void
octal(char *field, gsize w, guint64 value)
{
    g_snprintf(field, w, "%0*" G_GINT64_MODIFIER "o", (int) (w - 1), value);
}

static void
header(CaTar *self, const char *name, char type, guint mode, guint64 size, gint64 mtime_s)
{
    guint8 h[BLOCK];
    guint sum = 0;

    memset(h, 0, sizeof h);
    memcpy(h, name, strlen(name));
    octal((char *) h + 100, 8, mode);
    octal((char *) h + 108, 8, 0);
    octal((char *) h + 116, 8, 0);
    octal((char *) h + 124, 12, size);
    octal((char *) h + 136, 12, (guint64) MAX(mtime_s, 0));
    h[156] = (guint8) type;
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memcpy(h + 265, "root", 4);
    memcpy(h + 297, "root", 4);
    /* The checksum is computed with its own field as spaces. */
    memset(h + 148, ' ', 8);
    for (gsize i = 0; i < BLOCK; i++)
        sum += h[i];
    g_snprintf((char *) h + 148, 8, "%06o", sum);
    h[155] = ' ';
    g_byte_array_append(self->data, h, BLOCK);
}

gboolean
ca_tar_add(CaTar *self, const char *name, const void *data, gsize len, gint64 mtime_s)
{
    static const guint8 zeros[BLOCK] = {0};

    if (!name_ok(name) || name[strlen(name) - 1] == '/')
        return FALSE;
    header(self, name, '0', 0644, len, mtime_s);
    if (len)
        g_byte_array_append(self->data, data, (guint) len);
    if (len % BLOCK)
        g_byte_array_append(self->data, zeros, (guint) (BLOCK - len % BLOCK));
    return TRUE;
}

gboolean
ca_tar_add_dir(CaTar *self, const char *name, gint64 mtime_s)
{
    g_autofree char *dir =
        g_str_has_suffix(name ? name : "", "/") ? g_strdup(name) : g_strconcat(name, "/", NULL);

    if (!name_ok(name) || !name_ok(dir))
        return FALSE;
    header(self, dir, '5', 0755, 0, mtime_s);
    return TRUE;
}

gsize
ca_tar_size(const CaTar *self)
{
    return self->data->len + 2 * BLOCK;
}

GBytes *
ca_tar_finish_gzip(CaTar *self, GError **error)
{
    static const guint8 zeros[2 * BLOCK] = {0};
    g_autoptr(GZlibCompressor) z = g_zlib_compressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP, 9);
    g_autoptr(GOutputStream) mem = g_memory_output_stream_new_resizable();
    g_autoptr(GOutputStream) out = g_converter_output_stream_new(mem, G_CONVERTER(z));

    g_byte_array_append(self->data, zeros, sizeof zeros);
    if (!g_output_stream_write_all(out, self->data->data, self->data->len, NULL, NULL, error) ||
        !g_output_stream_close(out, NULL, error))
        return NULL;
    return g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(mem));
}
