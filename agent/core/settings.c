/* settings: helpers shared by the typed settings loaders (the pattern is in settings.h). */
#include "settings.h"

gboolean
ca_settings_str_equal(const char *a, const char *b)
{
    return g_strcmp0(a, b) == 0;
}

gboolean
ca_settings_strv_equal(const char *const *a, const char *const *b)
{
    static const char *const empty[] = {NULL};

    return g_strv_equal(a ? a : empty, b ? b : empty);
}
