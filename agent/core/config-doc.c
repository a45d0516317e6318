/* config-doc: what the key table and a snapshot look like to people: the --check-config
 * dump (secrets masked) and the generated reference (README.md's table, the example
 * config/cellagent.conf; scripts/update-config-docs). */
#include "config-private.h"

#include <cjson/cJSON.h>
#include <string.h>

/* What the dump and the sources object show of each set value: every group of the key
 * table (a "name-*" group once per matching group in the config) in table order, then each
 * set key of it with its value (secrets masked) and where it came from. */
typedef struct {
    void (*group)(gpointer data, const char *group);
    void (*value)(gpointer data, const char *key, const char *value, const char *source);
    gpointer data;
} ValueVisitor;

static void
walk_group(const CaConfig *c, const ValueVisitor *vis, const char *table_group, const char *group)
{
    vis->group(vis->data, group);
    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        g_autofree char *vk = NULL;
        g_autofree char *source = NULL;
        const Value *v;

        if (strcmp(k->group, table_group) != 0)
            continue;
        vk = ca_config_vkey(group, k->key);
        v = g_hash_table_lookup(c->values, vk);
        if (!v)
            continue;
        if (!v->file)
            source = g_strdup("default");
        else if (v->line > 0)
            source = g_strdup_printf("%s:%d", v->file, v->line);
        else
            source = g_strdup(v->file);
        vis->value(vis->data, k->key,
                   (k->flags & CA_KEY_FLAG_SECRET) && *v->text ? "********" : v->text, source);
    }
}

static void
walk_values(const CaConfig *c, const ValueVisitor *vis)
{
    const char *last = NULL;

    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        if (last && strcmp(last, k->group) == 0)
            continue;
        last = k->group;
        if (g_str_has_suffix(k->group, "*")) {
            g_autofree char *stem = g_strndup(k->group, strlen(k->group) - 1);
            g_auto(GStrv) groups = ca_config_get_groups_with_prefix(c, stem);
            for (int i = 0; groups[i]; i++)
                walk_group(c, vis, k->group, groups[i]);
        } else {
            walk_group(c, vis, k->group, k->group);
        }
    }
}

static void
dump_group(gpointer data, const char *group)
{
    GString *out = data;

    if (out->len)
        g_string_append_c(out, '\n');
    g_string_append_printf(out, "[%s]\n", group);
}

static void
dump_value(gpointer data, const char *key, const char *value, const char *source)
{
    g_string_append_printf(data, "%s=%s    # %s\n", key, value, source);
}

char *
ca_config_dump(const CaConfig *config)
{
    GString *out = g_string_new(NULL);
    ValueVisitor vis = {dump_group, dump_value, out};

    walk_values(config, &vis);
    g_string_append_c(out, '\n');
    return g_string_free(out, FALSE);
}

typedef struct {
    cJSON *out;
    cJSON *group;
} Sources;

static void
sources_group(gpointer data, const char *group)
{
    Sources *s = data;

    s->group = cJSON_AddObjectToObject(s->out, group);
}

static void
sources_value(gpointer data, const char *key, const char *value, const char *source)
{
    Sources *s = data;
    cJSON *entry = cJSON_AddObjectToObject(s->group, key);

    cJSON_AddStringToObject(entry, "value", value);
    cJSON_AddStringToObject(entry, "source", source);
}

cJSON *
ca_config_sources_json(const CaConfig *config)
{
    Sources s = {cJSON_CreateObject(), NULL};
    ValueVisitor vis = {sources_group, sources_value, &s};

    walk_values(config, &vis);
    return s.out;
}

static char *
range_text(const CaConfigKey *k)
{
    switch (k->type) {
    case CA_KEY_INT:
        return g_strdup_printf("%" G_GINT64_FORMAT "-%" G_GINT64_FORMAT, k->min, k->max);
    case CA_KEY_BOOL:
        return g_strdup("true, false");
    case CA_KEY_ENUM:
        return g_strjoinv(", ", (char **) k->choices);
    case CA_KEY_PATH:
        return g_strdup("absolute path");
    case CA_KEY_STRING:
        return g_strdup_printf("%" G_GINT64_FORMAT "-%" G_GINT64_FORMAT " chars", k->min, k->max);
    }
    g_assert_not_reached();
}

static const char *
type_text(const CaConfigKey *k)
{
    switch (k->type) {
    case CA_KEY_STRING:
        return (k->flags & CA_KEY_FLAG_LIST) ? "list" : "string";
    case CA_KEY_INT:
        return "integer";
    case CA_KEY_BOOL:
        return "boolean";
    case CA_KEY_ENUM:
        return "choice";
    case CA_KEY_PATH:
        return (k->flags & CA_KEY_FLAG_LIST) ? "path list" : "path";
    }
    g_assert_not_reached();
}

char *
ca_config_reference_markdown(void)
{
    GString *out = g_string_new("| group | key | type | default | range | meaning |\n"
                                "|---|---|---|---|---|---|\n");

    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        g_autofree char *range = range_text(k);
        const char *def = k->def ? k->def : k->def_doc;

        g_string_append_printf(out, "| `[%s]` | `%s` | %s | %s%s%s | %s | %s |\n", k->group, k->key,
                               type_text(k), *def && k->def ? "`" : "", *def ? def : "(empty)",
                               *def && k->def ? "`" : "", range, k->doc);
    }
    return g_string_free(out, FALSE);
}

char *
ca_config_reference_ini(void)
{
    GString *out = g_string_new(
        "# cellagent configuration: /etc/cellagent/cellagent.conf\n"
        "# Drop-ins in /etc/cellagent/cellagent.conf.d/*.conf are read after this file,\n"
        "# in name order; a later file wins. Every key is listed with its default;\n"
        "# uncomment to change. Validate with: cellagent --check-config\n"
        "# (generated from the key table in agent/core/config-keys.c: "
        "scripts/update-config-docs)\n");
    const char *last = NULL;

    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        g_autofree char *range = range_text(k);

        if (!last || strcmp(last, k->group) != 0) {
            if (g_str_has_suffix(k->group, "*")) {
                g_autofree char *stem = g_strndup(k->group, strlen(k->group) - 1);
                g_string_append_printf(out, "\n#[%sNAME]\n", stem);
            } else {
                g_string_append_printf(out, "\n[%s]\n", k->group);
            }
            last = k->group;
        }
        g_string_append_printf(out, "# %s (%s; %s", k->doc, type_text(k), range);
        if (!k->def)
            g_string_append_printf(out, "; default: %s", k->def_doc);
        g_string_append(out, ")\n");
        g_string_append_printf(out, "#%s=%s\n", k->key, k->def ? k->def : "");
    }
    return g_string_free(out, FALSE);
}
