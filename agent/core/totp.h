/* totp: one-time codes for authenticated SMS commands. RFC 4226 HOTP and RFC 6238 TOTP
 * (HMAC-SHA1 through GLib's GHmac, 30 s step, 6 digits, one step of skew either side) and
 * RFC 4648 base32, the secret format of authenticator apps.
 * Owns: the arithmetic, decoding and loading the secret file. Does not own: replay state,
 * senders or lockouts (sms-command.c). */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

#define CA_TOTP_STEP   30 /* seconds per time step (RFC 6238 default, what apps use) */
#define CA_TOTP_DIGITS 6  /* code length apps show by default */
#define CA_TOTP_SKEW   1  /* steps accepted before and after the current one */

/* Secrets shorter than this are refused (RFC 4226 R6: at least 128 bits; 160 advised). */
#define CA_TOTP_MIN_SECRET 16
/* Longer secrets are refused (HMAC-SHA1 hashes keys over 64 bytes anyway). */
#define CA_TOTP_MAX_SECRET 128

/* Decode RFC 4648 base32 as authenticator apps write it: case-insensitive, spaces, tabs,
 * newlines and '-' between groups ignored, '=' padding optional (only at the end).
 * Leftover bits of a last partial character are ignored (random-character generators
 * leave them set). Fails (CA_ERROR_INVALID_INPUT) on other characters and on lengths no
 * encoder produces (1, 3 or 6 characters past a multiple of 8). */
GBytes *ca_base32_decode(const char *text, GError **error);
/* Encode as RFC 4648 base32 with '=' padding. */
char *ca_base32_encode(const guint8 *data, gsize len);

/* RFC 4226 HOTP: HMAC-SHA1(key, counter as 8 bytes big-endian), dynamic truncation,
 * modulo 10^digits (digits 6-9). */
guint32 ca_hotp(const guint8 *key, gsize key_len, guint64 counter, guint digits);
/* The value as text with leading zeros ("007081" for 7081 with 6 digits). */
char *ca_hotp_format(guint32 value, guint digits);
/* RFC 6238 time step of unix_time (T0 = 0, X = CA_TOTP_STEP); -1 before the epoch. */
gint64 ca_totp_counter(gint64 unix_time);

typedef enum {
    CA_TOTP_OK,        /* matches a step within the skew window that was not used yet */
    CA_TOTP_WRONG,     /* matches no step within the window */
    CA_TOTP_REPLAYED,  /* matches a step within the window at or before last_used */
    CA_TOTP_MALFORMED, /* not exactly CA_TOTP_DIGITS ASCII digits */
} CaTotpResult;

const char *ca_totp_result_to_string(CaTotpResult result);

/* Check code at unix_time against the steps counter-SKEW .. counter+SKEW. Replay rule:
 * only a step later than last_used (-1: none used yet) is accepted, so an accepted code,
 * and every code of an earlier step, is never accepted again (RFC 6238 section 5.2).
 * On CA_TOTP_OK *out_counter is the matched step (for the caller to persist). All steps of
 * the window are computed and compared, whatever matched, to keep timing flat. */
CaTotpResult ca_totp_verify(const guint8 *key, gsize key_len, const char *code, gint64 unix_time,
                            gint64 last_used, gint64 *out_counter);

/* Read a secret file: base32 text (at most 1 KiB) as ca_base32_decode() accepts it, of
 * CA_TOTP_MIN_SECRET..CA_TOTP_MAX_SECRET bytes. Refused when others may read or write it
 * (mode & 007). Errors: CA_ERROR_IO (cannot read), CA_ERROR_INVALID_CONFIG (the rest). */
GBytes *ca_totp_load_secret(const char *path, GError **error);
/* A stable name for a secret that reveals nothing about it (hex of SHA-256 over a
 * domain label and the key, 16 characters), to key persisted replay state per secret. */
char *ca_totp_secret_id(GBytes *secret);
/* otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...&algorithm=SHA1&digits=6&period=30,
 * the URI authenticator apps import (as a QR code). */
char *ca_totp_otpauth_uri(GBytes *secret, const char *issuer, const char *account);

G_END_DECLS
