/* remote-desired: the config/desired document: checks and translation into a layer
 * (remote-desired.h). */
#include "remote-desired.h"

#include "autocleanups.h"
#include "error.h"
#include "json-strict.h"

#include <math.h>
#include <string.h>

#define CONFIRM_WITHIN_MIN 10
#define CONFIRM_WITHIN_MAX 3600

/*****************************************************************************/
/* Settings */

void
ca_remote_config_settings_load(CaRemoteConfigSettings *out, const CaConfig *config)
{
    memset(out, 0, sizeof *out);
    out->enabled = ca_config_get_bool(config, "remote-config", "enabled");
    out->allowed =
        g_strdupv((char **) ca_config_get_list(config, "remote-config", "allowed-groups"));
    out->max_bytes = (gsize) ca_config_get_int(config, "remote-config", "max-bytes");
    out->confirm_within = ca_config_get_int(config, "remote-config", "confirm-within");
}

void
ca_remote_config_settings_clear(CaRemoteConfigSettings *settings)
{
    if (!settings)
        return;
    g_strfreev(settings->allowed);
    memset(settings, 0, sizeof *settings);
}

/*****************************************************************************/
/* The document */

void
ca_remote_desired_free(CaRemoteDesired *d)
{
    if (!d)
        return;
    g_free(d->layer);
    g_free(d->hash);
    g_free(d);
}

/* Does an allowed-groups entry's group part (GROUP or PREFIX-*) cover group? */
static gboolean
entry_covers_group(const char *entry_group, gsize n, const char *group)
{
    if (n > 0 && entry_group[n - 1] == '*')
        return strncmp(entry_group, group, n - 1) == 0 && group[n - 1] != '\0';
    return strlen(group) == n && strncmp(entry_group, group, n) == 0;
}

/* NULL when the document may set [group] key, else why not. */
static const char *
key_refusal(const CaRemoteConfigSettings *set, const CaConfigKey *k, const char *group,
            const char *key)
{
    gboolean group_allowed = FALSE, key_named = FALSE;

    if (k->flags & CA_KEY_FLAG_LOCAL)
        return "set only in the local files, never remotely";
    for (char **e = set->allowed; e && *e; e++) {
        const char *dot = strchr(*e, '.');
        gsize n = dot ? (gsize) (dot - *e) : strlen(*e);

        if (!entry_covers_group(*e, n, group))
            continue;
        if (!dot)
            group_allowed = TRUE;
        else if (g_str_equal(dot + 1, key))
            key_named = TRUE;
    }
    if (key_named)
        return NULL;
    if (k->flags & CA_KEY_FLAG_CREDENTIAL)
        return "a credential: set remotely only when [remote-config] allowed-groups names it as "
               "group.key";
    if (!group_allowed)
        return "the group is not in [remote-config] allowed-groups";
    return NULL;
}

/* A group name a layer can carry: the table's, with a suffix of A-Z a-z 0-9 . _ - after
 * "prefix-" groups (INI syntax and topic-free). */
static gboolean
group_name_ok(const char *group)
{
    if (!*group || strlen(group) > 64)
        return FALSE;
    for (const char *p = group; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '.' && *p != '_' && *p != '-')
            return FALSE;
    }
    return ca_config_group_known(group);
}

/* One scalar as the text a file would hold; NULL + *why when it cannot be one. */
static char *
scalar_text(const cJSON *v, const char **why)
{
    if (cJSON_IsString(v)) {
        for (const char *p = v->valuestring; *p; p++) {
            if ((guchar) *p < 0x20 || *p == 0x7f) {
                *why = "control characters are not allowed";
                return NULL;
            }
        }
        return g_strdup(v->valuestring);
    }
    if (cJSON_IsBool(v))
        return g_strdup(cJSON_IsTrue(v) ? "true" : "false");
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;

        if (!isfinite(d) || d != floor(d) || fabs(d) > (double) CA_REMOTE_VERSION_MAX) {
            *why = "numbers must be integers";
            return NULL;
        }
        return g_strdup_printf("%" G_GINT64_FORMAT, (gint64) d);
    }
    *why = "must be a string, an integer or a boolean (a list key also takes an array)";
    return NULL;
}

/* A key's value as text: scalars, or an array of scalars for list keys. */
static char *
value_text(const CaConfigKey *k, const cJSON *v, const char **why)
{
    GString *s;
    const cJSON *e;

    if (!cJSON_IsArray(v))
        return scalar_text(v, why);
    if (!(k->flags & CA_KEY_FLAG_LIST)) {
        *why = "not a list key: give one value, not an array";
        return NULL;
    }
    s = g_string_new(NULL);
    cJSON_ArrayForEach(e, v)
    {
        g_autofree char *t = scalar_text(e, why);

        if (!t || strchr(t, ';')) {
            if (t)
                *why = "a list element cannot contain ';'";
            g_string_free(s, TRUE);
            return NULL;
        }
        if (s->len)
            g_string_append_c(s, ';');
        g_string_append(s, t);
    }
    return g_string_free(s, FALSE);
}

static void G_GNUC_PRINTF(2, 3) add_error(GPtrArray *errors, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_ptr_array_add(errors, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

static gint64
read_version(const cJSON *root, GPtrArray *errors)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "version");

    if (!v) {
        add_error(errors, "version: missing");
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
        v->valuedouble > (double) CA_REMOTE_VERSION_MAX) {
        add_error(errors, "version: must be an integer from 1 to %" G_GINT64_FORMAT,
                  CA_REMOTE_VERSION_MAX);
        return 0;
    }
    return (gint64) v->valuedouble;
}

/* The groups object into kf (sorted by group and key, so equal documents give equal text). */
static void
read_groups(const cJSON *groups, const CaRemoteConfigSettings *set, GKeyFile *kf, GPtrArray *errors)
{
    const cJSON *g;

    if (!cJSON_IsObject(groups)) {
        add_error(errors, "groups: missing or not an object");
        return;
    }
    cJSON_ArrayForEach(g, groups)
    {
        const cJSON *kv;

        if (!group_name_ok(g->string)) {
            add_error(errors, "[%.64s]: not a group of the configuration", g->string);
            continue;
        }
        if (!cJSON_IsObject(g)) {
            add_error(errors, "[%s]: must be an object of keys", g->string);
            continue;
        }
        cJSON_ArrayForEach(kv, g)
        {
            const CaConfigKey *k = ca_config_find_key(g->string, kv->string);
            const char *why = NULL;
            g_autofree char *text = NULL;

            if (!k) {
                add_error(errors, "[%s] %.64s: unknown key", g->string, kv->string);
                continue;
            }
            why = key_refusal(set, k, g->string, kv->string);
            if (!why)
                text = value_text(k, kv, &why);
            if (!text) {
                add_error(errors, "[%s] %s: %s", g->string, kv->string, why);
                continue;
            }
            g_key_file_set_string(kf, g->string, kv->string, text);
        }
    }
}

static const char *const known_members[] = {"version", "groups", "confirm_within", NULL};

CaRemoteDesired *
ca_remote_desired_parse(const char *payload, gsize len, const CaRemoteConfigSettings *set,
                        gint64 *out_version, GPtrArray *errors)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(cJSON) root = NULL;
    g_autoptr(GKeyFile) kf = NULL;
    g_autoptr(CaRemoteDesired) d = NULL;
    const cJSON *m;
    guint before = errors->len;
    g_autofree char *body = NULL;

    *out_version = 0;
    if (len > set->max_bytes) {
        add_error(errors, "document: %zu bytes, larger than [remote-config] max-bytes (%zu)", len,
                  set->max_bytes);
        return NULL;
    }
    root = ca_json_parse_strict(payload, len, &error);
    if (root && !ca_json_check_strict(root, payload, len, &error))
        g_clear_pointer(&root, cJSON_Delete);
    if (!root) {
        add_error(errors, "document: %s", error->message);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        add_error(errors, "document: not a JSON object");
        return NULL;
    }
    d = g_new0(CaRemoteDesired, 1);
    d->version = read_version(root, errors);
    *out_version = d->version;
    cJSON_ArrayForEach(m, root)
    {
        if (!g_strv_contains(known_members, m->string))
            add_error(errors, "%.64s: unknown member", m->string);
    }
    m = cJSON_GetObjectItemCaseSensitive(root, "confirm_within");
    d->confirm_within = set->confirm_within;
    if (m && (!cJSON_IsNumber(m) || m->valuedouble != floor(m->valuedouble) ||
              m->valuedouble < CONFIRM_WITHIN_MIN || m->valuedouble > CONFIRM_WITHIN_MAX))
        add_error(errors, "confirm_within: must be an integer from %d to %d (seconds)",
                  CONFIRM_WITHIN_MIN, CONFIRM_WITHIN_MAX);
    else if (m)
        d->confirm_within = (gint64) m->valuedouble;
    kf = g_key_file_new();
    read_groups(cJSON_GetObjectItemCaseSensitive(root, "groups"), set, kf, errors);
    if (errors->len > before)
        return NULL;
    body = g_key_file_to_data(kf, NULL, NULL);
    d->layer = g_strdup_printf("# version=%" G_GINT64_FORMAT "\n%s", d->version, body);
    d->hash = ca_remote_layer_hash(d->layer);
    return g_steal_pointer(&d);
}

/*****************************************************************************/
/* Layers */

static const char *
layer_body(const char *layer)
{
    const char *nl;

    if (!g_str_has_prefix(layer, "# version="))
        return layer;
    nl = strchr(layer, '\n');
    return nl ? nl + 1 : "";
}

char *
ca_remote_layer_hash(const char *layer)
{
    const char *body = layer_body(layer);
    g_autofree char *hex = g_compute_checksum_for_string(G_CHECKSUM_SHA256, body, -1);

    return g_strconcat("sha256:", hex, NULL);
}

gint64
ca_remote_layer_version(const char *layer)
{
    gint64 v = 0;
    g_autofree char *line = NULL;
    const char *nl;

    if (!layer || !g_str_has_prefix(layer, "# version="))
        return 0;
    nl = strchr(layer, '\n');
    line = nl ? g_strndup(layer + 10, nl - layer - 10) : g_strdup(layer + 10);
    if (!g_ascii_string_to_signed(line, 10, 1, CA_REMOTE_VERSION_MAX, &v, NULL))
        return 0;
    return v;
}

gboolean
ca_remote_layer_same_settings(const char *a, const char *b)
{
    return g_strcmp0(a ? layer_body(a) : "", b ? layer_body(b) : "") == 0;
}
