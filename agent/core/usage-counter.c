/* usage-counter: interface counter deltas and the billing model (usage-counter.h). */
#include "usage-counter.h"

#include <string.h>

void
ca_if_sample_clear(CaIfSample *s)
{
    if (!s)
        return;
    g_free(s->iface);
    g_free(s->boot_id);
    memset(s, 0, sizeof *s);
}

void
ca_if_sample_copy(CaIfSample *dest, const CaIfSample *src)
{
    if (dest == src)
        return;
    ca_if_sample_clear(dest);
    *dest = *src;
    dest->iface = g_strdup(src->iface);
    dest->boot_id = g_strdup(src->boot_id);
}

const char *
ca_usage_delta_kind_to_string(CaUsageDeltaKind kind)
{
    switch (kind) {
    case CA_USAGE_DELTA_NONE:
        return "none";
    case CA_USAGE_DELTA_BASELINE:
        return "baseline";
    case CA_USAGE_DELTA_GREW:
        return "grew";
    case CA_USAGE_DELTA_RECREATED:
        return "recreated";
    }
    g_assert_not_reached();
}

static gboolean
went_back(const CaUsageBytes *prev, const CaUsageBytes *now)
{
    return now->rx_bytes < prev->rx_bytes || now->tx_bytes < prev->tx_bytes ||
           now->rx_packets < prev->rx_packets || now->tx_packets < prev->tx_packets;
}

CaUsageDeltaKind
ca_usage_delta(const CaIfSample *prev, const CaIfSample *now, CaUsageBytes *out,
               const char **out_why)
{
    const char *why = NULL;

    memset(out, 0, sizeof *out);
    if (out_why)
        *out_why = NULL;
    if (!now || !now->iface)
        return CA_USAGE_DELTA_NONE;
    if (!prev || !prev->iface)
        return CA_USAGE_DELTA_BASELINE;
    if (!g_str_equal(prev->iface, now->iface))
        why = "interface";
    else if (prev->ifindex != now->ifindex)
        why = "ifindex";
    else if (g_strcmp0(prev->boot_id, now->boot_id) != 0)
        why = "boot";
    else if (went_back(&prev->c, &now->c))
        why = "counters-decreased";
    if (why) {
        /* A new interface's counters started at 0 when it was created: all of them are
         * new traffic. */
        *out = now->c;
        if (out_why)
            *out_why = why;
        return CA_USAGE_DELTA_RECREATED;
    }
    out->rx_bytes = now->c.rx_bytes - prev->c.rx_bytes;
    out->tx_bytes = now->c.tx_bytes - prev->c.tx_bytes;
    out->rx_packets = now->c.rx_packets - prev->c.rx_packets;
    out->tx_packets = now->c.tx_packets - prev->c.tx_packets;
    return CA_USAGE_DELTA_GREW;
}

static guint64
sat_add(guint64 a, guint64 b)
{
    return a > G_MAXUINT64 - b ? G_MAXUINT64 : a + b;
}

void
ca_usage_bytes_add(CaUsageBytes *out, const CaUsageBytes *add)
{
    out->rx_bytes = sat_add(out->rx_bytes, add->rx_bytes);
    out->tx_bytes = sat_add(out->tx_bytes, add->tx_bytes);
    out->rx_packets = sat_add(out->rx_packets, add->rx_packets);
    out->tx_packets = sat_add(out->tx_packets, add->tx_packets);
}

guint64
ca_billing_volume(const CaBillingModel *model, const CaUsageBytes *bytes)
{
    guint64 packets = sat_add(bytes->rx_packets, bytes->tx_packets);
    guint64 volume = sat_add(bytes->rx_bytes, bytes->tx_bytes);

    if (model->overhead_per_packet > 0 && packets > G_MAXUINT64 / model->overhead_per_packet)
        return G_MAXUINT64;
    return sat_add(volume, packets * model->overhead_per_packet);
}

guint64
ca_billing_round_session(const CaBillingModel *model, guint64 volume)
{
    guint64 rest;

    if (model->session_round == 0 || volume == 0)
        return volume;
    rest = volume % model->session_round;
    return rest == 0 ? volume : sat_add(volume, model->session_round - rest);
}
