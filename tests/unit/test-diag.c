/* Unit tests for the support bundle's pure parts: the ustar + gzip writer (headers,
 * checksums, padding, end blocks, refused names), the redactor (secrets, personal values,
 * --log-personal-info, longest first, short values ignored), D-Bus objects and
 * NetworkManager settings as text (personal properties, message counts, secrets removed)
 * and --since periods. */
#include "diag-format.h"
#include "autocleanups.h"
#include "tar.h"

#include <cjson/cJSON.h>
#include <gio/gio.h>
#include <string.h>

static GBytes *
gunzip(GBytes *gz)
{
    g_autoptr(GZlibDecompressor) z = g_zlib_decompressor_new(G_ZLIB_COMPRESSOR_FORMAT_GZIP);
    g_autoptr(GInputStream) mem = g_memory_input_stream_new_from_bytes(gz);
    g_autoptr(GInputStream) in = g_converter_input_stream_new(mem, G_CONVERTER(z));
    g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable();
    g_autoptr(GError) error = NULL;

    g_output_stream_splice(
        out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL,
        &error);
    g_assert_no_error(error);
    return g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(out));
}

static guint64
octal_field(const guint8 *h, gsize off, gsize len)
{
    g_autofree char *s = g_strndup((const char *) h + off, len);

    return g_ascii_strtoull(s, NULL, 8);
}

static void
check_header(const guint8 *h, const char *name, char type, guint64 size)
{
    guint sum = 0;

    g_assert_cmpstr((const char *) h, ==, name);
    g_assert_cmpint(h[156], ==, type);
    g_assert_cmpuint(octal_field(h, 124, 12), ==, size);
    g_assert_cmpuint(octal_field(h, 136, 12), ==, 1796551200);
    g_assert_cmpmem(h + 257, 6, "ustar", 6);
    g_assert_cmpmem(h + 263, 2, "00", 2);
    for (gsize i = 0; i < 512; i++)
        sum += (i >= 148 && i < 156) ? ' ' : h[i];
    g_assert_cmpuint(octal_field(h, 148, 7), ==, sum);
}

static void
test_tar(void)
{
    g_autoptr(CaTar) tar = ca_tar_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) gz = NULL, raw = NULL;
    const guint8 *d;
    gsize len;
    char big[1000];

    memset(big, 'x', sizeof big);
    g_assert_true(ca_tar_add_dir(tar, "bundle", 1796551200));
    g_assert_true(ca_tar_add(tar, "bundle/a.txt", "hello\n", 6, 1796551200));
    g_assert_true(ca_tar_add(tar, "bundle/big", big, sizeof big, 1796551200));
    g_assert_true(ca_tar_add(tar, "bundle/empty", "", 0, 1796551200));
    /* Refused: absolute, empty, "..", too long, a directory name for a file. */
    g_assert_false(ca_tar_add(tar, "/etc/passwd", "x", 1, 0));
    g_assert_false(ca_tar_add(tar, "", "x", 1, 0));
    g_assert_false(ca_tar_add(tar, "bundle/../x", "x", 1, 0));
    g_assert_false(ca_tar_add(tar, "bundle/", "x", 1, 0));
    {
        g_autofree char *longname = g_strnfill(CA_TAR_NAME_MAX, 'n');
        g_assert_false(ca_tar_add(tar, longname, "x", 1, 0));
    }
    /* dir + (hdr + 1) + (hdr + 2) + hdr, + 2 end blocks */
    g_assert_cmpuint(ca_tar_size(tar), ==, 512 * (1 + 2 + 3 + 1 + 2));
    gz = ca_tar_finish_gzip(tar, &error);
    g_assert_no_error(error);
    d = g_bytes_get_data(gz, &len);
    g_assert_cmpuint(len, >, 18);
    g_assert_cmpint(d[0], ==, 0x1f); /* gzip magic */
    g_assert_cmpint(d[1], ==, 0x8b);
    raw = gunzip(gz);
    d = g_bytes_get_data(raw, &len);
    g_assert_cmpuint(len, ==, 512 * 9);
    check_header(d, "bundle/", '5', 0);
    check_header(d + 512, "bundle/a.txt", '0', 6);
    g_assert_cmpmem(d + 1024, 6, "hello\n", 6);
    g_assert_cmpint(d[1024 + 6], ==, 0); /* padding */
    check_header(d + 1536, "bundle/big", '0', sizeof big);
    g_assert_cmpmem(d + 2048, sizeof big, big, sizeof big);
    check_header(d + 3072, "bundle/empty", '0', 0);
    for (gsize i = 3584; i < len; i++)
        g_assert_cmpint(d[i], ==, 0);
}

static void
test_redactor(void)
{
    g_autoptr(CaRedactor) r = ca_redactor_new(FALSE);
    g_autoptr(CaRedactor) keep = ca_redactor_new(TRUE);
    g_autofree char *a = NULL, *b = NULL;

    ca_redactor_add_secret(r, "hunter22\n"); /* stripped */
    ca_redactor_add_secret(r, "hunter2233"); /* longer, holds the first: replaced whole */
    ca_redactor_add_secret(r, "abc");        /* too short: ignored */
    ca_redactor_add_personal(r, "639020000000001");
    ca_redactor_add_personal(r, "1234"); /* too short: ignored */
    a = ca_redactor_apply(r, "pw=hunter2233 pw2=hunter22 imsi=639020000000001 abc 1234 "
                             "twice 639020000000001");
    g_assert_cmpstr(a, ==, "pw=******** pw2=******** imsi=### abc 1234 twice ###");
    ca_redactor_add_secret(keep, "s3cret-value");
    ca_redactor_add_personal(keep, "639020000000001");
    b = ca_redactor_apply(keep, "s3cret-value 639020000000001");
    g_assert_cmpstr(b, ==, "******** 639020000000001");
    g_assert_true(ca_redactor_keeps_personal(keep));
}

static void
test_format_object(void)
{
    g_autoptr(CaRedactor) r = ca_redactor_new(FALSE);
    g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_parsed(
        "{'org.freedesktop.ModemManager1.Modem': {'Plugin': <'simtech'>, "
        "'EquipmentIdentifier': <'861234567890124'>, 'OwnNumbers': <['+254700000001']>}, "
        "'org.freedesktop.ModemManager1.Modem.Messaging': {'Messages': "
        "<[objectpath '/org/freedesktop/ModemManager1/SMS/1', '/org/freedesktop/"
        "ModemManager1/SMS/2']>}}"));
    g_autoptr(GString) out = g_string_new(NULL);
    g_autofree char *later = NULL;

    ca_diag_format_object(out, "/org/freedesktop/ModemManager1/Modem/0", v, r);
    g_assert_nonnull(strstr(out->str, "/org/freedesktop/ModemManager1/Modem/0\n"));
    g_assert_nonnull(strstr(out->str, "    Plugin: 'simtech'\n"));
    g_assert_nonnull(strstr(out->str, "    EquipmentIdentifier: ###\n"));
    g_assert_nonnull(strstr(out->str, "    OwnNumbers: ###\n"));
    g_assert_nonnull(strstr(out->str, "    Messages: 2 messages\n"));
    g_assert_null(strstr(out->str, "SMS/1"));
    /* The values were learned: a log line elsewhere is masked too. */
    later = ca_redactor_apply(r, "imei 861234567890124 from +254700000001");
    g_assert_cmpstr(later, ==, "imei ### from ###");
    g_assert_true(ca_diag_property_is_personal("org.freedesktop.ModemManager1.Sim", "Imsi"));
    g_assert_false(ca_diag_property_is_personal("org.freedesktop.ModemManager1.Sim", "Active"));
    g_assert_false(ca_diag_property_is_personal("org.freedesktop.NetworkManager", "Imsi"));
}

/* ModemManager's enums carry their names (as mmcli shows them); other numbers do not. */
static void
test_format_object_enums(void)
{
    g_autoptr(CaRedactor) r = ca_redactor_new(FALSE);
    g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_parsed(
        "{'org.freedesktop.ModemManager1.Modem': {'State': <int32 11>, "
        "'StateFailedReason': <uint32 2>, 'UnlockRequired': <uint32 2>, "
        "'PowerState': <uint32 3>, 'AccessTechnologies': <uint32 16416>, "
        "'SignalQuality': <(uint32 80, true)>, 'MaxBearers': <uint32 1>}, "
        "'org.freedesktop.ModemManager1.Modem.Modem3gpp': {'RegistrationState': <uint32 5>}, "
        "'org.freedesktop.ModemManager1.Bearer': {'State': <int32 11>}}"));
    g_autoptr(GString) out = g_string_new(NULL);

    ca_diag_format_object(out, "/org/freedesktop/ModemManager1/Modem/0", v, r);
    g_assert_nonnull(strstr(out->str, "    State: 11 (connected)\n"));
    g_assert_nonnull(strstr(out->str, "    StateFailedReason: 2 (sim-missing)\n"));
    g_assert_nonnull(strstr(out->str, "    UnlockRequired: 2 (sim-pin)\n"));
    g_assert_nonnull(strstr(out->str, "    PowerState: 3 (on)\n"));
    /* 16416 = UMTS (1 << 5) | LTE (1 << 14) */
    g_assert_nonnull(strstr(out->str, "    AccessTechnologies: 16416 (umts,lte)\n"));
    g_assert_nonnull(strstr(out->str, "    RegistrationState: 5 (roaming)\n"));
    g_assert_nonnull(strstr(out->str, "    MaxBearers: 1\n"));
    g_assert_nonnull(strstr(out->str, "    State: 11\n")); /* the bearer's is not a modem state */
}

static void
test_format_object_personal_kept(void)
{
    g_autoptr(CaRedactor) r = ca_redactor_new(TRUE);
    g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_parsed(
        "{'org.freedesktop.ModemManager1.Sim': {'Imsi': <'639020000000001'>}}"));
    g_autoptr(GString) out = g_string_new(NULL);

    ca_diag_format_object(out, "/org/freedesktop/ModemManager1/SIM/0", v, r);
    g_assert_nonnull(strstr(out->str, "    Imsi: '639020000000001'\n"));
}

static void
test_format_settings(void)
{
    g_autoptr(CaRedactor) r = ca_redactor_new(FALSE);
    g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_new_parsed(
        "{'connection': {'id': <'cellular'>, 'type': <'gsm'>}, "
        "'gsm': {'apn': <'internet'>, 'password': <'apn-pass-1'>, 'password-flags': <uint32 0>, "
        "'pin': <'4321'>}, '802-11-wireless-security': {'psk': <'wifi-psk-99'>}, "
        "'vpn': {'secrets': <{'x': 'y'}>}}"));
    g_autoptr(GString) out = g_string_new(NULL);
    g_autofree char *later = NULL;

    ca_diag_format_settings(out, "/org/freedesktop/NetworkManager/Settings/1", v, r);
    g_assert_nonnull(strstr(out->str, "  [connection]\n    id: 'cellular'\n"));
    g_assert_nonnull(strstr(out->str, "    apn: 'internet'\n"));
    g_assert_nonnull(strstr(out->str, "    password: (removed)\n"));
    g_assert_nonnull(strstr(out->str, "    password-flags: 0\n"));
    g_assert_nonnull(strstr(out->str, "    pin: (removed)\n"));
    g_assert_nonnull(strstr(out->str, "    psk: (removed)\n"));
    g_assert_nonnull(strstr(out->str, "    secrets: (removed)\n"));
    g_assert_null(strstr(out->str, "apn-pass-1"));
    g_assert_null(strstr(out->str, "wifi-psk-99"));
    later = ca_redactor_apply(r, "echoed apn-pass-1");
    g_assert_cmpstr(later, ==, "echoed ********");
}

/* Chunks reassemble to the bundle and its SHA-256, each within the chunk size. */
static void
test_chunks(void)
{
    static const gsize sizes[] = {0, 1, 1023, 1024, 1025, 5000};

    for (gsize i = 0; i < G_N_ELEMENTS(sizes); i++) {
        g_autofree guint8 *data = g_malloc(sizes[i] + 1);
        g_autoptr(GBytes) bundle = NULL;
        g_autoptr(GPtrArray) chunks = NULL;
        g_autoptr(GByteArray) back = g_byte_array_new();
        g_autofree char *sha = NULL, *want = NULL;

        for (gsize j = 0; j < sizes[i]; j++)
            data[j] = (guint8) (j * 7 + 3);
        bundle = g_bytes_new(data, sizes[i]);
        chunks = ca_diag_chunks(bundle, "b-1", 1024, &sha);
        want = g_compute_checksum_for_data(G_CHECKSUM_SHA256, data, sizes[i]);
        g_assert_cmpstr(sha, ==, want);
        g_assert_cmpuint(chunks->len, ==, sizes[i] ? (sizes[i] + 1023) / 1024 : 1);
        for (guint n = 0; n < chunks->len; n++) {
            g_autoptr(cJSON) o = cJSON_Parse(g_ptr_array_index(chunks, n));
            const char *b64 = cJSON_GetStringValue(cJSON_GetObjectItem(o, "data"));
            gsize len = 0;
            g_autofree guint8 *part = g_base64_decode(b64, &len);

            g_assert_cmpstr(cJSON_GetStringValue(cJSON_GetObjectItem(o, "bundle")), ==, "b-1");
            g_assert_cmpint(cJSON_GetObjectItem(o, "n")->valueint, ==, n);
            g_assert_cmpint(cJSON_GetObjectItem(o, "of")->valueint, ==, chunks->len);
            g_assert_cmpuint(len, <=, 1024);
            g_byte_array_append(back, part, (guint) len);
        }
        g_assert_cmpmem(back->data, back->len, data, sizes[i]);
    }
}

typedef struct {
    const char *text;
    gboolean ok;
    gint64 seconds;
} SinceCase;

static const SinceCase since_cases[] = {
    {"6h", TRUE, 21600}, {"30m", TRUE, 1800}, {"2d", TRUE, 172800},
    {"90s", TRUE, 90},   {"90", TRUE, 90},    {"31d", TRUE, 2678400},
    {"32d", FALSE, 0},   {"0h", FALSE, 0},    {"", FALSE, 0},
    {"h", FALSE, 0},     {"6hh", FALSE, 0},   {"6w", FALSE, 0},
    {"-6h", FALSE, 0},   {NULL, FALSE, 0},    {"99999999999999999999d", FALSE, 0},
};

static void
test_since(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(since_cases); i++) {
        const SinceCase *c = &since_cases[i];
        gint64 s = -1;

        g_test_message("case %s", c->text ? c->text : "(null)");
        g_assert_cmpint(ca_diag_parse_since(c->text, &s), ==, c->ok);
        if (c->ok)
            g_assert_cmpint(s, ==, c->seconds);
        else
            g_assert_cmpint(s, ==, -1);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/diag/tar", test_tar);
    g_test_add_func("/diag/redactor", test_redactor);
    g_test_add_func("/diag/format-object", test_format_object);
    g_test_add_func("/diag/format-object-enums", test_format_object_enums);
    g_test_add_func("/diag/format-object/personal-kept", test_format_object_personal_kept);
    g_test_add_func("/diag/format-settings", test_format_settings);
    g_test_add_func("/diag/since", test_since);
    g_test_add_func("/diag/chunks", test_chunks);
    return g_test_run();
}
