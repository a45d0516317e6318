/* config-private: the CaConfig snapshot's representation, shared by config.c (loading,
 * getters, comparison) and config-doc.c (--check-config dump). */
#pragma once
#include "config.h"

typedef struct {
    char *text; /* as written (unescaped) or the default */
    char *file; /* NULL when defaulted */
    int line;   /* 0 when unknown */
    gint64 i;   /* CA_KEY_INT */
    gboolean b; /* CA_KEY_BOOL */
    GStrv list; /* CA_KEY_FLAG_LIST */
} Value;

struct _CaConfig {
    gint ref;
    GHashTable *values;  /* "group\037key" -> Value* */
    GPtrArray *warnings; /* char*, NULL-terminated */
    GPtrArray *files;    /* char*, NULL-terminated */
    GPtrArray *errors;   /* while loading only */
    GHashTable *groups;  /* group names present in files -> NULL */
};

/* The values table's key for [group] key. */
char *ca_config_vkey(const char *group, const char *key);
