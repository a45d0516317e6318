/* usage-store-private: the usage store's state, shared by usage-store.c (booking) and
 * usage-file.c (its file). */
#pragma once
#include "usage-store.h"

struct _CaUsageStore {
    GPtrArray *sims; /* CaUsageSim* */
    guint max_sims;
    CaIfSample last; /* the last reading booked */
    char *current;   /* ICCID booked last: where bytes go while the SIM is not known */
    gboolean dirty;
};

/* The SIM's record, or NULL. */
CaUsageSim *ca_usage_store_find_sim(const CaUsageStore *self, const char *iccid);
/* Drop the SIMs seen longest ago (never the current one) until at most max are left. */
void ca_usage_store_trim(CaUsageStore *self, guint max);
