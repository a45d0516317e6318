/* totp: RFC 4226/6238 one-time codes and RFC 4648 base32, on GLib's GHmac (no crypto of
 * our own). Owns: code arithmetic and the secret file format. Does not own: what a code
 * unlocks or the replay state (sms-command.c). */
#define CA_LOG_MODULE "totp"
#include "totp.h"

#include "error.h"
#include "secret-file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*****************************************************************************/
/* Base32 (RFC 4648 section 6) */

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static int
b32_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

static gboolean
b32_ignored(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '-';
}

GBytes *
ca_base32_decode(const char *text, GError **error)
{
    g_autoptr(GByteArray) out = g_byte_array_new();
    guint32 buffer = 0;
    guint bits = 0;
    gsize chars = 0;
    gboolean padding = FALSE;

    for (const char *p = text; *p; p++) {
        int v;

        if (b32_ignored(*p))
            continue;
        if (*p == '=') {
            padding = TRUE;
            continue;
        }
        v = b32_value(*p);
        if (v < 0) {
            g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                        "character %ld is not base32 (A-Z, 2-7)", (long) (p - text) + 1);
            return NULL;
        }
        if (padding) {
            g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                                "base32 data after '=' padding");
            return NULL;
        }
        buffer = (buffer << 5) | (guint32) v;
        bits += 5;
        chars++;
        if (bits >= 8) {
            guint8 byte;

            bits -= 8;
            byte = (guint8) (buffer >> bits);
            g_byte_array_append(out, &byte, 1);
            buffer &= (1u << bits) - 1;
        }
    }
    switch (chars % 8) {
    case 1:
    case 3:
    case 6:
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                    "base32 length %" G_GSIZE_FORMAT " is not a possible encoding (truncated?)",
                    chars);
        return NULL;
    default:
        break;
    }
    return g_byte_array_free_to_bytes(g_steal_pointer(&out));
}

char *
ca_base32_encode(const guint8 *data, gsize len)
{
    GString *s = g_string_sized_new((len + 4) / 5 * 8 + 1);
    guint32 buffer = 0;
    guint bits = 0;

    for (gsize i = 0; i < len; i++) {
        buffer = (buffer << 8) | data[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            g_string_append_c(s, b32_alphabet[(buffer >> bits) & 31]);
        }
        buffer &= (1u << bits) - 1;
    }
    if (bits > 0)
        g_string_append_c(s, b32_alphabet[(buffer << (5 - bits)) & 31]);
    while (s->len % 8)
        g_string_append_c(s, '=');
    return g_string_free(s, FALSE);
}

/*****************************************************************************/
/* HOTP / TOTP */

static const guint32 powers10[] = {1,      10,      100,      1000,      10000,
                                   100000, 1000000, 10000000, 100000000, 1000000000};

guint32
ca_hotp(const guint8 *key, gsize key_len, guint64 counter, guint digits)
{
    g_autoptr(GHmac) hmac = g_hmac_new(G_CHECKSUM_SHA1, key, key_len);
    guint8 msg[8];
    guint8 digest[20];
    gsize digest_len = sizeof(digest);
    guint offset;
    guint32 bin;

    g_return_val_if_fail(digits >= 6 && digits <= 9, 0);
    for (int i = 7; i >= 0; i--) {
        msg[i] = (guint8) (counter & 0xff);
        counter >>= 8;
    }
    g_hmac_update(hmac, msg, sizeof(msg));
    g_hmac_get_digest(hmac, digest, &digest_len);
    /* RFC 4226 section 5.3: dynamic truncation. */
    offset = digest[19] & 0x0f;
    bin = ((guint32) (digest[offset] & 0x7f) << 24) | ((guint32) digest[offset + 1] << 16) |
          ((guint32) digest[offset + 2] << 8) | (guint32) digest[offset + 3];
    return bin % powers10[digits];
}

char *
ca_hotp_format(guint32 value, guint digits)
{
    return g_strdup_printf("%0*u", (int) digits, value);
}

gint64
ca_totp_counter(gint64 unix_time)
{
    return unix_time < 0 ? -1 : unix_time / CA_TOTP_STEP;
}

const char *
ca_totp_result_to_string(CaTotpResult result)
{
    switch (result) {
    case CA_TOTP_OK:
        return "ok";
    case CA_TOTP_WRONG:
        return "wrong code";
    case CA_TOTP_REPLAYED:
        return "replayed code";
    case CA_TOTP_MALFORMED:
        return "malformed code";
    }
    return "?";
}

/* Compare two equally long digit strings without an early exit. */
static gboolean
digits_equal(const char *a, const char *b, gsize n)
{
    guint diff = 0;

    for (gsize i = 0; i < n; i++)
        diff |= (guint) (a[i] ^ b[i]);
    return diff == 0;
}

CaTotpResult
ca_totp_verify(const guint8 *key, gsize key_len, const char *code, gint64 unix_time,
               gint64 last_used, gint64 *out_counter)
{
    gint64 now = ca_totp_counter(unix_time);
    gint64 matched = -1;

    if (strlen(code) != CA_TOTP_DIGITS)
        return CA_TOTP_MALFORMED;
    for (const char *p = code; *p; p++) {
        if (!g_ascii_isdigit(*p))
            return CA_TOTP_MALFORMED;
    }
    if (now < 0)
        return CA_TOTP_WRONG;
    for (gint64 c = now - CA_TOTP_SKEW; c <= now + CA_TOTP_SKEW; c++) {
        g_autofree char *expect = NULL;

        if (c < 0)
            continue;
        expect = ca_hotp_format(ca_hotp(key, key_len, (guint64) c, CA_TOTP_DIGITS), CA_TOTP_DIGITS);
        /* The latest matching step wins: two steps sharing a code must not let the
         * earlier one be replayed after the later one was used. */
        if (digits_equal(expect, code, CA_TOTP_DIGITS))
            matched = c;
    }
    if (matched < 0)
        return CA_TOTP_WRONG;
    if (matched <= last_used)
        return CA_TOTP_REPLAYED;
    if (out_counter)
        *out_counter = matched;
    return CA_TOTP_OK;
}

/*****************************************************************************/
/* The secret file */

GBytes *
ca_totp_load_secret(const char *path, GError **error)
{
    g_autoptr(GBytes) data = ca_secret_file_read(path, error);
    g_autoptr(GBytes) secret = NULL;
    g_autoptr(GError) derr = NULL;
    /* The read buffer always has a NUL after the data (secret-file.c). */
    const char *buf;

    if (!data)
        return NULL;
    buf = g_bytes_get_data(data, NULL);
    secret = ca_base32_decode(buf ? buf : "", &derr);
    if (!secret) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG, "%s: %s", path, derr->message);
        return NULL;
    }
    if (g_bytes_get_size(secret) < CA_TOTP_MIN_SECRET ||
        g_bytes_get_size(secret) > CA_TOTP_MAX_SECRET) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG,
                    "%s: the secret has %" G_GSIZE_FORMAT " bytes; %d-%d are needed (e.g. "
                    "head -c 20 /dev/urandom | base32)",
                    path, g_bytes_get_size(secret), CA_TOTP_MIN_SECRET, CA_TOTP_MAX_SECRET);
        return NULL;
    }
    return g_steal_pointer(&secret);
}

char *
ca_totp_secret_id(GBytes *secret)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    static const char label[] = "cellagent-totp-secret-id:";
    gsize len = 0;
    const guint8 *data = g_bytes_get_data(secret, &len);

    g_checksum_update(sum, (const guchar *) label, sizeof(label) - 1);
    g_checksum_update(sum, data, (gssize) len);
    return g_strndup(g_checksum_get_string(sum), 16);
}

char *
ca_totp_otpauth_uri(GBytes *secret, const char *issuer, const char *account)
{
    gsize len = 0;
    const guint8 *data = g_bytes_get_data(secret, &len);
    g_autofree char *b32 = ca_base32_encode(data, len);
    g_autofree char *label = g_strconcat(issuer, ":", account, NULL);
    g_autofree char *elabel = g_uri_escape_string(label, ":", FALSE);
    g_autofree char *eissuer = g_uri_escape_string(issuer, NULL, FALSE);
    char *eq = strchr(b32, '=');

    if (eq)
        *eq = '\0'; /* apps expect the secret without padding */
    return g_strdup_printf("otpauth://totp/%s?secret=%s&issuer=%s&algorithm=SHA1&digits=%d"
                           "&period=%d",
                           elabel, b32, eissuer, CA_TOTP_DIGITS, CA_TOTP_STEP);
}
