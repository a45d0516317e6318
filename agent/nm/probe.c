/* probe: one round of reachability probes through a given interface (see probe.h).
 *
 * ICMP: socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) is the unprivileged "ping socket"; the
 * kernel allows it when the process's group is inside net.ipv4.ping_group_range (Debian's
 * systemd sets 0-2147483647 for the initial namespace; a fresh network namespace has
 * "1 0", i.e. nobody). It needs no capability and is an AF_INET socket, so the unit's
 * RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 allows it. Where it is refused we try
 * a raw socket (needs CAP_NET_RAW, which the unit does not grant; tests run as root).
 * SO_BINDTODEVICE needs no capability since Linux 5.7 for an unbound socket. */
#define CA_LOG_MODULE "probe"
#include "probe.h"

#include "autocleanups.h"
#include "error.h"
#include "log.h"
#include "probe-spec.h"

#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NAME_TTL_US (300 * G_USEC_PER_SEC) /* re-resolve host names after 5 min */
#define TAG_LEN     8

struct _CaProber {
    GObject parent;
    GHashTable *names; /* host -> NameEntry */
    CaIcmpSocketKind icmp_kind;
    guint16 seq;
    GResolver *resolver;
};

G_DEFINE_TYPE(CaProber, ca_prober, G_TYPE_OBJECT)

typedef struct {
    GInetAddress *addr; /* last good answer, kept when a refresh fails */
    gint64 expires;
} NameEntry;

typedef struct _Round Round;

typedef struct {
    Round *round;
    guint index;
    CaProbeSpec spec;
    gboolean valid;
    gboolean started, finished;
    GSocket *socket;
    GSource *io;    /* owned */
    GSource *timer; /* owned */
    GCancellable *lookup;
    gint64 started_us;
    int family;
    gboolean raw;
    guint16 id, seq;
    guint8 tag[TAG_LEN];
    guint16 dns_id;
} Probe;

struct _Round {
    GTask *task; /* borrowed: the task owns the round */
    CaProber *prober;
    char *iface;
    char *mqtt_host;
    guint16 mqtt_port;
    char *dns_name;
    guint timeout_ms;
    CaProbeMode mode;
    guint lead;
    guint n;
    Probe probes[CA_FAILOVER_MAX_PROBES];
    guint running;
    gboolean lead_phase;
    gboolean returned;
    GSource *cancel_source; /* owned */
    CaProbeRound result;
};

static void start_probe(Probe *p);

/*****************************************************************************/
/* The prober object */

static void
name_entry_free(gpointer data)
{
    NameEntry *e = data;

    g_clear_object(&e->addr);
    g_free(e);
}

static void
ca_prober_init(CaProber *self)
{
    self->names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, name_entry_free);
    self->resolver = g_resolver_get_default();
}

static void
ca_prober_finalize(GObject *object)
{
    CaProber *self = CA_PROBER(object);

    g_hash_table_unref(self->names);
    g_clear_object(&self->resolver);
    G_OBJECT_CLASS(ca_prober_parent_class)->finalize(object);
}

static void
ca_prober_class_init(CaProberClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = ca_prober_finalize;
}

CaProber *
ca_prober_new(void)
{
    return g_object_new(CA_TYPE_PROBER, NULL);
}

CaIcmpSocketKind
ca_prober_get_icmp_kind(CaProber *self)
{
    return self->icmp_kind;
}

const char *
ca_icmp_socket_kind_to_string(CaIcmpSocketKind kind)
{
    switch (kind) {
    case CA_ICMP_SOCKET_UNTRIED:
        return "untried";
    case CA_ICMP_SOCKET_DGRAM:
        return "unprivileged ping socket";
    case CA_ICMP_SOCKET_RAW:
        return "raw socket";
    case CA_ICMP_SOCKET_NONE:
        return "none (not permitted)";
    }
    g_assert_not_reached();
}

static void
note_icmp_kind(CaProber *self, CaIcmpSocketKind kind)
{
    if (self->icmp_kind == kind)
        return;
    if (kind == CA_ICMP_SOCKET_NONE)
        ca_warn("ICMP probes are not permitted: neither a ping socket (the group is outside "
                "net.ipv4.ping_group_range) nor a raw socket (no CAP_NET_RAW); ICMP probes "
                "will fail, use tcp: or dns: probes or widen ping_group_range");
    else
        ca_info("ICMP probes use: %s", ca_icmp_socket_kind_to_string(kind));
    self->icmp_kind = kind;
}

/*****************************************************************************/
/* Finishing */

static void
probe_close(Probe *p)
{
    ca_clear_source(&p->io);
    ca_clear_source(&p->timer);
    if (p->lookup) {
        g_cancellable_cancel(p->lookup);
        g_clear_object(&p->lookup);
    }
    if (p->socket) {
        g_socket_close(p->socket, NULL);
        g_clear_object(&p->socket);
    }
}

static void
round_free(gpointer data)
{
    Round *r = data;

    for (guint i = 0; i < r->n; i++)
        probe_close(&r->probes[i]);
    ca_clear_source(&r->cancel_source);
    g_clear_object(&r->prober);
    g_free(r->iface);
    g_free(r->mqtt_host);
    g_free(r->dns_name);
    g_free(r);
}

static void
round_return(Round *r)
{
    GTask *task = r->task;

    if (r->returned)
        return;
    r->returned = TRUE;
    r->result.ok = FALSE;
    {
        gboolean any_sent = FALSE;
        for (guint i = 0; i < r->n; i++) {
            any_sent |= r->result.results[i].sent;
            r->result.ok |= r->result.results[i].ok;
        }
        /* Nothing could be sent at all (every target skipped): no evidence against. */
        if (!any_sent)
            r->result.ok = TRUE;
    }
    ca_clear_source(&r->cancel_source);
    g_task_return_boolean(task, TRUE);
    g_object_unref(task);
}

/* Start every probe not started yet. The extra count keeps a probe that finishes at
 * once (no such interface, say) from ending the round before the others started;
 * the caller checks for the end afterwards. */
static void
start_rest(Round *r)
{
    r->running++;
    for (guint i = 0; i < r->n; i++) {
        if (!r->probes[i].started)
            start_probe(&r->probes[i]);
    }
    r->running--;
}

/* Record a probe's outcome; sent = FALSE when it could not go out for a local reason
 * that says nothing about the path (a loopback target). */
static void
probe_done(Probe *p, gboolean sent, gboolean ok, const char *error)
{
    Round *r = p->round;
    CaProbeResult *res = &r->result.results[p->index];

    if (p->finished)
        return;
    p->finished = TRUE;
    res->sent = sent;
    res->ok = ok;
    if (ok)
        res->rtt_ms = (double) (g_get_monotonic_time() - p->started_us) / 1000.0;
    if (error)
        g_strlcpy(res->error, error, sizeof res->error);
    probe_close(p);
    r->running--;
    if (r->lead_phase) {
        r->lead_phase = FALSE;
        if (!ok)
            start_rest(r);
    }
    if (r->running == 0)
        round_return(r);
}

static void
probe_fail_errno(Probe *p, int err)
{
    probe_done(p, TRUE, FALSE, g_strerror(err));
}

static gboolean
timeout_cb(gpointer user_data)
{
    Probe *p = user_data;

    ca_clear_source(&p->timer);
    probe_done(p, TRUE, FALSE, "timeout");
    return G_SOURCE_REMOVE;
}

/*****************************************************************************/
/* Sockets */

static int
open_socket(Probe *p, int family, int type, int protocol)
{
    const char *iface = p->round->iface;
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);

    if (fd < 0)
        return -errno;
    if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, iface, (socklen_t) strlen(iface) + 1) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

static gboolean
wrap_socket(Probe *p, int fd)
{
    g_autoptr(GError) error = NULL;

    p->socket = g_socket_new_from_fd(fd, &error);
    if (!p->socket) {
        close(fd);
        probe_done(p, TRUE, FALSE, error->message);
        return FALSE;
    }
    return TRUE;
}

static gboolean
connect_fd(int fd, GInetAddress *addr, guint16 port, int *out_err)
{
    g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(addr, port);
    struct sockaddr_storage ss;

    if (!g_socket_address_to_native(sa, &ss, sizeof ss, NULL)) {
        *out_err = EINVAL;
        return FALSE;
    }
    if (connect(fd, (struct sockaddr *) &ss, (socklen_t) g_socket_address_get_native_size(sa)) <
            0 &&
        errno != EINPROGRESS) {
        *out_err = errno;
        return FALSE;
    }
    return TRUE;
}

static void
watch(Probe *p, GIOCondition cond, GSocketSourceFunc func)
{
    p->io = g_socket_create_source(p->socket, cond, NULL);
    g_source_set_callback(p->io, G_SOURCE_FUNC(func), p, NULL);
    g_source_attach(p->io, NULL);
}

/*****************************************************************************/
/* ICMP echo */

static guint16
inet_checksum(const guint8 *data, gsize len)
{
    guint32 sum = 0;

    for (gsize i = 0; i + 1 < len; i += 2)
        sum += (guint32) (data[i] << 8 | data[i + 1]);
    if (len & 1)
        sum += (guint32) data[len - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (guint16) ~sum;
}

static gboolean
icmp_readable_cb(GSocket *socket, GIOCondition cond, gpointer user_data)
{
    Probe *p = user_data;
    int fd = g_socket_get_fd(socket);

    for (;;) {
        guint8 buf[1500];
        const guint8 *icmp = buf;
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        gsize len;

        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return G_SOURCE_CONTINUE;
            probe_fail_errno(p, errno); /* destroys this source */
            return G_SOURCE_REMOVE;
        }
        len = (gsize) n;
        if (p->raw && p->family == AF_INET) {
            gsize ihl;
            if (len < 20)
                continue;
            ihl = (gsize) (buf[0] & 0x0f) * 4;
            if (len < ihl)
                continue;
            icmp += ihl;
            len -= ihl;
        }
        if (len < 8 + TAG_LEN)
            continue;
        if (p->family == AF_INET ? icmp[0] != ICMP_ECHOREPLY : icmp[0] != ICMP6_ECHO_REPLY)
            continue;
        if (p->raw && (guint16) (icmp[4] << 8 | icmp[5]) != p->id)
            continue;
        if ((guint16) (icmp[6] << 8 | icmp[7]) != p->seq || memcmp(icmp + 8, p->tag, TAG_LEN) != 0)
            continue;
        probe_done(p, TRUE, TRUE, NULL);
        return G_SOURCE_REMOVE;
    }
}

static void
start_icmp(Probe *p, GInetAddress *addr)
{
    CaProber *prober = p->round->prober;
    int family = g_inet_address_get_family(addr) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET;
    int proto = family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP;
    guint8 pkt[8 + TAG_LEN];
    int fd, err = 0;

    p->family = family;
    fd = open_socket(p, family, SOCK_DGRAM, proto);
    if (fd == -EACCES || fd == -EPERM || fd == -EPROTONOSUPPORT) {
        fd = open_socket(p, family, SOCK_RAW, proto);
        p->raw = fd >= 0;
        if (fd == -EACCES || fd == -EPERM) {
            note_icmp_kind(prober, CA_ICMP_SOCKET_NONE);
            probe_done(p, TRUE, FALSE, "ICMP not permitted");
            return;
        }
    }
    if (fd < 0) {
        probe_fail_errno(p, -fd);
        return;
    }
    if (family == AF_INET)
        note_icmp_kind(prober, p->raw ? CA_ICMP_SOCKET_RAW : CA_ICMP_SOCKET_DGRAM);
    if (!wrap_socket(p, fd))
        return;
    if (!connect_fd(fd, addr, 0, &err)) {
        probe_fail_errno(p, err);
        return;
    }
    p->id = (guint16) g_random_int_range(1, 65536);
    p->seq = ++prober->seq;
    for (int i = 0; i < TAG_LEN; i++)
        p->tag[i] = (guint8) g_random_int_range(0, 256);
    memset(pkt, 0, sizeof pkt);
    pkt[0] = family == AF_INET ? ICMP_ECHO : ICMP6_ECHO_REQUEST;
    pkt[4] = (guint8) (p->id >> 8);
    pkt[5] = (guint8) p->id;
    pkt[6] = (guint8) (p->seq >> 8);
    pkt[7] = (guint8) p->seq;
    memcpy(pkt + 8, p->tag, TAG_LEN);
    if (family == AF_INET && p->raw) {
        guint16 sum = inet_checksum(pkt, sizeof pkt);
        pkt[2] = (guint8) (sum >> 8);
        pkt[3] = (guint8) sum;
    }
    /* Ping sockets fill in the id (their port) and the checksum; raw ICMPv6 sockets
     * compute the checksum themselves (RFC 3542). */
    p->started_us = g_get_monotonic_time();
    if (send(fd, pkt, sizeof pkt, 0) < 0) {
        probe_fail_errno(p, errno);
        return;
    }
    watch(p, G_IO_IN, icmp_readable_cb);
}

/*****************************************************************************/
/* TCP connect */

static gboolean
tcp_writable_cb(GSocket *socket, GIOCondition cond, gpointer user_data)
{
    Probe *p = user_data;
    int fd = g_socket_get_fd(socket), err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err) {
        probe_fail_errno(p, err);
    } else {
        /* Close with a reset: four packets in all, and nothing left in TIME_WAIT. */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        probe_done(p, TRUE, TRUE, NULL);
    }
    return G_SOURCE_REMOVE;
}

static void
start_tcp(Probe *p, GInetAddress *addr, guint16 port)
{
    int family = g_inet_address_get_family(addr) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET;
    int fd = open_socket(p, family, SOCK_STREAM, IPPROTO_TCP), err = 0;

    if (fd < 0) {
        probe_fail_errno(p, -fd);
        return;
    }
    if (!wrap_socket(p, fd))
        return;
    p->started_us = g_get_monotonic_time();
    if (!connect_fd(fd, addr, port, &err)) {
        probe_fail_errno(p, err);
        return;
    }
    watch(p, G_IO_OUT, tcp_writable_cb);
}

/*****************************************************************************/
/* DNS query */

static gsize
build_query(guint8 *buf, gsize size, guint16 id, const char *name)
{
    gsize n = 0;
    g_auto(GStrv) labels = NULL;

    if (size < 12 + 256 + 4)
        return 0;
    buf[n++] = (guint8) (id >> 8);
    buf[n++] = (guint8) id;
    buf[n++] = 0x01; /* RD */
    buf[n++] = 0x00;
    buf[n++] = 0x00; /* QDCOUNT 1 */
    buf[n++] = 0x01;
    memset(buf + n, 0, 6);
    n += 6;
    if (strcmp(name, ".") != 0) {
        labels = g_strsplit(name, ".", -1);
        for (int i = 0; labels[i]; i++) {
            gsize l = strlen(labels[i]);
            if (l == 0)
                continue;
            if (l > 63 || n + 1 + l + 5 > size)
                return 0;
            buf[n++] = (guint8) l;
            memcpy(buf + n, labels[i], l);
            n += l;
        }
    }
    buf[n++] = 0x00;
    buf[n++] = 0x00; /* QTYPE A */
    buf[n++] = 0x01;
    buf[n++] = 0x00; /* QCLASS IN */
    buf[n++] = 0x01;
    return n;
}

static gboolean
dns_readable_cb(GSocket *socket, GIOCondition cond, gpointer user_data)
{
    Probe *p = user_data;
    int fd = g_socket_get_fd(socket);

    for (;;) {
        guint8 buf[512];
        ssize_t n = recv(fd, buf, sizeof buf, 0);

        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return G_SOURCE_CONTINUE;
            probe_fail_errno(p, errno);
            return G_SOURCE_REMOVE;
        }
        /* Any answer to our id proves the path, whatever its rcode. */
        if (n >= 12 && (guint16) (buf[0] << 8 | buf[1]) == p->dns_id && (buf[2] & 0x80)) {
            probe_done(p, TRUE, TRUE, NULL);
            return G_SOURCE_REMOVE;
        }
    }
}

static void
start_dns(Probe *p, GInetAddress *addr, guint16 port)
{
    int family = g_inet_address_get_family(addr) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET;
    int fd = open_socket(p, family, SOCK_DGRAM, IPPROTO_UDP), err = 0;
    guint8 q[512];
    gsize qlen;

    if (fd < 0) {
        probe_fail_errno(p, -fd);
        return;
    }
    if (!wrap_socket(p, fd))
        return;
    if (!connect_fd(fd, addr, port, &err)) {
        probe_fail_errno(p, err);
        return;
    }
    p->dns_id = (guint16) g_random_int_range(0, 65536);
    qlen = build_query(q, sizeof q, p->dns_id, p->round->dns_name);
    if (qlen == 0) {
        probe_done(p, FALSE, FALSE, "bad dns-name");
        return;
    }
    p->started_us = g_get_monotonic_time();
    if (send(fd, q, qlen, 0) < 0) {
        probe_fail_errno(p, errno);
        return;
    }
    watch(p, G_IO_IN, dns_readable_cb);
}

/*****************************************************************************/
/* Starting a probe (after resolving its host where needed) */

static void
launch(Probe *p, GInetAddress *addr)
{
    if (g_inet_address_get_is_loopback(addr)) {
        /* Cannot test an uplink (e.g. tcp:mqtt with the broker on this machine). */
        probe_done(p, FALSE, FALSE, "loopback target");
        return;
    }
    switch (p->spec.kind) {
    case CA_PROBE_ICMP:
        start_icmp(p, addr);
        break;
    case CA_PROBE_TCP:
        start_tcp(p, addr, p->spec.mqtt ? p->round->mqtt_port : p->spec.port);
        break;
    case CA_PROBE_DNS:
        start_dns(p, addr, p->spec.port);
        break;
    }
}

static const char *
probe_host(const Probe *p)
{
    return p->spec.mqtt ? p->round->mqtt_host : p->spec.host;
}

static void
lookup_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Probe *p = user_data;
    g_autoptr(GError) error = NULL;
    GList *addrs = g_resolver_lookup_by_name_finish(G_RESOLVER(source), result, &error);
    NameEntry *e;

    if (!addrs && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return; /* the probe is gone */
    g_clear_object(&p->lookup);
    e = g_hash_table_lookup(p->round->prober->names, probe_host(p));
    if (addrs) {
        if (!e) {
            e = g_new0(NameEntry, 1);
            g_hash_table_insert(p->round->prober->names, g_strdup(probe_host(p)), e);
        }
        g_set_object(&e->addr, addrs->data);
        e->expires = g_get_monotonic_time() + NAME_TTL_US;
        g_resolver_free_addresses(addrs);
    }
    if (e && e->addr) {
        launch(p, e->addr);
        return;
    }
    probe_done(p, TRUE, FALSE, "name not resolved");
}

static void
start_probe(Probe *p)
{
    Round *r = p->round;
    const char *host;
    g_autoptr(GInetAddress) literal = NULL;
    NameEntry *e;

    p->started = TRUE;
    r->running++;
    p->started_us = g_get_monotonic_time();
    if (!p->valid) {
        probe_done(p, FALSE, FALSE, "invalid probe");
        return;
    }
    p->timer = g_timeout_source_new(r->timeout_ms);
    g_source_set_callback(p->timer, timeout_cb, p, NULL);
    g_source_attach(p->timer, NULL);

    host = probe_host(p);
    literal = g_inet_address_new_from_string(host);
    if (literal) {
        launch(p, literal);
        return;
    }
    e = g_hash_table_lookup(r->prober->names, host);
    if (e && e->addr && e->expires > g_get_monotonic_time()) {
        launch(p, e->addr);
        return;
    }
    /* Resolution goes through the resolver (its own thread), over whatever path the
     * system uses; the probe itself then goes through this uplink. */
    p->lookup = g_cancellable_new();
    g_resolver_lookup_by_name_async(r->prober->resolver, host, p->lookup, lookup_ready, p);
}

/*****************************************************************************/
/* The round */

static gboolean
cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
    Round *r = user_data;
    GTask *task = r->task;

    ca_clear_source(&r->cancel_source);
    if (r->returned)
        return G_SOURCE_REMOVE;
    r->returned = TRUE;
    for (guint i = 0; i < r->n; i++)
        probe_close(&r->probes[i]);
    g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "probe round cancelled");
    g_object_unref(task);
    return G_SOURCE_REMOVE;
}

void
ca_prober_run_async(CaProber *self, const CaProbeRequest *req, GCancellable *cancellable,
                    GAsyncReadyCallback callback, gpointer user_data)
{
    GTask *task = g_task_new(self, cancellable, callback, user_data);
    Round *r = g_new0(Round, 1);

    g_task_set_source_tag(task, ca_prober_run_async);
    g_task_set_task_data(task, r, round_free);
    r->task = task; /* this reference is dropped when the round returns */
    r->prober = g_object_ref(self);
    r->iface = g_strdup(req->iface);
    r->mqtt_host = g_strdup(req->mqtt_host ? req->mqtt_host : "localhost");
    r->mqtt_port = req->mqtt_port;
    r->dns_name = g_strdup(req->dns_name ? req->dns_name : ".");
    r->timeout_ms = MAX(req->timeout_ms, 1);
    r->mode = req->mode;
    r->n = req->specs ? MIN(g_strv_length((char **) req->specs), CA_FAILOVER_MAX_PROBES) : 0;
    r->lead = req->lead < r->n ? req->lead : 0;
    r->result.n_results = r->n;
    for (guint i = 0; i < r->n; i++) {
        Probe *p = &r->probes[i];
        p->round = r;
        p->index = i;
        p->valid = ca_probe_spec_parse(req->specs[i], &p->spec, NULL);
        g_strlcpy(r->result.results[i].target, req->specs[i], sizeof r->result.results[i].target);
    }
    if (cancellable) {
        r->cancel_source = g_cancellable_source_new(cancellable);
        g_source_set_callback(r->cancel_source, G_SOURCE_FUNC(cancelled_cb), r, NULL);
        g_source_attach(r->cancel_source, NULL);
    }
    if (r->n == 0) {
        round_return(r);
        return;
    }
    if (r->mode == CA_PROBE_MODE_LEAD && r->n > 1) {
        r->lead_phase = TRUE;
        start_probe(&r->probes[r->lead]);
    } else {
        start_rest(r);
        if (r->running == 0)
            round_return(r);
    }
}

gboolean
ca_prober_run_finish(CaProber *self, GAsyncResult *result, CaProbeRound *out_round, GError **error)
{
    Round *r;

    g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
    if (!g_task_propagate_boolean(G_TASK(result), error))
        return FALSE;
    r = g_task_get_task_data(G_TASK(result));
    *out_round = r->result;
    return TRUE;
}
