/* settings: the typed-settings pattern (NetworkManager's config-data), shared helpers.
 *
 * Every module that reads the configuration has one plain struct, Ca<Module>Settings,
 * filled once per config snapshot by a pure loader in agent/core (<module>-settings.c):
 *
 *   void ca_<module>_settings_load(Ca<Module>Settings *out, const CaConfig *config);
 *   void ca_<module>_settings_clear(Ca<Module>Settings *settings);   (NULL-safe, idempotent)
 *   gboolean ca_<module>_settings_equal(const Ca<Module>Settings *a,
 *                                       const Ca<Module>Settings *b);
 *   and, where a module re-applies parts separately, a change mask:
 *   Ca<Module>SettingsChange ca_<module>_settings_diff(a, b);       (0 = equal)
 *
 * The loader is the only code that names a key (ca_config_get_*(config, "group", "key")),
 * so a key typo shows at the first load (a g_critical: fatal in every test); the struct
 * holds every value the module reads, whatever group it lives in (the MQTT settings hold
 * [agent] device-id, since the base topic depends on it), already converted (seconds to
 * ms, enums parsed) and owning its strings. The key table (config-keys.c) stays the single
 * source of validation, defaults and documentation: a loader never checks or defaults.
 *
 * The module keeps its settings struct, not the CaConfig; on reload it loads the new
 * struct, diffs it with the old one, re-applies only what changed, and keeps the new one.
 * tests/unit/test-settings.c loads every struct from the defaults and from a file that
 * sets every key. */
#pragma once
#include <glib.h>

/* g_strcmp0() == 0, for struct members that may be NULL. */
gboolean ca_settings_str_equal(const char *a, const char *b);
/* Two NULL-terminated lists (NULL = empty) with the same elements in the same order. */
gboolean ca_settings_strv_equal(const char *const *a, const char *const *b);
