/* economy-settings: CaEconomySettings, the [economy] keys typed (economy.h's policy).
 * The pattern is in settings.h. */
#pragma once
#include "config.h"
#include "economy.h"
#include "settings.h"

typedef struct {
    CaEconomyPolicy policy;
} CaEconomySettings;

/* Fill out (zeroed first) from config. */
void ca_economy_settings_load(CaEconomySettings *out, const CaConfig *config);
/* Nothing is owned; zeroes settings. NULL-safe. */
void ca_economy_settings_clear(CaEconomySettings *settings);
gboolean ca_economy_settings_equal(const CaEconomySettings *a, const CaEconomySettings *b);
