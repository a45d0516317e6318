/* config-doc: what the key table and a snapshot look like to people: the --check-config
 * dump (secrets masked) and the generated reference (README.md's table, the example
 * config/cellagent.conf; scripts/update-config-docs). */
#include "config-private.h"

#include <cjson/cJSON.h>
#include <string.h>

static void
dump_group(const CaConfig *c, GString *out, const char *table_group, const char *group)
{
    g_string_append_printf(out, "[%s]\n", group);
    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        g_autofree char *vk = NULL;
        const Value *v;

        if (strcmp(k->group, table_group) != 0)
            continue;
        vk = ca_config_vkey(group, k->key);
        v = g_hash_table_lookup(c->values, vk);
        if (!v)
            continue;
        g_string_append_printf(out, "%s=%s", k->key,
                               (k->flags & CA_KEY_FLAG_SECRET) && *v->text ? "********" : v->text);
        if (v->file && v->line > 0)
            g_string_append_printf(out, "    # %s:%d\n", v->file, v->line);
        else if (v->file)
            g_string_append_printf(out, "    # %s\n", v->file);
        else
            g_string_append(out, "    # default\n");
    }
    g_string_append_c(out, '\n');
}

char *
ca_config_dump(const CaConfig *config)
{
    GString *out = g_string_new(NULL);
    const char *last = NULL;

    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        if (last && strcmp(last, k->group) == 0)
            continue;
        last = k->group;
        if (g_str_has_suffix(k->group, "*")) {
            g_autofree char *stem = g_strndup(k->group, strlen(k->group) - 1);
            g_auto(GStrv) groups = ca_config_get_groups_with_prefix(config, stem);
            for (int i = 0; groups[i]; i++)
                dump_group(config, out, k->group, groups[i]);
        } else {
            dump_group(config, out, k->group, k->group);
        }
    }
    return g_string_free(out, FALSE);
}

static void
sources_group(const CaConfig *c, cJSON *out, const char *table_group, const char *group)
{
    cJSON *g = cJSON_AddObjectToObject(out, group);

    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        g_autofree char *vk = NULL;
        g_autofree char *source = NULL;
        const Value *v;
        cJSON *entry;

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
        entry = cJSON_AddObjectToObject(g, k->key);
        cJSON_AddStringToObject(entry, "value",
                                (k->flags & CA_KEY_FLAG_SECRET) && *v->text ? "********" : v->text);
        cJSON_AddStringToObject(entry, "source", source);
    }
}

cJSON *
ca_config_sources_json(const CaConfig *config)
{
    cJSON *out = cJSON_CreateObject();
    const char *last = NULL;

    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        if (last && strcmp(last, k->group) == 0)
            continue;
        last = k->group;
        if (g_str_has_suffix(k->group, "*")) {
            g_autofree char *stem = g_strndup(k->group, strlen(k->group) - 1);
            g_auto(GStrv) groups = ca_config_get_groups_with_prefix(config, stem);
            for (int i = 0; groups[i]; i++)
                sources_group(config, out, k->group, groups[i]);
        } else {
            sources_group(config, out, k->group, k->group);
        }
    }
    return out;
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
