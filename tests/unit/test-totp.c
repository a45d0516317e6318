/* Unit tests for totp: RFC 4226 and RFC 6238 (SHA1) vectors, RFC 4648 base32 vectors and
 * the tolerant decoding of app-style secrets, the skew window, replay, the secret file. */
#include "error.h"
#include "totp.h"

#include <glib/gstdio.h>
#include <string.h>

/* RFC 6238 appendix B and RFC 4226 appendix D use this 20-byte ASCII secret. */
static const char rfc_secret[] = "12345678901234567890";
#define RFC_KEY ((const guint8 *) rfc_secret), 20

/*****************************************************************************/
/* RFC vectors */

typedef struct {
    gint64 time;
    guint64 step;
    const char *totp8;
} TotpVector;

/* RFC 6238 appendix B, the SHA1 rows: 8 digits. */
static const TotpVector rfc6238[] = {
    {59, 0x1, "94287082"},
    {1111111109, 0x23523EC, "07081804"},
    {1111111111, 0x23523ED, "14050471"},
    {1234567890, 0x273EF07, "89005924"},
    {2000000000, 0x3F940AA, "69279037"},
    {20000000000, 0x27BC86AA, "65353130"},
};

static void
test_rfc6238_8_digits(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(rfc6238); i++) {
        const TotpVector *v = &rfc6238[i];
        gint64 step = ca_totp_counter(v->time);
        g_autofree char *code = NULL;

        g_assert_cmpint(step, ==, (gint64) v->step);
        code = ca_hotp_format(ca_hotp(RFC_KEY, (guint64) step, 8), 8);
        g_assert_cmpstr(code, ==, v->totp8);
    }
}

/* The 6-digit code is the 31-bit truncation modulo 10^6: the last 6 digits of the 8. */
static void
test_rfc6238_6_digits(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(rfc6238); i++) {
        const TotpVector *v = &rfc6238[i];
        g_autofree char *code =
            ca_hotp_format(ca_hotp(RFC_KEY, (guint64) ca_totp_counter(v->time), 6), 6);
        gint64 counter = -1;

        g_assert_cmpstr(code, ==, v->totp8 + 2);
        /* And verify accepts it at exactly that time. */
        g_assert_cmpint(ca_totp_verify(RFC_KEY, code, v->time, -1, &counter), ==, CA_TOTP_OK);
        g_assert_cmpint(counter, ==, (gint64) v->step);
    }
}

/* RFC 4226 appendix D: HOTP values for counters 0-9. */
static void
test_rfc4226(void)
{
    static const char *const expect[] = {"755224", "287082", "359152", "969429", "338314",
                                         "254676", "287922", "162583", "399871", "520489"};
    static const guint32 truncated[] = {1284755224, 1094287082, 137359152, 1726969429, 1640338314,
                                        868254676,  1918287922, 82162583,  673399871,  645520489};

    for (guint64 c = 0; c < G_N_ELEMENTS(expect); c++) {
        g_autofree char *code = ca_hotp_format(ca_hotp(RFC_KEY, c, 6), 6);
        g_assert_cmpstr(code, ==, expect[c]);
        /* 9 digits keeps all but the top digit of the 31-bit value. */
        g_assert_cmpuint(ca_hotp(RFC_KEY, c, 9), ==, truncated[c] % 1000000000u);
    }
}

static void
test_counter(void)
{
    g_assert_cmpint(ca_totp_counter(0), ==, 0);
    g_assert_cmpint(ca_totp_counter(29), ==, 0);
    g_assert_cmpint(ca_totp_counter(30), ==, 1);
    g_assert_cmpint(ca_totp_counter(-1), ==, -1);
    g_assert_cmpint(ca_totp_counter(G_GINT64_CONSTANT(20000000000)), ==, 666666666);
}

static void
test_format(void)
{
    g_autofree char *a = ca_hotp_format(7081, 6);
    g_autofree char *b = ca_hotp_format(0, 6);
    g_autofree char *c = ca_hotp_format(999999, 6);

    g_assert_cmpstr(a, ==, "007081");
    g_assert_cmpstr(b, ==, "000000");
    g_assert_cmpstr(c, ==, "999999");
}

/*****************************************************************************/
/* Verification window and replay */

static char *
code_at(gint64 step)
{
    return ca_hotp_format(ca_hotp(RFC_KEY, (guint64) step, 6), 6);
}

static void
test_window(void)
{
    const gint64 t = 1111111111; /* step 0x23523ED, 1 s into it */
    const gint64 s = ca_totp_counter(t);

    for (gint64 d = -3; d <= 3; d++) {
        g_autofree char *code = code_at(s + d);
        gint64 counter = -7;
        CaTotpResult r = ca_totp_verify(RFC_KEY, code, t, -1, &counter);

        if (d >= -CA_TOTP_SKEW && d <= CA_TOTP_SKEW) {
            g_assert_cmpint(r, ==, CA_TOTP_OK);
            g_assert_cmpint(counter, ==, s + d);
        } else {
            g_assert_cmpint(r, ==, CA_TOTP_WRONG);
            g_assert_cmpint(counter, ==, -7); /* untouched */
        }
    }
    /* Edges of the step: first and last second still see the same window. */
    {
        g_autofree char *prev = code_at(s - 1);
        g_autofree char *next = code_at(s + 1);
        g_assert_cmpint(ca_totp_verify(RFC_KEY, prev, s * CA_TOTP_STEP, -1, NULL), ==, CA_TOTP_OK);
        g_assert_cmpint(ca_totp_verify(RFC_KEY, next, s * CA_TOTP_STEP + 29, -1, NULL), ==,
                        CA_TOTP_OK);
        g_assert_cmpint(ca_totp_verify(RFC_KEY, prev, s * CA_TOTP_STEP + 30, -1, NULL), ==,
                        CA_TOTP_WRONG);
    }
}

static void
test_replay(void)
{
    const gint64 t = 1234567890;
    const gint64 s = ca_totp_counter(t);
    g_autofree char *now = code_at(s);
    g_autofree char *prev = code_at(s - 1);
    g_autofree char *next = code_at(s + 1);
    gint64 used = -1;

    g_assert_cmpint(ca_totp_verify(RFC_KEY, now, t, -1, &used), ==, CA_TOTP_OK);
    g_assert_cmpint(used, ==, s);
    /* The same code again, at the same time or within its window later. */
    g_assert_cmpint(ca_totp_verify(RFC_KEY, now, t, used, NULL), ==, CA_TOTP_REPLAYED);
    g_assert_cmpint(ca_totp_verify(RFC_KEY, now, t + 30, used, NULL), ==, CA_TOTP_REPLAYED);
    /* An older, never used code is refused once a later step was used. */
    g_assert_cmpint(ca_totp_verify(RFC_KEY, prev, t, used, NULL), ==, CA_TOTP_REPLAYED);
    /* The next step's code is still good once. */
    g_assert_cmpint(ca_totp_verify(RFC_KEY, next, t, used, &used), ==, CA_TOTP_OK);
    g_assert_cmpint(used, ==, s + 1);
    g_assert_cmpint(ca_totp_verify(RFC_KEY, next, t + 30, used, NULL), ==, CA_TOTP_REPLAYED);
    /* Past the window a replayed code is simply wrong. */
    g_assert_cmpint(ca_totp_verify(RFC_KEY, now, t + 90, used, NULL), ==, CA_TOTP_WRONG);
}

static void
test_malformed(void)
{
    static const char *const bad[] = {"",       "12345",  "1234567", "12345a",  "12 456",
                                      "-12345", "+12345", "123456 ", " 123456", "１２３４５６"};

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++)
        g_assert_cmpint(ca_totp_verify(RFC_KEY, bad[i], 59, -1, NULL), ==, CA_TOTP_MALFORMED);
    /* Before the epoch nothing is valid. */
    g_assert_cmpint(ca_totp_verify(RFC_KEY, "287082", -5, -1, NULL), ==, CA_TOTP_WRONG);
    /* At t = 10 the window has no step -1. */
    g_assert_cmpint(ca_totp_verify(RFC_KEY, "755224", 10, -1, NULL), ==, CA_TOTP_OK);
    g_assert_cmpint(ca_totp_verify(RFC_KEY, "287082", 10, -1, NULL), ==, CA_TOTP_OK);
    g_assert_cmpint(ca_totp_verify(RFC_KEY, "359152", 10, -1, NULL), ==, CA_TOTP_WRONG);
    g_assert_cmpstr(ca_totp_result_to_string(CA_TOTP_REPLAYED), ==, "replayed code");
}

/*****************************************************************************/
/* Base32 */

typedef struct {
    const char *plain;
    const char *encoded;
} B32Vector;

/* RFC 4648 section 10. */
static const B32Vector rfc4648[] = {
    {"", ""},
    {"f", "MY======"},
    {"fo", "MZXQ===="},
    {"foo", "MZXW6==="},
    {"foob", "MZXW6YQ="},
    {"fooba", "MZXW6YTB"},
    {"foobar", "MZXW6YTBOI======"},
    {"12345678901234567890", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"},
};

static void
assert_decodes(const char *text, const char *plain, gsize plain_len)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) b = ca_base32_decode(text, &error);

    g_assert_no_error(error);
    g_assert_nonnull(b);
    g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b), plain, plain_len);
}

static void
test_base32_vectors(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(rfc4648); i++) {
        const B32Vector *v = &rfc4648[i];
        g_autofree char *enc = ca_base32_encode((const guint8 *) v->plain, strlen(v->plain));

        g_assert_cmpstr(enc, ==, v->encoded);
        assert_decodes(v->encoded, v->plain, strlen(v->plain));
    }
}

static void
test_base32_tolerant(void)
{
    /* What apps and people write: lowercase, groups of 4, no padding, a newline. */
    assert_decodes("gezd gnbv gy3t qojq gezd gnbv gy3t qojq\n", rfc_secret, 20);
    assert_decodes("GEZD-GNBV-GY3T-QOJQ-GEZD-GNBV-GY3T-QOJQ", rfc_secret, 20);
    assert_decodes("\tGezdGnbvGy3tQojqGezdGnbvGy3tQojq\r\n", rfc_secret, 20);
    assert_decodes("MZXW6", "foo", 3);
    assert_decodes("mzxw6===", "foo", 3);
    assert_decodes("MZXW6 = = =", "foo", 3);
    assert_decodes("MZXW6YTBOI", "foobar", 6);
    /* Set leftover bits (random-character secrets) are ignored: "MZXW7" is foo + bits. */
    assert_decodes("MZXW7", "foo", 3);
    assert_decodes("   ", "", 0);
}

static void
test_base32_invalid(void)
{
    static const char *const bad[] = {
        "MZXW6YT0", /* 0 is not in the alphabet */
        "MZXW6YT1", "MZXW6YT8",      "MZXW6YT9",  "MZ.XW6",
        "MZ_XW6",   "MZXW6\xc3\xa9", "MZ=XW6", /* data after padding */
        "M", /* 1, 3, 6 characters past a block: no encoder writes these */
        "MZX",      "MZXW6Y",        "MZXW6YTBM", "MZXW6YTBMZX",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) b = ca_base32_decode(bad[i], &error);

        g_assert_null(b);
        g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT);
    }
}

/* Every length and byte pattern round-trips. */
static void
test_base32_roundtrip(void)
{
    g_autoptr(GRand) rand = g_rand_new_with_seed(6238);
    guint8 data[64];

    for (gsize len = 0; len <= sizeof(data); len++) {
        for (int rep = 0; rep < 8; rep++) {
            g_autofree char *enc = NULL;
            g_autofree char *lower = NULL;

            for (gsize i = 0; i < len; i++)
                data[i] = (guint8) g_rand_int_range(rand, 0, 256);
            enc = ca_base32_encode(data, len);
            g_assert_cmpuint(strlen(enc) % 8, ==, 0);
            assert_decodes(enc, (const char *) data, len);
            lower = g_ascii_strdown(enc, -1);
            *strchrnul(lower, '=') = '\0';
            assert_decodes(lower, (const char *) data, len);
        }
    }
}

/*****************************************************************************/
/* Secret file, id, URI */

static char *
write_file(const char *dir, const char *name, const char *text, int mode)
{
    char *path = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    g_assert_cmpint(g_chmod(path, mode), ==, 0);
    return path;
}

static void
test_secret_file(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-totp-XXXXXX", NULL);
    g_autofree char *good =
        write_file(dir, "good", "GEZD GNBV GY3T QOJQ\nGEZD GNBV GY3T QOJQ\n", 0600);
    g_autofree char *group = write_file(dir, "group", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 0640);
    g_autofree char *other = write_file(dir, "other", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 0604);
    g_autofree char *shortp = write_file(dir, "short", "MZXW6YTBOI", 0600);
    g_autofree char *junk = write_file(dir, "junk", "not base32!", 0600);
    g_autofree char *missing = g_build_filename(dir, "missing", NULL);
    g_autofree char *big = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) secret = NULL;
    g_autoptr(GBytes) secret2 = NULL;
    g_autofree char *huge = g_strnfill(2000, 'A');

    big = write_file(dir, "big", huge, 0600);
    secret = ca_totp_load_secret(good, &error);
    g_assert_no_error(error);
    g_assert_cmpmem(g_bytes_get_data(secret, NULL), g_bytes_get_size(secret), rfc_secret, 20);
    /* Group access is refused like other access (secret-file.c's one rule). */
    secret2 = ca_totp_load_secret(group, &error);
    g_assert_null(secret2);
    g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG);
    g_clear_error(&error);

    {
        const char *bad[] = {other, shortp, junk, big, dir};
        for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
            g_autoptr(GBytes) b = ca_totp_load_secret(bad[i], &error);
            g_assert_null(b);
            g_assert_error(error, CA_ERROR, CA_ERROR_INVALID_CONFIG);
            g_clear_error(&error);
        }
    }
    {
        g_autoptr(GBytes) b = ca_totp_load_secret(missing, &error);
        g_assert_null(b);
        g_assert_error(error, CA_ERROR, CA_ERROR_IO);
    }
    g_assert_cmpint(g_remove(good), ==, 0);
    g_assert_cmpint(g_remove(group), ==, 0);
    g_assert_cmpint(g_remove(other), ==, 0);
    g_assert_cmpint(g_remove(shortp), ==, 0);
    g_assert_cmpint(g_remove(junk), ==, 0);
    g_assert_cmpint(g_remove(big), ==, 0);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void
test_secret_id_and_uri(void)
{
    g_autoptr(GBytes) a = g_bytes_new_static(rfc_secret, 20);
    g_autoptr(GBytes) b = g_bytes_new_static("12345678901234567891", 20);
    g_autofree char *ida = ca_totp_secret_id(a);
    g_autofree char *ida2 = ca_totp_secret_id(a);
    g_autofree char *idb = ca_totp_secret_id(b);
    g_autofree char *uri = ca_totp_otpauth_uri(a, "cellagent", "dev 1");

    g_assert_cmpuint(strlen(ida), ==, 16);
    g_assert_cmpstr(ida, ==, ida2);
    g_assert_cmpstr(ida, !=, idb);
    g_assert_null(strstr(ida, "3132")); /* not the hex of the secret */
    g_assert_cmpstr(uri, ==,
                    "otpauth://totp/cellagent:dev%201?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
                    "&issuer=cellagent&algorithm=SHA1&digits=6&period=30");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/totp/rfc6238/8-digits", test_rfc6238_8_digits);
    g_test_add_func("/totp/rfc6238/6-digits", test_rfc6238_6_digits);
    g_test_add_func("/totp/rfc4226", test_rfc4226);
    g_test_add_func("/totp/counter", test_counter);
    g_test_add_func("/totp/format", test_format);
    g_test_add_func("/totp/window", test_window);
    g_test_add_func("/totp/replay", test_replay);
    g_test_add_func("/totp/malformed", test_malformed);
    g_test_add_func("/totp/base32/rfc4648", test_base32_vectors);
    g_test_add_func("/totp/base32/tolerant", test_base32_tolerant);
    g_test_add_func("/totp/base32/invalid", test_base32_invalid);
    g_test_add_func("/totp/base32/roundtrip", test_base32_roundtrip);
    g_test_add_func("/totp/secret-file", test_secret_file);
    g_test_add_func("/totp/secret-id-and-uri", test_secret_id_and_uri);
    return g_test_run();
}
