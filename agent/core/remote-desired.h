/* remote-desired: the backend's <base>/config/desired document, pure. Its [remote-config]
 * settings, the checks a document must pass before it can touch anything (size, shape,
 * version, allowed groups and keys, no credentials unless allowed) and its translation into
 * the remote configuration layer: INI text read after the local files.
 * Owns: the document format (docs/remote-config.md). Does not own: validating values
 * (config.c, on the files plus the layer), files (remote-layer.c), the trial (agent). */
#pragma once
#include "config.h"

#include <cjson/cJSON.h>

/* Highest version accepted: integers stay exact in JSON doubles up to 2^53. */
#define CA_REMOTE_VERSION_MAX ((gint64) 9007199254740991)

typedef struct {
    gboolean enabled;
    GStrv allowed;         /* allowed-groups: GROUP, PREFIX-*, GROUP.KEY */
    gsize max_bytes;       /* largest document */
    gint64 confirm_within; /* seconds, when the document gives none */
} CaRemoteConfigSettings;

void ca_remote_config_settings_load(CaRemoteConfigSettings *out, const CaConfig *config);
void ca_remote_config_settings_clear(CaRemoteConfigSettings *settings);

typedef struct {
    gint64 version;
    gint64 confirm_within; /* seconds */
    char *layer;           /* the layer's INI text, first line "# version=N" */
    char *hash;            /* "sha256:HEX" of the layer's settings (without the version line) */
} CaRemoteDesired;

void ca_remote_desired_free(CaRemoteDesired *d);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaRemoteDesired, ca_remote_desired_free)

/* Check and translate payload. On refusal NULL, and one line per problem appended to errors
 * ("version: ...", "[group] key: ..."); *out_version is the document's version whenever it
 * could be read (so a refusal can name it), else 0. Values are not range-checked here: the
 * caller loads the files plus the layer with ca_config_load_layered(). */
CaRemoteDesired *ca_remote_desired_parse(const char *payload, gsize len,
                                         const CaRemoteConfigSettings *set, gint64 *out_version,
                                         GPtrArray *errors);

/* "sha256:HEX" of a layer's settings (its text after the "# version=N" line). */
char *ca_remote_layer_hash(const char *layer);
/* The version named by a layer's first line, 0 when none. */
gint64 ca_remote_layer_version(const char *layer);
/* TRUE when both layers set the same (their texts after the version line are equal). */
gboolean ca_remote_layer_same_settings(const char *a, const char *b);
