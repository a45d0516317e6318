/* probe: reachability probes sent through one given interface (SO_BINDTODEVICE), so
 * they test that uplink's path and not whatever carries the default route: ICMP echo
 * (an unprivileged ping socket, or a raw socket where that is refused and the process
 * may), TCP connect, one DNS query over UDP. Non-blocking on the GLib main loop, each
 * probe with its own timeout. A round is the lead probe and, only if it fails, the
 * others at once (CA_PROBE_MODE_LEAD), or all at once (CA_PROBE_MODE_ALL).
 * Owns: sockets, timers, a small host name cache. Does not own: judging (failover). */
#pragma once
#include "failover.h"

#include <gio/gio.h>

G_BEGIN_DECLS

#define CA_TYPE_PROBER (ca_prober_get_type())
G_DECLARE_FINAL_TYPE(CaProber, ca_prober, CA, PROBER, GObject)

typedef struct {
    const char *iface;        /* interface to bind to */
    const char *const *specs; /* probe specs (probe-spec.h), at most CA_FAILOVER_MAX_PROBES */
    guint lead;               /* index of the lead probe (LEAD mode) */
    CaProbeMode mode;
    guint timeout_ms;      /* per probe */
    const char *mqtt_host; /* for tcp:mqtt */
    guint16 mqtt_port;
    const char *dns_name; /* for dns: probes */
} CaProbeRequest;

typedef enum {
    CA_ICMP_SOCKET_UNTRIED, /* no ICMP probe sent yet */
    CA_ICMP_SOCKET_DGRAM,   /* unprivileged ping socket (net.ipv4.ping_group_range) */
    CA_ICMP_SOCKET_RAW,     /* raw socket (CAP_NET_RAW) */
    CA_ICMP_SOCKET_NONE,    /* neither is allowed: ICMP probes fail */
} CaIcmpSocketKind;

CaProber *ca_prober_new(void);
/* Run one round; the request is copied. Always completes with a round (probe failures
 * are results, not errors), except when cancelled (G_IO_ERROR_CANCELLED). */
void ca_prober_run_async(CaProber *self, const CaProbeRequest *request, GCancellable *cancellable,
                         GAsyncReadyCallback callback, gpointer user_data);
gboolean ca_prober_run_finish(CaProber *self, GAsyncResult *result, CaProbeRound *out_round,
                              GError **error);
/* Which ICMP socket kind the IPv4 probes ended up with (for logs and docs). */
CaIcmpSocketKind ca_prober_get_icmp_kind(CaProber *self);
const char *ca_icmp_socket_kind_to_string(CaIcmpSocketKind kind);

G_END_DECLS
