/* autocleanups: g_autoptr() support for the foreign types we own. */
#pragma once
#include <cjson/cJSON.h>
#include <glib.h>
#include <mosquitto.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(cJSON, cJSON_Delete)
typedef struct mosquitto CaMosquitto;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaMosquitto, mosquitto_destroy)

/* Destroy and unref an owned GSource, leaving NULL behind (STYLE C7). */
static inline void
ca_clear_source(GSource **source)
{
    if (*source) {
        g_source_destroy(*source);
        g_source_unref(*source);
        *source = NULL;
    }
}
