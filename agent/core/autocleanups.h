/* autocleanups: g_autoptr() support for cJSON, and ca_clear_source(). The MQTT adapter adds
 * libmosquitto's (mqtt-source.h). */
#pragma once
#include <cjson/cJSON.h>
#include <glib.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(cJSON, cJSON_Delete)

/* Destroy and unref an owned GSource, leaving NULL behind (HACKING.md C7). */
static inline void
ca_clear_source(GSource **source)
{
    if (*source) {
        g_source_destroy(*source);
        g_source_unref(*source);
        *source = NULL;
    }
}
