/* config: the configuration as an immutable, refcounted snapshot.
 * One static table of keys (group, key, type, default, range, doc) drives defaults,
 * validation, --check-config output and the generated documentation.
 * Owns: parsing and validating files. Does not own: applying settings (modules do). */
#pragma once
#include <cjson/cJSON.h>
#include <glib.h>

typedef struct _CaConfig CaConfig;

typedef enum {
    CA_KEY_STRING, /* free text, length range min..max */
    CA_KEY_INT,    /* integer in min..max */
    CA_KEY_BOOL,   /* true|false */
    CA_KEY_ENUM,   /* one of choices */
    CA_KEY_PATH,   /* absolute file or directory path (may be empty when min == 0) */
} CaKeyType;

typedef enum {
    CA_KEY_FLAG_NONE = 0,
    CA_KEY_FLAG_SECRET = 1 << 0,     /* masked in --check-config output */
    CA_KEY_FLAG_LIST = 1 << 1,       /* ';'-separated list; min/max bound each element */
    CA_KEY_FLAG_LOCAL = 1 << 2,      /* never set by remote configuration (docs/remote-config.md) */
    CA_KEY_FLAG_CREDENTIAL = 1 << 3, /* names a credential: set remotely only when
                                      * [remote-config] allowed-groups names it as group.key */
} CaKeyFlags;

typedef struct {
    const char *group; /* "uplink-*" matches every group starting with "uplink-" */
    const char *key;
    CaKeyType type;
    const char *def;     /* default as text ("" = empty); NULL = derived, see def_doc */
    const char *def_doc; /* default as documented, when it is derived */
    gint64 min, max;
    const char *const *choices;                       /* CA_KEY_ENUM */
    gboolean (*check)(const char *value, char **why); /* extra validation, may be NULL */
    CaKeyFlags flags;
    const char *doc;
} CaConfigKey;

/* The table itself (terminated by a zeroed entry). */
const CaConfigKey *ca_config_keys(void);

#define CA_CONFIG_DEFAULT_PATH "/etc/cellagent/cellagent.conf"

/* Load path (NULL: the default path, which may be absent) plus "<path>.d/\*.conf"
 * in name order, later files winning. On failure the GError (CA_ERROR_INVALID_CONFIG)
 * holds one line per problem: "FILE:LINE: [group] key: problem". */
CaConfig *ca_config_load(const char *path, GError **error);
/* Same from in-memory text (tests, fuzzing); name is used in messages. */
CaConfig *ca_config_load_from_data(const char *name, const char *data, gsize len, GError **error);
/* ca_config_load() plus one more layer read last (the remote configuration,
 * docs/remote-config.md), named layer_name in messages and sources, without line numbers
 * (the layer is generated text). layer_data NULL: no layer. */
CaConfig *ca_config_load_layered(const char *path, const char *layer_name, const char *layer_data,
                                 gsize layer_len, GError **error);

CaConfig *ca_config_ref(CaConfig *config);
void ca_config_unref(CaConfig *config);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaConfig, ca_config_unref)

/* Getters for table keys; a key missing from the table is a programmer error. */
const char *ca_config_get_string(const CaConfig *config, const char *group, const char *key);
gint64 ca_config_get_int(const CaConfig *config, const char *group, const char *key);
gboolean ca_config_get_bool(const CaConfig *config, const char *group, const char *key);
/* List keys: a NULL-terminated array owned by the config. */
const char *const *ca_config_get_list(const CaConfig *config, const char *group, const char *key);
/* Where a key's value comes from: *out_file is the file or layer name (NULL: the default
 * or a derived value), *out_line its line (0: unknown). FALSE when the key has no value. */
gboolean ca_config_get_source(const CaConfig *config, const char *group, const char *key,
                              const char **out_file, int *out_line);
/* The table's entry for [group] key (groups matched against "prefix-*" entries), or NULL. */
const CaConfigKey *ca_config_find_key(const char *group, const char *key);
/* TRUE when group is a group of the table (or matches one of its "prefix-*" groups). */
gboolean ca_config_group_known(const char *group);
/* Was the key set in a file (as opposed to defaulted)? */
gboolean ca_config_is_set(const CaConfig *config, const char *group, const char *key);
/* Groups present in the files whose name starts with prefix (e.g. "uplink-"), sorted. */
GStrv ca_config_get_groups_with_prefix(const CaConfig *config, const char *prefix);
/* Warnings (unknown keys and groups), one line each, NULL-terminated. */
const char *const *ca_config_get_warnings(const CaConfig *config);
/* The files that were read, in order. */
const char *const *ca_config_get_files(const CaConfig *config);

/* TRUE when every key of group (or every group with that prefix when it ends in
 * '*') has the same value in a and b: modules re-apply only what changed on reload. */
gboolean ca_config_group_equal(const CaConfig *a, const CaConfig *b, const char *group);

/* The effective settings as INI text, secrets masked (for --check-config). */
char *ca_config_dump(const CaConfig *config);
/* The effective settings as JSON for cmd/config-get: {GROUP:{KEY:{"value":TEXT,"source":
 * "FILE:LINE" | LAYER | "default"}}}, secrets masked; a cJSON (the caller owns it). */
cJSON *ca_config_sources_json(const CaConfig *config);
/* Documentation generated from the table: a Markdown table and an example file. */
char *ca_config_reference_markdown(void);
char *ca_config_reference_ini(void);

/* Validators shared with other modules (MQTT topic segments, ids). */
gboolean ca_config_check_device_id(const char *value, char **why);
