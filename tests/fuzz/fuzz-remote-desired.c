/* fuzz-remote-desired: the backend's config/desired document (ca_remote_desired_parse) on
 * arbitrary bytes, with the default [remote-config] settings. Every input gives either a
 * layer or at least one error, never both. A layer names a version in range, carries a
 * sha256 hash, is INI the config loader reads (every group and key known, every value's
 * escapes valid), and never sets a key the document may not set (local-only keys,
 * credentials not named in allowed-groups, groups outside it). The checks look at the
 * layer's structure, never at the loader's messages: those quote the document's values,
 * which may hold any words. */
#include "config.h"
#include "error.h"
#include "fuzz.h"
#include "remote-desired.h"

#include <string.h>

static CaRemoteConfigSettings set;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *conf = "[agent]\ndevice-id=fuzz\n[remote-config]\nenabled=true\n";
    g_autoptr(CaConfig) c = NULL;

    ca_fuzz_init();
    c = ca_config_load_from_data("fuzz.conf", conf, strlen(conf), NULL);
    ca_remote_config_settings_load(&set, c);
    return 0;
}

/* GKeyFile's escapes only (\s \n \t \r \\), and no trailing backslash. */
static gboolean
escapes_valid(const char *raw)
{
    for (const char *p = raw; *p; p++) {
        if (*p != '\\')
            continue;
        p++;
        if (*p == '\0' || !strchr("sntr\\", *p))
            return FALSE;
    }
    return TRUE;
}

static void
check_layer(const CaRemoteDesired *d)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_auto(GStrv) groups = NULL;
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(CaConfig) c = NULL;

    ca_fuzz_assert(d->version >= 1 && d->version <= CA_REMOTE_VERSION_MAX);
    ca_fuzz_assert(d->confirm_within >= 10 && d->confirm_within <= 3600);
    ca_fuzz_assert(ca_remote_layer_version(d->layer) == d->version);
    ca_fuzz_assert(g_str_has_prefix(d->hash, "sha256:") && strlen(d->hash) == 7 + 64);
    ca_fuzz_assert(
        g_key_file_load_from_data(kf, d->layer, strlen(d->layer), G_KEY_FILE_NONE, NULL));
    groups = g_key_file_get_groups(kf, NULL);
    for (int g = 0; groups[g]; g++) {
        g_auto(GStrv) keys = g_key_file_get_keys(kf, groups[g], NULL, NULL);

        ca_fuzz_assert(ca_config_group_known(groups[g]));
        ca_fuzz_assert(!g_str_equal(groups[g], "remote-config"));
        ca_fuzz_assert(!g_str_equal(groups[g], "commands"));
        ca_fuzz_assert(!g_str_equal(groups[g], "sms-commands"));
        for (int k = 0; keys && keys[k]; k++) {
            const CaConfigKey *key = ca_config_find_key(groups[g], keys[k]);
            g_autofree char *raw = g_key_file_get_value(kf, groups[g], keys[k], NULL);

            ca_fuzz_assert(key != NULL);
            ca_fuzz_assert(!(key->flags & (CA_KEY_FLAG_LOCAL | CA_KEY_FLAG_CREDENTIAL)));
            ca_fuzz_assert(raw && g_utf8_validate(raw, -1, NULL) && escapes_valid(raw));
        }
    }
    /* The loader reads it without trouble; its values may be out of range (an error, not
     * asserted on: the structure above is what the document must get right). */
    text = g_strconcat("[agent]\ndevice-id=fuzz\n", d->layer, NULL);
    c = ca_config_load_from_data("layer", text, strlen(text), &error);
    ca_fuzz_assert((c == NULL) == (error != NULL));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GPtrArray) errors = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(CaRemoteDesired) d = NULL;
    gint64 version = -1;

    d = ca_remote_desired_parse((const char *) data, size, &set, &version, errors);
    ca_fuzz_assert((d == NULL) == (errors->len > 0));
    ca_fuzz_assert(version >= 0 && version <= CA_REMOTE_VERSION_MAX);
    for (guint i = 0; i < errors->len; i++)
        ca_fuzz_assert(g_utf8_validate(errors->pdata[i], -1, NULL));
    if (d)
        check_layer(d);
    return 0;
}
