/* diag-format: D-Bus objects as bundle text, and the bundle's redaction (diag-format.h). */
#include "diag-format.h"

#include "autocleanups.h"
#include "modem-facts.h"

#include <cjson/cJSON.h>
#include <string.h>

struct _CaRedactor {
    gboolean keep_personal;
    GPtrArray *secrets;  /* char* */
    GPtrArray *personal; /* char* */
};

CaRedactor *
ca_redactor_new(gboolean keep_personal)
{
    CaRedactor *self = g_new0(CaRedactor, 1);

    self->keep_personal = keep_personal;
    self->secrets = g_ptr_array_new_with_free_func(g_free);
    self->personal = g_ptr_array_new_with_free_func(g_free);
    return self;
}

void
ca_redactor_free(CaRedactor *self)
{
    if (!self)
        return;
    g_ptr_array_unref(self->secrets);
    g_ptr_array_unref(self->personal);
    g_free(self);
}

gboolean
ca_redactor_keeps_personal(const CaRedactor *self)
{
    return self->keep_personal;
}

static void
add_unique(GPtrArray *set, const char *value)
{
    for (guint i = 0; i < set->len; i++) {
        if (g_str_equal(g_ptr_array_index(set, i), value))
            return;
    }
    g_ptr_array_add(set, g_strdup(value));
}

void
ca_redactor_add_secret(CaRedactor *self, const char *value)
{
    g_autofree char *v = g_strstrip(g_strdup(value ? value : ""));

    if (strlen(v) >= 4)
        add_unique(self->secrets, v);
}

void
ca_redactor_add_personal(CaRedactor *self, const char *value)
{
    g_autofree char *v = g_strstrip(g_strdup(value ? value : ""));

    if (!self->keep_personal && strlen(v) >= 5)
        add_unique(self->personal, v);
}

static gint
longer_first(gconstpointer a, gconstpointer b)
{
    gsize la = strlen(*(const char *const *) a), lb = strlen(*(const char *const *) b);

    return la < lb ? 1 : la > lb ? -1 : 0;
}

static char *
replace_all(const char *text, const char *what, const char *with)
{
    GString *out = g_string_new(NULL);
    gsize n = strlen(what);
    const char *p = text, *hit;

    while ((hit = strstr(p, what))) {
        g_string_append_len(out, p, hit - p);
        g_string_append(out, with);
        p = hit + n;
    }
    g_string_append(out, p);
    return g_string_free(out, FALSE);
}

char *
ca_redactor_apply(const CaRedactor *self, const char *text)
{
    g_autoptr(GPtrArray) all = g_ptr_array_new();
    char *cur = g_strdup(text ? text : "");

    /* Longest first: a secret that contains a shorter one is replaced whole. */
    for (guint i = 0; i < self->secrets->len; i++)
        g_ptr_array_add(all, g_ptr_array_index(self->secrets, i));
    for (guint i = 0; i < self->personal->len; i++)
        g_ptr_array_add(all, g_ptr_array_index(self->personal, i));
    g_ptr_array_sort(all, longer_first);
    for (guint i = 0; i < all->len; i++) {
        const char *v = g_ptr_array_index(all, i);
        gboolean secret = g_ptr_array_find_with_equal_func(self->secrets, v, g_str_equal, NULL);
        char *next = replace_all(cur, v, secret ? "********" : "###");

        g_free(cur);
        cur = next;
    }
    return cur;
}

/*****************************************************************************/
/* D-Bus objects */

typedef struct {
    const char *interface_suffix; /* after org.freedesktop.ModemManager1 */
    const char *property;
} PersonalProperty;

static const PersonalProperty personal_properties[] = {
    {".Modem", "EquipmentIdentifier"},
    {".Modem", "OwnNumbers"},
    {".Modem.Modem3gpp", "Imei"},
    {".Sim", "SimIdentifier"},
    {".Sim", "Imsi"},
    {".Sim", "Eid"},
    {".Sim", "Msisdn"},
    {".Modem.Location", "Location"},
};

gboolean
ca_diag_property_is_personal(const char *interface, const char *property)
{
    const char *mm = "org.freedesktop.ModemManager1";

    if (!interface || !property || !g_str_has_prefix(interface, mm))
        return FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(personal_properties); i++) {
        if (g_str_equal(interface + strlen(mm), personal_properties[i].interface_suffix) &&
            g_str_equal(property, personal_properties[i].property))
            return TRUE;
    }
    return FALSE;
}

/* Teach the redactor every string inside a personal value (strings, arrays of them, the
 * location dictionary's values). */
static void
learn_personal(CaRedactor *r, GVariant *v)
{
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
        ca_redactor_add_personal(r, g_variant_get_string(v, NULL));
    } else if (g_variant_is_of_type(v, G_VARIANT_TYPE_VARIANT)) {
        g_autoptr(GVariant) inner = g_variant_get_variant(v);
        learn_personal(r, inner);
    } else if (g_variant_is_container(v)) {
        gsize n = g_variant_n_children(v);

        for (gsize i = 0; i < n; i++) {
            g_autoptr(GVariant) child = g_variant_get_child_value(v, i);
            learn_personal(r, child);
        }
    }
}

#define MM_MODEM_IFACE "org.freedesktop.ModemManager1.Modem"

/* ModemManager's numbers named as mmcli names them: "State: 11 (connected)". NULL for
 * other properties and unknown values. */
static char *
enum_meaning(const char *iface, const char *name, GVariant *value)
{
    static const char *const power_names[] = {"unknown", "off", "low", "on"};
    const char *s = NULL;

    if (g_str_equal(iface, MM_MODEM_IFACE) && g_str_equal(name, "State") &&
        g_variant_is_of_type(value, G_VARIANT_TYPE_INT32))
        s = ca_mm_modem_state_to_string((MMModemState) g_variant_get_int32(value));
    if (!g_variant_is_of_type(value, G_VARIANT_TYPE_UINT32))
        return g_strdup(s);
    if (g_str_equal(iface, MM_MODEM_IFACE) && g_str_equal(name, "StateFailedReason"))
        s = ca_mm_failed_reason_to_string((MMModemStateFailedReason) g_variant_get_uint32(value));
    else if (g_str_equal(iface, MM_MODEM_IFACE) && g_str_equal(name, "UnlockRequired"))
        s = ca_mm_lock_to_string((MMModemLock) g_variant_get_uint32(value));
    else if (g_str_equal(iface, MM_MODEM_IFACE) && g_str_equal(name, "PowerState") &&
             g_variant_get_uint32(value) < G_N_ELEMENTS(power_names))
        s = power_names[g_variant_get_uint32(value)];
    else if (g_str_equal(iface, MM_MODEM_IFACE ".Modem3gpp") &&
             g_str_equal(name, "RegistrationState"))
        s = ca_mm_registration_to_string(
            (MMModem3gppRegistrationState) g_variant_get_uint32(value));
    else if (g_str_equal(iface, MM_MODEM_IFACE) && g_str_equal(name, "AccessTechnologies")) {
        guint32 flags = g_variant_get_uint32(value);
        GString *names = g_string_new(NULL);

        for (guint bit = 0; bit < 32; bit++) {
            const char *one =
                (flags & (1u << bit))
                    ? ca_mm_access_tech_flag_to_string((MMModemAccessTechnology) (1u << bit))
                    : NULL;
            if (one)
                g_string_append_printf(names, "%s%s", names->len ? "," : "", one);
        }
        if (names->len == 0 && flags == MM_MODEM_ACCESS_TECHNOLOGY_UNKNOWN)
            g_string_append(names, "unknown");
        return g_string_free(names, names->len == 0);
    }
    return g_strdup(s);
}

static void
format_property(GString *out, const char *iface, const char *name, GVariant *value, CaRedactor *r)
{
    g_autofree char *text = NULL;
    g_autofree char *meaning = NULL;

    if (ca_diag_property_is_personal(iface, name)) {
        learn_personal(r, value);
        if (!ca_redactor_keeps_personal(r)) {
            g_string_append_printf(out, "    %s: ###\n", name);
            return;
        }
    }
    /* Messages are counted, never listed (their paths lead to the texts). */
    if (g_str_equal(name, "Messages") && g_variant_is_of_type(value, G_VARIANT_TYPE("ao"))) {
        g_string_append_printf(out, "    %s: %" G_GSIZE_FORMAT " messages\n", name,
                               g_variant_n_children(value));
        return;
    }
    text = g_variant_print(value, FALSE);
    meaning = enum_meaning(iface, name, value);
    if (meaning)
        g_string_append_printf(out, "    %s: %s (%s)\n", name, text, meaning);
    else
        g_string_append_printf(out, "    %s: %s\n", name, text);
}

void
ca_diag_format_object(GString *out, const char *path, GVariant *interfaces, CaRedactor *r)
{
    GVariantIter it;
    const char *iface;
    GVariant *props;

    g_string_append_printf(out, "%s\n", path);
    if (!g_variant_is_of_type(interfaces, G_VARIANT_TYPE("a{sa{sv}}"))) {
        g_string_append(out, "  (unexpected reply type)\n");
        return;
    }
    g_variant_iter_init(&it, interfaces);
    while (g_variant_iter_next(&it, "{&s@a{sv}}", &iface, &props)) {
        GVariantIter pit;
        const char *name;
        GVariant *value;

        g_string_append_printf(out, "  %s\n", iface);
        g_variant_iter_init(&pit, props);
        while (g_variant_iter_next(&pit, "{&sv}", &name, &value)) {
            format_property(out, iface, name, value, r);
            g_variant_unref(value);
        }
        g_variant_unref(props);
    }
}

static gboolean
setting_is_secret(const char *key)
{
    static const char *const words[] = {"password",    "psk",     "pin",        "secret",
                                        "private-key", "wep-key", "passphrase", NULL};

    /* "-flags" say how a secret is stored, not what it is. */
    if (g_str_has_suffix(key, "-flags"))
        return FALSE;
    for (int i = 0; words[i]; i++) {
        if (strstr(key, words[i]))
            return TRUE;
    }
    return FALSE;
}

void
ca_diag_format_settings(GString *out, const char *path, GVariant *settings, CaRedactor *r)
{
    GVariantIter it;
    const char *group;
    GVariant *keys;

    g_string_append_printf(out, "%s (settings, secrets removed)\n", path);
    if (!g_variant_is_of_type(settings, G_VARIANT_TYPE("a{sa{sv}}"))) {
        g_string_append(out, "  (unexpected reply type)\n");
        return;
    }
    g_variant_iter_init(&it, settings);
    while (g_variant_iter_next(&it, "{&s@a{sv}}", &group, &keys)) {
        GVariantIter kit;
        const char *key;
        GVariant *value;

        g_string_append_printf(out, "  [%s]\n", group);
        g_variant_iter_init(&kit, keys);
        while (g_variant_iter_next(&kit, "{&sv}", &key, &value)) {
            if (setting_is_secret(key)) {
                /* Known now, so a copy elsewhere (a log line) is masked too. */
                if (g_variant_is_of_type(value, G_VARIANT_TYPE_STRING))
                    ca_redactor_add_secret(r, g_variant_get_string(value, NULL));
                g_string_append_printf(out, "    %s: (removed)\n", key);
            } else {
                g_autofree char *text = g_variant_print(value, FALSE);
                g_string_append_printf(out, "    %s: %s\n", key, text);
            }
            g_variant_unref(value);
        }
        g_variant_unref(keys);
    }
}

GPtrArray *
ca_diag_chunks(GBytes *bundle, const char *bundle_id, gsize chunk_size, char **out_sha256)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    gsize len;
    const guint8 *data = g_bytes_get_data(bundle, &len);
    gsize count = len ? (len + chunk_size - 1) / chunk_size : 1;

    g_return_val_if_fail(chunk_size > 0, out);
    for (gsize n = 0; n < count; n++) {
        gsize off = n * chunk_size, part = MIN(chunk_size, len - off);
        g_autofree char *b64 = g_base64_encode(data ? data + off : NULL, part);
        g_autoptr(cJSON) o = cJSON_CreateObject();

        cJSON_AddStringToObject(o, "bundle", bundle_id);
        cJSON_AddNumberToObject(o, "n", (double) n);
        cJSON_AddNumberToObject(o, "of", (double) count);
        cJSON_AddStringToObject(o, "data", b64);
        g_ptr_array_add(out, cJSON_PrintUnformatted(o));
    }
    if (out_sha256)
        *out_sha256 = g_compute_checksum_for_bytes(G_CHECKSUM_SHA256, bundle);
    return out;
}

gboolean
ca_diag_parse_since(const char *text, gint64 *out_seconds)
{
    char *end = NULL;
    guint64 n;
    gint64 unit = 1;

    if (!text || !g_ascii_isdigit(*text))
        return FALSE;
    n = g_ascii_strtoull(text, &end, 10);
    if (end[0] && end[1])
        return FALSE;
    switch (end[0]) {
    case '\0':
    case 's':
        unit = 1;
        break;
    case 'm':
        unit = 60;
        break;
    case 'h':
        unit = 3600;
        break;
    case 'd':
        unit = 86400;
        break;
    default:
        return FALSE;
    }
    if (n == 0 || n > (guint64) 31 * 86400 / (guint64) unit)
        return FALSE;
    *out_seconds = (gint64) n * unit;
    return TRUE;
}
