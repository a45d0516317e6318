/* fuzz-config: the config parser (ca_config_load_from_data) on arbitrary text.
 * Every input must give either a config or an error, never both, never neither, never a
 * crash. A config that loads must honour the key table: every key has a value (except the
 * derived keys of [prefix-*] groups, which their module resolves when unset, e.g.
 * [uplink-NAME] connection), and each value has its type and lies in its range. The dump,
 * the getters, the group lists and the group comparison run on every config that loads,
 * loading is deterministic, and the uplink policy config built from it is sound. */
#include "config.h"
#include "error.h"
#include "failover.h"
#include "fuzz.h"
#include "probe-spec.h"

#include <string.h>

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ca_fuzz_init();
    return 0;
}

static void
check_element(const CaConfigKey *k, const char *text)
{
    glong n;

    ca_fuzz_assert(text != NULL);
    ca_fuzz_assert(g_utf8_validate(text, -1, NULL));
    n = g_utf8_strlen(text, -1);
    switch (k->type) {
    case CA_KEY_INT:
    case CA_KEY_BOOL:
        break;
    case CA_KEY_ENUM:
        ca_fuzz_assert(g_strv_contains(k->choices, text));
        break;
    case CA_KEY_PATH:
        ca_fuzz_assert(n == 0 || g_path_is_absolute(text));
        G_GNUC_FALLTHROUGH;
    case CA_KEY_STRING:
        ca_fuzz_assert(n >= k->min && n <= k->max);
        break;
    }
}

/* One key of one group: present, typed, in range. */
static void
check_key(const CaConfig *c, const char *group, const CaConfigKey *k)
{
    const char *text;

    if (!k->def && g_str_has_suffix(k->group, "*") && !ca_config_is_set(c, group, k->key))
        return; /* derived by the module that reads it */
    text = ca_config_get_string(c, group, k->key);
    if (k->flags & CA_KEY_FLAG_LIST) {
        for (const char *const *e = ca_config_get_list(c, group, k->key); *e; e++) {
            ca_fuzz_assert(**e != '\0');
            check_element(k, *e);
        }
        return;
    }
    check_element(k, text);
    if (k->type == CA_KEY_INT) {
        gint64 v = ca_config_get_int(c, group, k->key);
        ca_fuzz_assert(v >= k->min && v <= k->max);
    } else if (k->type == CA_KEY_BOOL) {
        gboolean b = ca_config_get_bool(c, group, k->key);
        ca_fuzz_assert(b == TRUE || b == FALSE);
    }
    (void) ca_config_is_set(c, group, k->key);
}

/* The uplink policy's view of the config (failover.c): every uplink named, with a
 * connection, a priority in range and probes that parse. */
static void
check_failover(const CaConfig *c)
{
    g_autoptr(CaFoConfig) fo = ca_fo_config_new(c);

    ca_fuzz_assert(fo != NULL && fo->n_uplinks >= 1);
    for (guint i = 0; i < fo->n_uplinks; i++) {
        const CaFoUplinkConfig *u = &fo->uplinks[i];

        ca_fuzz_assert(u->name && *u->name && u->connection && *u->connection);
        ca_fuzz_assert(u->priority >= 0 && u->priority <= 10000);
        ca_fuzz_assert(u->probes && u->probes[0]);
        for (int p = 0; u->probes[p]; p++) {
            CaProbeSpec spec;
            g_autofree char *why = NULL;

            ca_fuzz_assert(ca_probe_spec_parse(u->probes[p], &spec, &why));
        }
        ca_fuzz_assert(ca_fo_config_find(fo, u->name) == (int) i);
        (void) ca_fo_idle_bytes_per_month(fo, i);
    }
}

static void
check_config(CaConfig *c, const char *data, size_t size)
{
    g_autoptr(CaConfig) again = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *dump = NULL;
    const char *last = NULL;

    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        if (g_str_has_suffix(k->group, "*")) {
            g_autofree char *prefix = g_strndup(k->group, strlen(k->group) - 1);
            g_auto(GStrv) groups = ca_config_get_groups_with_prefix(c, prefix);

            for (int i = 0; groups[i]; i++) {
                ca_fuzz_assert(g_str_has_prefix(groups[i], prefix));
                ca_fuzz_assert(i == 0 || strcmp(groups[i - 1], groups[i]) < 0);
                check_key(c, groups[i], k);
            }
        } else {
            check_key(c, k->group, k);
        }
    }
    check_failover(c);
    dump = ca_config_dump(c);
    ca_fuzz_assert(dump != NULL);
    for (const char *const *w = ca_config_get_warnings(c); *w; w++)
        ca_fuzz_assert(**w != '\0');
    ca_fuzz_assert(g_strcmp0(ca_config_get_files(c)[0], "fuzz.conf") == 0);

    /* Deterministic: the same text gives an equal config, group by group. */
    again = ca_config_load_from_data("fuzz.conf", data, size, &error);
    ca_fuzz_assert(again != NULL && error == NULL);
    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        if (last && strcmp(last, k->group) == 0)
            continue;
        last = k->group;
        ca_fuzz_assert(ca_config_group_equal(c, again, k->group));
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    CaConfig *c = ca_config_load_from_data("fuzz.conf", (const char *) data, size, &error);

    ca_fuzz_assert((c == NULL) != (error == NULL));
    if (!c) {
        ca_fuzz_assert(g_error_matches(error, CA_ERROR, CA_ERROR_INVALID_CONFIG));
        ca_fuzz_assert(error->message && *error->message);
        return 0;
    }
    ca_config_ref(c);
    ca_config_unref(c);
    check_config(c, (const char *) data, size);
    ca_config_unref(c);
    return 0;
}
