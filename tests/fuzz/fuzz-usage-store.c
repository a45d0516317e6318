/* fuzz-usage-store: usage.json (docs/usage.md) through ca_usage_store_from_json. The file
 * lives in state-dir, where a crash in mid-write of another tool, a full disk or a hand
 * edit can leave anything. Every input gives a store or an error, never both; a store
 * serialises and parses back to the same text, takes a reading and builds a payload for
 * each of its SIMs without a GLib warning. */
#include "autocleanups.h"
#include "error.h"
#include "fuzz.h"
#include "usage-store.h"

#include <string.h>

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ca_fuzz_init();
    return 0;
}

int
LLVMFuzzerTestOneInput(const guint8 *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(CaUsageStore) store = ca_usage_store_from_json((const char *) data, size, 8, &error);
    g_autoptr(CaUsageStore) again = NULL;
    g_autoptr(GTimeZone) tz = NULL;
    g_autofree char *text = NULL;
    g_autofree char *text2 = NULL;
    CaIfSample s;

    ca_fuzz_assert((store == NULL) != (error == NULL));
    if (!store)
        return 0;
    ca_fuzz_assert(ca_usage_store_count(store) <= 8);
    text = ca_usage_store_to_json(store);
    again = ca_usage_store_from_json(text, strlen(text), 8, &error);
    ca_fuzz_assert(again != NULL && error == NULL);
    text2 = ca_usage_store_to_json(again);
    ca_fuzz_assert(strcmp(text, text2) == 0);

    /* Booking on top of whatever was loaded. */
    tz = g_time_zone_new_utc();
    memset(&s, 0, sizeof s);
    s.iface = (char *) "usb0";
    s.ifindex = 3;
    s.c.rx_bytes = 1000;
    s.c.tx_bytes = 1000;
    {
        g_autoptr(GPtrArray) events = g_ptr_array_new_with_free_func((GDestroyNotify) cJSON_Delete);
        g_autoptr(cJSON) payload = NULL;

        ca_usage_store_sample(store, NULL, NULL, tz, &s, 1796500000, events);
        payload = ca_usage_store_payload(store, "8925402123456789012", NULL, 1796500000);
        ca_fuzz_assert(payload != NULL);
    }
    return 0;
}
