/* diag-format: what a support bundle (cellagent --diagnose, cmd/diagnose) shows of the
 * daemons' D-Bus objects, and how it keeps secrets and personal data out: properties that
 * carry personal data (IMEI, ICCID, IMSI, own numbers, location) are redacted as in the logs,
 * message lists become counts, NetworkManager settings lose their secrets; a redactor
 * replaces every known secret and personal value in any text of the bundle. Pure.
 * Does not own: asking the daemons (agent/app/diagnose.c). */
#pragma once
#include <glib.h>

typedef struct _CaRedactor CaRedactor;

/* keep_personal: --log-personal-info (personal values stay; secrets never do). */
CaRedactor *ca_redactor_new(gboolean keep_personal);
void ca_redactor_free(CaRedactor *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaRedactor, ca_redactor_free)

gboolean ca_redactor_keeps_personal(const CaRedactor *self);
/* A secret (a password, PIN, key): replaced by "********" wherever it appears. Values shorter
 * than 4 characters are ignored (they would mangle every number). */
void ca_redactor_add_secret(CaRedactor *self, const char *value);
/* A personal value (IMEI, ICCID, IMSI, a phone number): replaced by "###" unless kept.
 * Values shorter than 5 characters are ignored. */
void ca_redactor_add_personal(CaRedactor *self, const char *value);
/* text with every secret and personal value replaced (longest first). */
char *ca_redactor_apply(const CaRedactor *self, const char *text);

/* Is this D-Bus property personal data (the value is redacted, and learned by the redactor)? */
gboolean ca_diag_property_is_personal(const char *interface, const char *property);

/* One object of a GetManagedObjects answer (interfaces: a{sa{sv}}), as indented text:
 * personal properties "###" (their values are added to r), message lists as counts. */
void ca_diag_format_object(GString *out, const char *path, GVariant *interfaces, CaRedactor *r);

/* A NetworkManager connection's settings (a{sa{sv}}) without its secrets: every key naming a
 * password, PSK, PIN, secret or private key is shown as "(removed)". */
void ca_diag_format_settings(GString *out, const char *path, GVariant *settings, CaRedactor *r);

/* The bundle as cmd/diagnose sends it: one payload (char*, JSON) per chunk_size bytes,
 * {"bundle":ID,"n":N,"of":COUNT,"data":BASE64}, n from 0; *out_sha256 (may be NULL) the
 * lowercase hex SHA-256 of the whole bundle. */
GPtrArray *ca_diag_chunks(GBytes *bundle, const char *bundle_id, gsize chunk_size,
                          char **out_sha256);

/* "6h", "30m", "2d", "90s" or plain seconds -> seconds; FALSE when not one, or 0, or
 * more than 31 days. */
gboolean ca_diag_parse_since(const char *text, gint64 *out_seconds);
