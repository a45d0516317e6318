/* usage-counter: from two samples of a network interface's kernel counters to the bytes
 * that crossed it in between, and the billing model that turns bytes into what an operator
 * would bill. The kernel's counters (64-bit) start at 0 when an interface is created: an
 * interface that was re-created (another name or index, another boot) or whose counters
 * went backwards is counted from 0, never taken for a wrap, so a re-created session
 * interface is neither double counted nor read as 2^64 bytes.
 * Owns: delta and model arithmetic. Does not own: reading the counters (agent/app), where
 * the bytes are booked (usage-store.c). */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    guint64 rx_bytes, tx_bytes, rx_packets, tx_packets;
} CaUsageBytes;

/* One reading of /sys/class/net/<iface>/statistics; iface NULL: no reading. */
typedef struct {
    char *iface;   /* interface name */
    int ifindex;   /* its index: a re-created interface gets a new one */
    char *boot_id; /* /proc/sys/kernel/random/boot_id: counters do not survive a boot */
    CaUsageBytes c;
} CaIfSample;

void ca_if_sample_clear(CaIfSample *s);
void ca_if_sample_copy(CaIfSample *dest, const CaIfSample *src);

typedef enum {
    CA_USAGE_DELTA_NONE,      /* no reading now: nothing counted */
    CA_USAGE_DELTA_BASELINE,  /* no earlier reading to compare with: nothing counted */
    CA_USAGE_DELTA_GREW,      /* the same interface: the difference */
    CA_USAGE_DELTA_RECREATED, /* another interface, index or boot, or counters went back:
                               * the new counters from 0 */
} CaUsageDeltaKind;

/* "none", "baseline", "grew", "recreated". */
const char *ca_usage_delta_kind_to_string(CaUsageDeltaKind kind);

/* The bytes between prev and now into *out (zeroed when nothing is counted); *out_why
 * (optional) names the reason of RECREATED: "interface", "ifindex", "boot",
 * "counters-decreased". */
CaUsageDeltaKind ca_usage_delta(const CaIfSample *prev, const CaIfSample *now, CaUsageBytes *out,
                                const char **out_why);

/* out += add. */
void ca_usage_bytes_add(CaUsageBytes *out, const CaUsageBytes *add);

/* How operators bill, as far as the agent can estimate it from interface counters. */
typedef struct {
    guint overhead_per_packet; /* bytes added per packet (tunnel and link headers the
                                * operator counts and the interface does not) */
    guint64 session_round;     /* each session's volume rounded up to a multiple of this
                                * many bytes; 0 = no rounding */
} CaBillingModel;

/* The billable volume of bytes: rx + tx + overhead per packet (saturating). */
guint64 ca_billing_volume(const CaBillingModel *model, const CaUsageBytes *bytes);
/* A session's billable volume rounded up to the model's unit (0 stays 0). */
guint64 ca_billing_round_session(const CaBillingModel *model, guint64 volume);

G_END_DECLS
