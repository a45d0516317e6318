/* config: files into an immutable CaConfig: loading with line tracking, validation against
 * the key table (config-keys.c), the getters and reload comparison.
 * Owns: turning files into an immutable CaConfig or a list of every problem.
 * Does not own: the table (config-keys.c), output (config-doc.c), applying values (each
 * module's typed settings, loaded from the snapshot it is handed). */
#define CA_LOG_MODULE "config"
#include "config-private.h"

#include "error.h"
#include "log.h"

#include <gio/gio.h>

#include <string.h>

/*****************************************************************************/
/* Snapshot */

static void
value_free(gpointer data)
{
    Value *v = data;

    g_free(v->text);
    g_free(v->file);
    g_strfreev(v->list);
    g_free(v);
}

char *
ca_config_vkey(const char *group, const char *key)
{
    return g_strconcat(group, "\037", key, NULL);
}

static CaConfig *
config_new(void)
{
    CaConfig *c = g_new0(CaConfig, 1);

    c->ref = 1;
    c->values = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, value_free);
    c->warnings = g_ptr_array_new_with_free_func(g_free);
    c->files = g_ptr_array_new_with_free_func(g_free);
    c->errors = g_ptr_array_new_with_free_func(g_free);
    c->groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return c;
}

CaConfig *
ca_config_ref(CaConfig *config)
{
    g_atomic_int_inc(&config->ref);
    return config;
}

void
ca_config_unref(CaConfig *config)
{
    if (!config || !g_atomic_int_dec_and_test(&config->ref))
        return;
    g_hash_table_unref(config->values);
    g_ptr_array_unref(config->warnings);
    g_ptr_array_unref(config->files);
    g_clear_pointer(&config->errors, g_ptr_array_unref);
    g_hash_table_unref(config->groups);
    g_free(config);
}

static gboolean
group_matches(const CaConfigKey *k, const char *group)
{
    if (g_str_has_suffix(k->group, "*")) {
        gsize n = strlen(k->group) - 1;
        return strncmp(k->group, group, n) == 0 && group[n] != '\0';
    }
    return strcmp(k->group, group) == 0;
}

const CaConfigKey *
ca_config_find_key(const char *group, const char *key)
{
    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        if (strcmp(k->key, key) == 0 && group_matches(k, group))
            return k;
    }
    return NULL;
}

gboolean
ca_config_group_known(const char *group)
{
    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        if (group_matches(k, group))
            return TRUE;
    }
    return FALSE;
}

static const Value *
lookup(const CaConfig *config, const char *group, const char *key)
{
    g_autofree char *vk = ca_config_vkey(group, key);
    const Value *v = g_hash_table_lookup(config->values, vk);

    if (!v)
        g_critical("config: no value for [%s] %s (not in the key table?)", group, key);
    return v;
}

const char *
ca_config_get_string(const CaConfig *config, const char *group, const char *key)
{
    const Value *v = lookup(config, group, key);
    return v ? v->text : "";
}

gint64
ca_config_get_int(const CaConfig *config, const char *group, const char *key)
{
    const Value *v = lookup(config, group, key);
    return v ? v->i : 0;
}

gboolean
ca_config_get_bool(const CaConfig *config, const char *group, const char *key)
{
    const Value *v = lookup(config, group, key);
    return v ? v->b : FALSE;
}

const char *const *
ca_config_get_list(const CaConfig *config, const char *group, const char *key)
{
    static const char *const empty[] = {NULL};
    const Value *v = lookup(config, group, key);
    return v && v->list ? (const char *const *) v->list : empty;
}

gboolean
ca_config_get_source(const CaConfig *config, const char *group, const char *key,
                     const char **out_file, int *out_line)
{
    g_autofree char *vk = ca_config_vkey(group, key);
    const Value *v = g_hash_table_lookup(config->values, vk);

    if (!v)
        return FALSE;
    *out_file = v->file;
    *out_line = v->line;
    return TRUE;
}

gboolean
ca_config_is_set(const CaConfig *config, const char *group, const char *key)
{
    g_autofree char *vk = ca_config_vkey(group, key);
    const Value *v = g_hash_table_lookup(config->values, vk);
    return v && v->file;
}

/* g_ptr_array_sort hands over pointers to the elements. */
static int
compare_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

GStrv
ca_config_get_groups_with_prefix(const CaConfig *config, const char *prefix)
{
    GPtrArray *out = g_ptr_array_new();
    GHashTableIter it;
    gpointer group;

    g_hash_table_iter_init(&it, config->groups);
    while (g_hash_table_iter_next(&it, &group, NULL)) {
        if (g_str_has_prefix(group, prefix))
            g_ptr_array_add(out, g_strdup(group));
    }
    g_ptr_array_sort(out, compare_names);
    g_ptr_array_add(out, NULL);
    return (GStrv) g_ptr_array_free(out, FALSE);
}

const char *const *
ca_config_get_warnings(const CaConfig *config)
{
    return (const char *const *) config->warnings->pdata;
}

const char *const *
ca_config_get_files(const CaConfig *config)
{
    return (const char *const *) config->files->pdata;
}

/*****************************************************************************/
/* Loading */

static void G_GNUC_PRINTF(6, 7) problem(GPtrArray *into, const char *file, int line,
                                        const char *group, const char *key, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *what = NULL;
    GString *s = g_string_new(NULL);

    va_start(ap, fmt);
    what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (file)
        g_string_append(s, file);
    if (file && line > 0)
        g_string_append_printf(s, ":%d", line);
    if (file)
        g_string_append(s, ": ");
    if (group)
        g_string_append_printf(s, "[%s] ", group);
    if (key)
        g_string_append_printf(s, "%s: ", key);
    g_string_append(s, what);
    g_ptr_array_add(into, g_string_free(s, FALSE));
}

/* Lines of groups and keys, from a plain scan of the text (GKeyFile keeps none). */
typedef struct {
    GHashTable *lines; /* "group\037key" or "group" -> line number */
    int bad_line;      /* first line GKeyFile cannot parse, 0 if none found */
} LineMap;

static void
scan_lines(const char *data, gsize len, LineMap *map)
{
    g_auto(GStrv) lines = NULL;
    g_autofree char *copy = g_strndup(data, len);
    g_autofree char *group = NULL;

    map->lines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    map->bad_line = 0;
    lines = g_strsplit(copy, "\n", -1);
    for (int n = 0; lines[n]; n++) {
        g_autofree char *t = g_strstrip(g_strdup(lines[n]));
        char *eq;

        if (t[0] == '\0' || t[0] == '#')
            continue;
        if (t[0] == '[') {
            char *end = strchr(t, ']');
            if (!end || end[1] != '\0') {
                if (!map->bad_line)
                    map->bad_line = n + 1;
                continue;
            }
            g_free(group);
            group = g_strndup(t + 1, end - t - 1);
            g_hash_table_replace(map->lines, g_strdup(group), GINT_TO_POINTER(n + 1));
            continue;
        }
        eq = strchr(t, '=');
        if (!eq || !group) {
            if (!map->bad_line)
                map->bad_line = n + 1;
            continue;
        }
        *eq = '\0';
        g_strchomp(t);
        g_hash_table_replace(map->lines, ca_config_vkey(group, t), GINT_TO_POINTER(n + 1));
    }
}

static int
line_of(const LineMap *map, const char *group, const char *key)
{
    g_autofree char *vk = key ? ca_config_vkey(group, key) : g_strdup(group);
    return GPOINTER_TO_INT(g_hash_table_lookup(map->lines, vk));
}

/* A raw value's text and escapes (GKeyFile's \s \n \t \r \\); NULL when fine, else the
 * problem. Checked before g_key_file_get_string(), which (GLib 2.74) returns a half-parsed
 * value together with its error for a bad escape, and sets its GError twice (a GLib
 * warning) when a bad escape is followed by a trailing backslash. */
static char *
check_raw(const char *raw)
{
    if (!g_utf8_validate(raw, -1, NULL))
        return g_strdup("not valid UTF-8");
    for (const char *p = raw; *p; p++) {
        if (*p != '\\')
            continue;
        p++;
        if (*p == '\0')
            return g_strdup("ends in an escape character (write \\\\ for a backslash)");
        if (!strchr("sntr\\", *p)) {
            g_autofree char *seq = g_strndup(p, g_utf8_next_char(p) - p);
            return g_strdup_printf("invalid escape sequence \"\\%s\" (write \\\\ for a "
                                   "backslash)",
                                   seq);
        }
    }
    return NULL;
}

/* Merge one file's values over what earlier files set. */
static void
load_one(CaConfig *c, const char *name, const char *data, gsize len, gboolean with_lines)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) groups = NULL;
    LineMap map;

    g_ptr_array_add(c->files, g_strdup(name));
    scan_lines(data, len, &map);
    if (!with_lines) {
        g_hash_table_remove_all(map.lines);
        map.bad_line = 0;
    }
    if (!g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, &error)) {
        problem(c->errors, name, map.bad_line, NULL, NULL, "syntax error: %s", error->message);
        g_hash_table_unref(map.lines);
        return;
    }
    groups = g_key_file_get_groups(kf, NULL);
    for (int gi = 0; groups[gi]; gi++) {
        const char *group = groups[gi];
        g_auto(GStrv) gkeys = g_key_file_get_keys(kf, group, NULL, NULL);

        if (!ca_config_group_known(group)) {
            problem(c->warnings, name, line_of(&map, group, NULL), group, NULL,
                    "unknown group, ignored");
            continue;
        }
        g_hash_table_add(c->groups, g_strdup(group));
        for (int ki = 0; gkeys && gkeys[ki]; ki++) {
            const char *key = gkeys[ki];
            int line = line_of(&map, group, key);
            g_autoptr(GError) verr = NULL;
            g_autofree char *raw = NULL;
            g_autofree char *why = NULL;
            g_autofree char *text = NULL;
            Value *v;

            if (!ca_config_find_key(group, key)) {
                problem(c->warnings, name, line, group, key, "unknown key, ignored");
                continue;
            }
            raw = g_key_file_get_value(kf, group, key, NULL);
            why = raw ? check_raw(raw) : g_strdup("cannot be read");
            if (why) {
                problem(c->errors, name, line, group, key, "%s", why);
                continue;
            }
            text = g_key_file_get_string(kf, group, key, &verr);
            if (!text || verr) {
                problem(c->errors, name, line, group, key, "%s",
                        verr ? verr->message : "cannot be read");
                continue;
            }
            v = g_new0(Value, 1);
            v->text = g_strstrip(g_steal_pointer(&text));
            v->file = g_strdup(name);
            v->line = line;
            g_hash_table_replace(c->values, ca_config_vkey(group, key), v);
        }
    }
    g_hash_table_unref(map.lines);
}

static void
set_default(CaConfig *c, const char *group, const CaConfigKey *k)
{
    g_autofree char *vk = ca_config_vkey(group, k->key);
    Value *v;

    if (g_hash_table_contains(c->values, vk) || !k->def)
        return;
    v = g_new0(Value, 1);
    v->text = g_strdup(k->def);
    g_hash_table_replace(c->values, g_steal_pointer(&vk), v);
}

static gboolean
parse_bool(const char *s, gboolean *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (gsize i = 0; i < G_N_ELEMENTS(yes); i++) {
        if (g_ascii_strcasecmp(s, yes[i]) == 0) {
            *out = TRUE;
            return TRUE;
        }
        if (g_ascii_strcasecmp(s, no[i]) == 0) {
            *out = FALSE;
            return TRUE;
        }
    }
    return FALSE;
}

/* Validate one element; NULL when fine, else the problem. */
static char *
check_text(const CaConfigKey *k, const char *text, Value *v)
{
    g_autofree char *why = NULL;
    glong n;

    if (!g_utf8_validate(text, -1, NULL))
        return g_strdup("not valid UTF-8");
    n = g_utf8_strlen(text, -1);
    switch (k->type) {
    case CA_KEY_INT:
        if (!g_ascii_string_to_signed(text, 10, k->min, k->max, &v->i, NULL))
            return g_strdup_printf("\"%s\" is not an integer from %" G_GINT64_FORMAT
                                   " to %" G_GINT64_FORMAT,
                                   text, k->min, k->max);
        break;
    case CA_KEY_BOOL:
        if (!parse_bool(text, &v->b))
            return g_strdup_printf("\"%s\" is not a boolean (true or false)", text);
        break;
    case CA_KEY_ENUM:
        if (!g_strv_contains(k->choices, text)) {
            g_autofree char *all = g_strjoinv(", ", (char **) k->choices);
            return g_strdup_printf("\"%s\" is not one of: %s", text, all);
        }
        break;
    case CA_KEY_PATH:
        if (n > 0 && !g_path_is_absolute(text))
            return g_strdup_printf("\"%s\" is not an absolute path", text);
        G_GNUC_FALLTHROUGH;
    case CA_KEY_STRING:
        if (n < k->min || n > k->max) {
            if (k->min == k->max)
                return g_strdup_printf("must be %" G_GINT64_FORMAT " characters", k->min);
            return g_strdup_printf("length %ld is outside %" G_GINT64_FORMAT "-%" G_GINT64_FORMAT,
                                   n, k->min, k->max);
        }
        break;
    }
    if (k->check && !k->check(text, &why))
        return g_strdup_printf("\"%s\": %s", text, why);
    return NULL;
}

static void
validate_value(CaConfig *c, const char *group, const CaConfigKey *k)
{
    g_autofree char *vk = ca_config_vkey(group, k->key);
    Value *v = g_hash_table_lookup(c->values, vk);

    if (!v)
        return;
    if (k->flags & CA_KEY_FLAG_LIST) {
        g_auto(GStrv) parts = g_strsplit(v->text, ";", -1);
        GPtrArray *list = g_ptr_array_new();

        for (int i = 0; parts[i]; i++) {
            g_autofree char *why = NULL;
            char *p = g_strstrip(parts[i]);

            if (*p == '\0')
                continue;
            why = check_text(k, p, v);
            if (why)
                problem(c->errors, v->file, v->line, group, k->key, "%s", why);
            g_ptr_array_add(list, g_strdup(p));
        }
        g_ptr_array_add(list, NULL);
        v->list = (GStrv) g_ptr_array_free(list, FALSE);
    } else {
        g_autofree char *why = check_text(k, v->text, v);
        if (why)
            problem(c->errors, v->file, v->line, group, k->key, "%s", why);
    }
}

/* Defaults that depend on other values or on the machine. */
static void
resolve_derived(CaConfig *c)
{
    g_autofree char *dk = ca_config_vkey("agent", "device-id");
    g_autofree char *pk = ca_config_vkey("mqtt", "port");
    g_autofree char *ck = ca_config_vkey("mqtt", "client-id");
    Value *v;

    if (!g_hash_table_contains(c->values, dk)) {
        const char *host = g_get_host_name();
        g_autofree char *why = NULL;

        v = g_new0(Value, 1);
        v->text = g_strdup(host);
        g_hash_table_replace(c->values, g_strdup(dk), v);
        if (strlen(host) > 64 || !ca_config_check_device_id(host, &why))
            problem(c->errors, NULL, 0, "agent", "device-id",
                    "the host name \"%s\" is not a valid device id (%s); set device-id", host,
                    why ? why : "longer than 64 characters");
    }
    if (!g_hash_table_contains(c->values, pk)) {
        v = g_new0(Value, 1);
        v->i = ca_config_get_bool(c, "mqtt", "tls") ? 8883 : 1883;
        v->text = g_strdup_printf("%" G_GINT64_FORMAT, v->i);
        g_hash_table_replace(c->values, g_strdup(pk), v);
    }
    if (!g_hash_table_contains(c->values, ck)) {
        v = g_new0(Value, 1);
        v->text = g_strdup(ca_config_get_string(c, "agent", "device-id"));
        g_hash_table_replace(c->values, g_strdup(ck), v);
    }
}

/* group's key must not be empty when group's enabled=true. */
static void
require_when_enabled(CaConfig *c, const char *group, const char *key)
{
    g_autofree char *ek = ca_config_vkey(group, "enabled");
    const Value *enabled = g_hash_table_lookup(c->values, ek);

    if (ca_config_get_bool(c, group, "enabled") && !*ca_config_get_string(c, group, key))
        problem(c->errors, enabled->file, enabled->line, group, key, "required when enabled=true");
}

/* localhost, *.localhost, 127.0.0.0/8, ::1: no network is crossed. */
static gboolean
host_is_loopback(const char *host)
{
    g_autoptr(GInetAddress) addr = NULL;

    if (g_ascii_strcasecmp(host, "localhost") == 0 || g_str_has_suffix(host, ".localhost"))
        return TRUE;
    addr = g_inet_address_new_from_string(host);
    return addr && g_inet_address_get_is_loopback(addr);
}

/* A [plan-NAME] whose calendar cannot be placed. */
static void
check_plans(CaConfig *c)
{
    g_auto(GStrv) plans = ca_config_get_groups_with_prefix(c, "plan-");

    for (int i = 0; plans[i]; i++) {
        const char *cycle = ca_config_get_string(c, plans[i], "cycle");
        g_autofree char *dk = ca_config_vkey(plans[i], "cycle-start-day");
        g_autofree char *ak = ca_config_vkey(plans[i], "cycle-anchor");
        const Value *day = g_hash_table_lookup(c->values, dk);
        const Value *anchor = g_hash_table_lookup(c->values, ak);

        if (g_str_equal(cycle, "weekly") && ca_config_get_int(c, plans[i], "cycle-start-day") > 7)
            problem(c->errors, day->file, day->line, plans[i], "cycle-start-day",
                    "with cycle=weekly a weekday, 1 (Monday) to 7 (Sunday)");
        if (g_str_equal(cycle, "days") && !*ca_config_get_string(c, plans[i], "cycle-anchor"))
            problem(c->errors, anchor->file, anchor->line, plans[i], "cycle-anchor",
                    "required with cycle=days (a date on which a cycle started)");
    }
}

/* Rules that involve more than one key. */
static void
cross_check(CaConfig *c)
{
    const char *cert = ca_config_get_string(c, "mqtt", "cert-file");
    const char *key = ca_config_get_string(c, "mqtt", "key-file");

    g_auto(GStrv) uplinks = ca_config_get_groups_with_prefix(c, "uplink-");

    /* Every uplink needs at least one probe to be judged by. */
    if (!ca_config_get_list(c, "health", "probes")[0]) {
        g_autofree char *vk = ca_config_vkey("health", "probes");
        const Value *v = g_hash_table_lookup(c->values, vk);
        problem(c->errors, v->file, v->line, "health", "probes", "at least one probe is needed");
    }
    for (int i = 0; uplinks[i]; i++) {
        g_autofree char *vk = ca_config_vkey(uplinks[i], "probes");
        const Value *v = g_hash_table_lookup(c->values, vk);
        if (v && !(v->list && v->list[0]))
            problem(c->errors, v->file, v->line, uplinks[i], "probes",
                    "at least one probe is needed (omit the key for [health] probes)");
    }
    if ((*cert != '\0') != (*key != '\0')) {
        g_autofree char *vk = ca_config_vkey("mqtt", *cert ? "cert-file" : "key-file");
        const Value *v = g_hash_table_lookup(c->values, vk);
        problem(c->errors, v->file, v->line, "mqtt", *cert ? "key-file" : "cert-file",
                "required when %s is set", *cert ? "cert-file" : "key-file");
    }
    check_plans(c);
    require_when_enabled(c, "sms-commands", "secret-file");
    require_when_enabled(c, "sms-commands", "allowed-senders");
    require_when_enabled(c, "sms-alerts", "numbers");
    /* Allowed, but said at every start and by --check-config: the password, the commands
     * and the SMS texts would cross the network in clear. */
    if (!ca_config_get_bool(c, "mqtt", "tls") &&
        !host_is_loopback(ca_config_get_string(c, "mqtt", "host"))) {
        g_autofree char *vk = ca_config_vkey("mqtt", "tls");
        const Value *v = g_hash_table_lookup(c->values, vk);

        problem(c->warnings, v ? v->file : NULL, v ? v->line : 0, "mqtt", "tls",
                "false while host \"%s\" is not on this machine: the broker password, "
                "commands and SMS texts travel unencrypted; set tls=true",
                ca_config_get_string(c, "mqtt", "host"));
    }
}

static CaConfig *
finish(CaConfig *c, GError **error)
{
    /* Defaults, then validation of every value, then derived values. */
    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        if (g_str_has_suffix(k->group, "*")) {
            g_autofree char *prefix = g_strndup(k->group, strlen(k->group) - 1);
            g_auto(GStrv) groups = ca_config_get_groups_with_prefix(c, prefix);
            for (int i = 0; groups[i]; i++) {
                set_default(c, groups[i], k);
                validate_value(c, groups[i], k);
            }
        } else {
            set_default(c, k->group, k);
            validate_value(c, k->group, k);
        }
    }
    if (c->errors->len == 0) {
        resolve_derived(c);
        cross_check(c);
    }
    if (c->errors->len > 0) {
        g_autofree char *all = NULL;

        g_ptr_array_add(c->errors, NULL);
        all = g_strjoinv("\n", (char **) c->errors->pdata);
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_CONFIG, all);
        ca_config_unref(c);
        return NULL;
    }
    g_clear_pointer(&c->errors, g_ptr_array_unref);
    g_ptr_array_add(c->warnings, NULL);
    g_ptr_array_add(c->files, NULL);
    return c;
}

CaConfig *
ca_config_load_from_data(const char *name, const char *data, gsize len, GError **error)
{
    CaConfig *c = config_new();

    load_one(c, name, data, len, TRUE);
    return finish(c, error);
}

CaConfig *
ca_config_load(const char *path, GError **error)
{
    return ca_config_load_layered(path, NULL, NULL, 0, error);
}

CaConfig *
ca_config_load_layered(const char *path, const char *layer_name, const char *layer_data,
                       gsize layer_len, GError **error)
{
    CaConfig *c = config_new();
    const char *main_path = path ? path : CA_CONFIG_DEFAULT_PATH;
    g_autofree char *dropin_dir = g_strconcat(main_path, ".d", NULL);
    g_autoptr(GDir) dir = NULL;
    g_autoptr(GPtrArray) dropins = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *data = NULL;
    g_autoptr(GError) ferr = NULL;
    gsize len = 0;

    if (g_file_get_contents(main_path, &data, &len, &ferr)) {
        load_one(c, main_path, data, len, TRUE);
    } else if (path || !g_error_matches(ferr, G_FILE_ERROR, G_FILE_ERROR_NOENT)) {
        problem(c->errors, main_path, 0, NULL, NULL, "cannot read: %s", ferr->message);
    }
    dir = g_dir_open(dropin_dir, 0, NULL);
    for (const char *n = dir ? g_dir_read_name(dir) : NULL; n; n = g_dir_read_name(dir)) {
        if (g_str_has_suffix(n, ".conf") && n[0] != '.')
            g_ptr_array_add(dropins, g_build_filename(dropin_dir, n, NULL));
    }
    g_ptr_array_sort(dropins, compare_names);
    for (guint i = 0; i < dropins->len; i++) {
        const char *f = dropins->pdata[i];
        g_autofree char *ddata = NULL;
        g_autoptr(GError) derr = NULL;
        gsize dlen = 0;

        if (!g_file_get_contents(f, &ddata, &dlen, &derr)) {
            problem(c->errors, f, 0, NULL, NULL, "cannot read: %s", derr->message);
            continue;
        }
        load_one(c, f, ddata, dlen, TRUE);
    }
    if (layer_data)
        load_one(c, layer_name, layer_data, layer_len, FALSE);
    return finish(c, error);
}

/*****************************************************************************/
/* Comparison and output */

static gboolean
key_equal(const CaConfig *a, const CaConfig *b, const char *group, const char *key)
{
    g_autofree char *vk = ca_config_vkey(group, key);
    const Value *va = g_hash_table_lookup(a->values, vk);
    const Value *vb = g_hash_table_lookup(b->values, vk);

    return g_strcmp0(va ? va->text : NULL, vb ? vb->text : NULL) == 0;
}

gboolean
ca_config_group_equal(const CaConfig *a, const CaConfig *b, const char *group)
{
    gboolean prefix = g_str_has_suffix(group, "*");
    g_autofree char *stem = prefix ? g_strndup(group, strlen(group) - 1) : g_strdup(group);
    g_auto(GStrv) ga = ca_config_get_groups_with_prefix(a, stem);
    g_auto(GStrv) gb = ca_config_get_groups_with_prefix(b, stem);

    if (prefix && !g_strv_equal((const char *const *) ga, (const char *const *) gb))
        return FALSE;
    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        if (prefix) {
            if (strcmp(k->group, group) != 0)
                continue;
            for (int i = 0; ga[i]; i++) {
                if (!key_equal(a, b, ga[i], k->key))
                    return FALSE;
            }
        } else if (strcmp(k->group, group) == 0 && !key_equal(a, b, group, k->key)) {
            return FALSE;
        }
    }
    return TRUE;
}
