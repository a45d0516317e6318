/* uplink: the NetworkManager adapter around the failover policy (see uplink.h).
 *
 * Data flow: NMClient signals -> (coalesced idle) facts per uplink -> ca_failover_set_facts
 * -> ca_failover_run -> outputs (probe, routes, activate, deactivate, watchdog, state,
 * switch) carried out here. One owned timer wakes the policy at its next deadline.
 *
 * Failover mechanism: every managed uplink keeps its default route; the policy ranks them
 * and we set each active connection's ipv4/ipv6 route-metric at runtime with
 * nm_device_reapply() on the applied connection (the stored profile is not touched):
 * the chosen uplink gets 100, the others 30000 + 10 x rank, above NetworkManager's own
 * +20000 penalty for devices without full connectivity. See docs/uplinks.md. */
#define CA_LOG_MODULE "uplink"
#include "uplink.h"

#include "autocleanups.h"
#include "backoff.h"
#include "bus.h"
#include "error.h"
#include "failover.h"
#include "log.h"
#include "probe-spec.h"
#include "probe.h"

#include <NetworkManager.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

#define LINK_MIN_GAP_MS   1000 /* at most one <base>/link per second */
#define LEAD_RESET_ROUNDS 180  /* retry the first (cheapest) probe as lead this often */
#define STATE_FILE        "watchdog.state"

typedef struct {
    NMRemoteConnection *conn; /* ref; NULL when NetworkManager has no such profile */
    NMActiveConnection *ac;   /* ref */
    NMDevice *device;         /* ref */
    guint lead;               /* index of the lead probe */
    guint lead_rounds;
    gboolean probing;
    gboolean activating; /* our activation call is out */
    char *applied_ac;    /* active connection path our metric was applied to */
    guint32 applied_metric;
    gboolean reapplying, reapply_again;
} Rt;

struct _CaUplink {
    GObject parent;
    CaConfig *config;
    CaFoConfig *fo_config;
    CaFailover *fo;
    Rt *rt;
    guint n;
    guint generation; /* bumped when the policy is rebuilt: late results are dropped */
    CaProber *prober;
    GDBusConnection *bus; /* private: see bus.h */
    NMClient *client;
    GCancellable *cancellable;
    GSource *timer;        /* owned: the policy's next deadline */
    GSource *refresh;      /* owned: coalesced fact refresh */
    GSource *link_timer;   /* owned: rate-limited link publishing */
    GSource *report_timer; /* owned: periodic link refresh */
    GSource *retry;        /* owned: NMClient creation retry */
    CaBackoff retry_backoff;
    char *boot_id;
    char *state_path;
    gboolean started;
    gboolean creating_profile;
    gboolean have_modem;
    CaUplinkModemFacts modem;
    char *modem_state, *modem_registration;
    char *link_signature;
    gint64 last_link_ms;
    char *status;
    char *switch_from, *switch_to, *switch_kind; /* "switched" waits for the new route */
    gboolean switch_pending;
    GSource *switch_timer; /* owned: emit anyway if the route cannot be applied */
    GSource *switch_poll;  /* owned: re-check the kernel's route choice */
    GTask *shutdown_task;
    GObject *busy_watcher; /* weak */
    char *reset_uplink;    /* the uplink whose modem reset the modem module carries out */
};

enum { SIG_LINK_CHANGED, SIG_EVENT, SIG_SWITCHED, SIG_STATUS_CHANGED, SIG_MODEM_RESET, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_TYPE(CaUplink, ca_uplink, G_TYPE_OBJECT)

static void schedule_refresh(CaUplink *self);
static void run_policy(CaUplink *self);
static void client_new(CaUplink *self);
static void settle_switch(CaUplink *self, gboolean force);

/*****************************************************************************/
/* Clock */

static gint64
now_ms(void)
{
    struct timespec ts;

    /* CLOCK_BOOTTIME keeps counting in suspend, so hold-downs and budgets do too. */
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (gint64) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static gint64
wall_s(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

static char *
read_boot_id(void)
{
    g_autofree char *text = NULL;

    /* Hidden under ProcSubset=pid; the watchdog then estimates ages conservatively. */
    if (!g_file_get_contents("/proc/sys/kernel/random/boot_id", &text, NULL, NULL))
        return NULL;
    return g_strdup(g_strstrip(text));
}

/*****************************************************************************/
/* NetworkManager names */

static const char *
device_state_name(NMDeviceState s)
{
    switch (s) {
    case NM_DEVICE_STATE_UNKNOWN:
        return "unknown";
    case NM_DEVICE_STATE_UNMANAGED:
        return "unmanaged";
    case NM_DEVICE_STATE_UNAVAILABLE:
        return "unavailable";
    case NM_DEVICE_STATE_DISCONNECTED:
        return "disconnected";
    case NM_DEVICE_STATE_PREPARE:
        return "prepare";
    case NM_DEVICE_STATE_CONFIG:
        return "config";
    case NM_DEVICE_STATE_NEED_AUTH:
        return "need-auth";
    case NM_DEVICE_STATE_IP_CONFIG:
        return "ip-config";
    case NM_DEVICE_STATE_IP_CHECK:
        return "ip-check";
    case NM_DEVICE_STATE_SECONDARIES:
        return "secondaries";
    case NM_DEVICE_STATE_ACTIVATED:
        return "activated";
    case NM_DEVICE_STATE_DEACTIVATING:
        return "deactivating";
    case NM_DEVICE_STATE_FAILED:
        return "failed";
    }
    return "unknown";
}

/* The reason as nmcli names it, lower-case with dashes (from the GEnum nick). */
static void
reason_name(NMDeviceStateReason reason, char *buf, gsize size)
{
    GEnumClass *klass = g_type_class_ref(NM_TYPE_DEVICE_STATE_REASON);
    GEnumValue *v = g_enum_get_value(klass, (gint) reason);

    if (reason == NM_DEVICE_STATE_REASON_NONE)
        buf[0] = '\0';
    else if (v)
        g_strlcpy(buf, v->value_nick, size);
    else
        g_snprintf(buf, size, "reason-%d", (int) reason);
    g_type_class_unref(klass);
}

static CaConnectivity
map_connectivity(NMConnectivityState c)
{
    switch (c) {
    case NM_CONNECTIVITY_NONE:
        return CA_CONNECTIVITY_NONE;
    case NM_CONNECTIVITY_PORTAL:
        return CA_CONNECTIVITY_PORTAL;
    case NM_CONNECTIVITY_LIMITED:
        return CA_CONNECTIVITY_LIMITED;
    case NM_CONNECTIVITY_FULL:
        return CA_CONNECTIVITY_FULL;
    case NM_CONNECTIVITY_UNKNOWN:
        return CA_CONNECTIVITY_UNKNOWN;
    }
    return CA_CONNECTIVITY_UNKNOWN;
}

static CaActivation
map_activation(NMActiveConnectionState s)
{
    switch (s) {
    case NM_ACTIVE_CONNECTION_STATE_ACTIVATING:
        return CA_ACTIVATION_ACTIVATING;
    case NM_ACTIVE_CONNECTION_STATE_ACTIVATED:
        return CA_ACTIVATION_ACTIVATED;
    case NM_ACTIVE_CONNECTION_STATE_DEACTIVATING:
        return CA_ACTIVATION_DEACTIVATING;
    case NM_ACTIVE_CONNECTION_STATE_UNKNOWN:
    case NM_ACTIVE_CONNECTION_STATE_DEACTIVATED:
        return CA_ACTIVATION_NONE;
    }
    return CA_ACTIVATION_NONE;
}

/*****************************************************************************/
/* Events, link, status */

static void
emit_event(CaUplink *self, const char *type, cJSON *fields /* consumed */)
{
    g_signal_emit(self, signals[SIG_EVENT], 0, type, fields);
    cJSON_Delete(fields);
}

/* The link object without what changes with every probe round. */
static char *
link_signature(CaUplink *self)
{
    g_autoptr(cJSON) j = ca_failover_link_json(self->fo, now_ms(), 0);
    cJSON *ups = cJSON_GetObjectItem(j, "uplinks"), *u;

    cJSON_DeleteItemFromObject(j, "ts");
    cJSON_ArrayForEach(u, ups)
    {
        /* What changes every round, and the times: rendered against a wall clock of 0 they
         * are ages, different at every call, which made every failover run republish the
         * unchanged link (a QoS 1 publish and its PUBACK per probe round, over cellular). A
         * new state or watchdog step shows in "state" and "steps". The signal quality moves
         * by a point or two at every ModemManager poll; telemetry reports it (with its own
         * threshold and spacing). */
        static const char *const volatile_keys[] = {"rtt_ms",     "loss",   "probes",
                                                    "last_probe", "reason", "since"};
        cJSON *w = cJSON_GetObjectItem(u, "watchdog");
        cJSON *m = cJSON_GetObjectItem(u, "modem");

        for (gsize k = 0; k < G_N_ELEMENTS(volatile_keys); k++)
            cJSON_DeleteItemFromObject(u, volatile_keys[k]);
        if (w)
            cJSON_DeleteItemFromObject(w, "last_step_at");
        if (m)
            cJSON_DeleteItemFromObject(m, "signal_quality");
    }
    return cJSON_PrintUnformatted(j);
}

static void
publish_link(CaUplink *self)
{
    g_free(self->link_signature);
    self->link_signature = link_signature(self);
    self->last_link_ms = now_ms();
    g_signal_emit(self, signals[SIG_LINK_CHANGED], 0);
}

static gboolean
link_timer_cb(gpointer user_data)
{
    CaUplink *self = user_data;

    ca_clear_source(&self->link_timer);
    publish_link(self);
    return G_SOURCE_REMOVE;
}

/* Publish the link when it changed, at most once per LINK_MIN_GAP_MS. */
static void
maybe_publish_link(CaUplink *self, gboolean force)
{
    g_autofree char *sig = NULL;
    gint64 gap;

    if (!self->fo || self->link_timer)
        return;
    sig = link_signature(self);
    if (!force && g_strcmp0(sig, self->link_signature) == 0)
        return;
    gap = now_ms() - self->last_link_ms;
    if (gap >= LINK_MIN_GAP_MS) {
        publish_link(self);
        return;
    }
    self->link_timer = g_timeout_source_new((guint) (LINK_MIN_GAP_MS - gap));
    g_source_set_callback(self->link_timer, link_timer_cb, self, NULL);
    g_source_attach(self->link_timer, NULL);
}

static gboolean
report_timer_cb(gpointer user_data)
{
    CaUplink *self = user_data;

    maybe_publish_link(self, TRUE);
    return G_SOURCE_CONTINUE;
}

static void
update_status(CaUplink *self)
{
    g_autofree char *s = self->fo ? ca_failover_status_line(self->fo) : g_strdup("starting");

    if (!self->client || !nm_client_get_nm_running(self->client)) {
        g_free(s);
        s = g_strdup("waiting for NetworkManager");
    }
    if (g_strcmp0(s, self->status) == 0)
        return;
    g_free(self->status);
    self->status = g_steal_pointer(&s);
    g_signal_emit(self, signals[SIG_STATUS_CHANGED], 0, self->status);
}

/*****************************************************************************/
/* Facts from NetworkManager */

static void
rt_clear(Rt *rt)
{
    g_clear_object(&rt->conn);
    g_clear_object(&rt->ac);
    g_clear_object(&rt->device);
    g_clear_pointer(&rt->applied_ac, g_free);
}

static NMRemoteConnection *
find_connection(CaUplink *self, const char *id_or_uuid)
{
    NMRemoteConnection *c;

    if (!self->client)
        return NULL;
    c = nm_client_get_connection_by_uuid(self->client, id_or_uuid);
    return c ? c : nm_client_get_connection_by_id(self->client, id_or_uuid);
}

static NMActiveConnection *
find_active(CaUplink *self, NMRemoteConnection *conn, const char *id_or_uuid)
{
    const GPtrArray *acs = nm_client_get_active_connections(self->client);

    for (guint k = 0; acs && k < acs->len; k++) {
        NMActiveConnection *ac = acs->pdata[k];
        if (conn ? g_strcmp0(nm_active_connection_get_uuid(ac),
                             nm_connection_get_uuid(NM_CONNECTION(conn))) == 0
                 : (g_strcmp0(nm_active_connection_get_uuid(ac), id_or_uuid) == 0 ||
                    g_strcmp0(nm_active_connection_get_id(ac), id_or_uuid) == 0))
            return ac;
    }
    return NULL;
}

static gboolean
is_gsm(NMRemoteConnection *conn)
{
    return conn && nm_connection_is_type(NM_CONNECTION(conn), NM_SETTING_GSM_SETTING_NAME);
}

/* A device that could carry the profile (the active one is preferred by the caller). */
static NMDevice *
find_device(CaUplink *self, NMRemoteConnection *conn, gboolean cellular)
{
    const GPtrArray *devs = nm_client_get_devices(self->client);

    for (guint k = 0; devs && k < devs->len; k++) {
        NMDevice *d = devs->pdata[k];

        if (cellular && !NM_IS_DEVICE_MODEM(d))
            continue;
        if (conn && !nm_device_connection_compatible(d, NM_CONNECTION(conn), NULL))
            continue;
        if (!conn && !cellular)
            continue;
        return d;
    }
    return NULL;
}

static void
collect_facts(CaUplink *self, guint i, CaUplinkFacts *f)
{
    const CaFoUplinkConfig *uc = &self->fo_config->uplinks[i];
    Rt *rt = &self->rt[i];
    NMRemoteConnection *conn = find_connection(self, uc->connection);
    NMActiveConnection *ac = NULL;
    NMDevice *dev = NULL;
    gboolean cellular;

    ca_uplink_facts_init(f);
    if (self->client && nm_client_get_nm_running(self->client)) {
        ac = find_active(self, conn, uc->connection);
        cellular = uc->cellular || is_gsm(conn);
        if (ac) {
            const GPtrArray *devs = nm_active_connection_get_devices(ac);
            if (devs && devs->len > 0)
                dev = devs->pdata[0];
        }
        if (!dev && (conn || cellular))
            dev = find_device(self, conn, cellular);
    } else {
        cellular = uc->cellular;
    }
    g_set_object(&rt->conn, conn);
    g_set_object(&rt->ac, ac);
    g_set_object(&rt->device, dev);

    f->cellular = cellular || (dev && NM_IS_DEVICE_MODEM(dev));
    f->device_present = dev != NULL && nm_device_get_state(dev) > NM_DEVICE_STATE_UNMANAGED;
    f->device_ready = dev != NULL && nm_device_get_state(dev) >= NM_DEVICE_STATE_DISCONNECTED;
    if (ac)
        f->activation = map_activation(nm_active_connection_get_state(ac));
    if (dev) {
        char reason[48];

        if (NM_IS_DEVICE_ETHERNET(dev)) /* also veth (NMDeviceVeth is a subclass) */
            f->carrier = nm_device_ethernet_get_carrier(NM_DEVICE_ETHERNET(dev));
        f->connectivity = map_connectivity(nm_device_get_connectivity(dev, AF_INET));
        g_strlcpy(f->device, nm_device_get_iface(dev) ?: "", sizeof f->device);
        g_strlcpy(f->ip_iface, nm_device_get_ip_iface(dev) ?: "", sizeof f->ip_iface);
        g_strlcpy(f->nm_state, device_state_name(nm_device_get_state(dev)), sizeof f->nm_state);
        reason_name(nm_device_get_state_reason(dev), reason, sizeof reason);
        g_strlcpy(f->nm_reason, reason, sizeof f->nm_reason);
    } else if (!self->client || !nm_client_get_nm_running(self->client)) {
        g_strlcpy(f->nm_state, "no-networkmanager", sizeof f->nm_state);
    } else if (!conn) {
        g_strlcpy(f->nm_state, "no-profile", sizeof f->nm_state);
    } else {
        g_strlcpy(f->nm_state, "no-device", sizeof f->nm_state);
    }
    if (f->cellular && self->have_modem) {
        f->modem_known = TRUE;
        f->modem_present = self->modem.present;
        f->modem_usable = self->modem.usable;
        f->registered = self->modem.registered;
        f->bearer_connected = self->modem.bearer_connected;
        f->signal_quality = self->modem.signal_quality;
        g_strlcpy(f->modem_state, self->modem_state ?: "", sizeof f->modem_state);
        g_strlcpy(f->registration, self->modem_registration ?: "", sizeof f->registration);
    }
}

/*****************************************************************************/
/* Route metrics through Reapply */

typedef struct {
    CaUplink *self;
    guint i;
    guint generation;
    guint32 metric;
    char *ac_path;
    NMDevice *device;
} ReapplyCtx;

static void
reapply_ctx_free(ReapplyCtx *c)
{
    g_free(c->ac_path);
    g_clear_object(&c->device);
    g_free(c);
}

static void ensure_metric(CaUplink *self, guint i);

static void
reapply_done(ReapplyCtx *c, gboolean ok)
{
    CaUplink *self = c->self;
    Rt *rt = &self->rt[c->i];

    rt->reapplying = FALSE;
    if (ok) {
        g_free(rt->applied_ac);
        rt->applied_ac = g_strdup(c->ac_path);
        rt->applied_metric = c->metric;
    }
    if (rt->reapply_again) {
        rt->reapply_again = FALSE;
        ensure_metric(self, c->i);
    }
    settle_switch(self, FALSE);
}

static void
reapply_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    ReapplyCtx *c = user_data;
    g_autoptr(GError) error = NULL;
    gboolean ok = nm_device_reapply_finish(NM_DEVICE(source), result, &error);

    /* Cancelled: the uplink object may be gone. Rebuilt: its uplink table changed. */
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
        c->generation != c->self->generation) {
        reapply_ctx_free(c);
        return;
    }
    if (ok)
        ca_msg("%s: default route metric %u applied on %s", c->self->fo_config->uplinks[c->i].name,
               c->metric, nm_device_get_ip_iface(c->device));
    else
        ca_warn("%s: could not apply route metric %u on %s: %s, will retry on the next change",
                c->self->fo_config->uplinks[c->i].name, c->metric,
                nm_device_get_ip_iface(c->device), error->message);
    reapply_done(c, ok);
    reapply_ctx_free(c);
}

static void
set_metric(NMSettingIPConfig *s, guint32 metric, gboolean *changed)
{
    if (!s)
        return;
    if (nm_setting_ip_config_get_route_metric(s) != (gint64) metric) {
        g_object_set(s, NM_SETTING_IP_CONFIG_ROUTE_METRIC, (gint64) metric, NULL);
        *changed = TRUE;
    }
}

static void
applied_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    ReapplyCtx *c = user_data;
    g_autoptr(GError) error = NULL;
    guint64 version = 0;
    g_autoptr(NMConnection) conn =
        nm_device_get_applied_connection_finish(NM_DEVICE(source), result, &version, &error);
    CaUplink *self = c->self;
    gboolean changed = FALSE;

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
        c->generation != self->generation) {
        reapply_ctx_free(c);
        return;
    }
    if (!conn) {
        ca_warn("%s: cannot read the applied connection of %s: %s",
                self->fo_config->uplinks[c->i].name, nm_device_get_iface(c->device),
                error->message);
        reapply_done(c, FALSE);
        reapply_ctx_free(c);
        return;
    }
    set_metric(nm_connection_get_setting_ip4_config(conn), c->metric, &changed);
    set_metric(nm_connection_get_setting_ip6_config(conn), c->metric, &changed);
    if (!changed) {
        reapply_done(c, TRUE);
        reapply_ctx_free(c);
        return;
    }
    /* Reapply changes the running connection only; the profile on disk stays as is. */
    nm_device_reapply_async(c->device, conn, version, 0, self->cancellable, reapply_ready, c);
}

static void
ensure_metric(CaUplink *self, guint i)
{
    Rt *rt = &self->rt[i];
    ReapplyCtx *c;
    guint32 metric;
    const char *path;

    if (!self->fo || ca_failover_get_active(self->fo) < 0 || !rt->ac || !rt->device ||
        nm_active_connection_get_state(rt->ac) != NM_ACTIVE_CONNECTION_STATE_ACTIVATED)
        return;
    metric = ca_failover_get_metric(self->fo, i);
    path = nm_object_get_path(NM_OBJECT(rt->ac));
    if (g_strcmp0(path, rt->applied_ac) == 0 && rt->applied_metric == metric)
        return;
    if (rt->reapplying) {
        rt->reapply_again = TRUE;
        return;
    }
    rt->reapplying = TRUE;
    c = g_new0(ReapplyCtx, 1);
    c->self = self;
    c->i = i;
    c->generation = self->generation;
    c->metric = metric;
    c->ac_path = g_strdup(path);
    c->device = g_object_ref(rt->device);
    nm_device_get_applied_connection_async(rt->device, 0, self->cancellable, applied_ready, c);
}

/* Are the route metrics final: every Reapply started for the switch has completed
 * (applied or failed)? Until then two default routes may share the best metric. */
static gboolean
active_route_in_place(CaUplink *self)
{
    for (guint i = 0; i < self->n; i++) {
        if (self->rt[i].reapplying)
            return FALSE;
    }
    return TRUE;
}

/* Does the kernel route traffic for the active uplink's first probe address out of that
 * uplink now? NetworkManager answers Reapply before its l3cfg commits the routes, so
 * this asks the kernel itself: connect() on a UDP socket does the route lookup a TCP
 * connect would do, getsockname() tells the chosen source address. TRUE when it cannot
 * tell (no IPv4 literal target, no address known). */
static gboolean
kernel_routes_via_active(CaUplink *self)
{
    int a = ca_failover_get_active(self->fo);
    const CaFoUplinkConfig *uc;
    NMIPConfig *ipc;
    GPtrArray *addrs;
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(9)}, src;
    socklen_t len = sizeof src;
    char got[INET_ADDRSTRLEN];
    gboolean have_target = FALSE, match = FALSE;
    int fd;

    if (a < 0 || !self->rt[a].device)
        return TRUE;
    uc = &self->fo_config->uplinks[a];
    for (guint k = 0; uc->probes[k] && !have_target; k++) {
        CaProbeSpec spec;
        if (ca_probe_spec_parse(uc->probes[k], &spec, NULL) && !spec.mqtt &&
            inet_pton(AF_INET, spec.host, &dst.sin_addr) == 1)
            have_target = TRUE;
    }
    ipc = nm_device_get_ip4_config(self->rt[a].device);
    addrs = ipc ? nm_ip_config_get_addresses(ipc) : NULL;
    if (!have_target || !addrs || addrs->len == 0)
        return TRUE;
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return TRUE;
    if (connect(fd, (struct sockaddr *) &dst, sizeof dst) == 0 &&
        getsockname(fd, (struct sockaddr *) &src, &len) == 0 &&
        inet_ntop(AF_INET, &src.sin_addr, got, sizeof got)) {
        for (guint k = 0; k < addrs->len && !match; k++)
            match = g_strcmp0(nm_ip_address_get_address(addrs->pdata[k]), got) == 0;
    }
    close(fd);
    return match;
}

static gboolean
switch_timer_cb(gpointer user_data)
{
    CaUplink *self = user_data;

    ca_clear_source(&self->switch_timer);
    ca_warn("the kernel's routes did not follow the switch within 2 s; telling MQTT anyway");
    settle_switch(self, TRUE);
    return G_SOURCE_REMOVE;
}

static gboolean
switch_poll_cb(gpointer user_data)
{
    CaUplink *self = user_data;

    ca_clear_source(&self->switch_poll);
    settle_switch(self, FALSE);
    return G_SOURCE_REMOVE;
}

/* Emit "switched" once the kernel routes through the new uplink, so that MQTT's
 * reconnect does not go out over the old (dead) path; force: emit now regardless. */
static void
settle_switch(CaUplink *self, gboolean force)
{
    if (!self->switch_pending)
        return;
    if (!force && (!active_route_in_place(self) || !kernel_routes_via_active(self))) {
        if (active_route_in_place(self) && !self->switch_poll) {
            self->switch_poll = g_timeout_source_new(20);
            g_source_set_callback(self->switch_poll, switch_poll_cb, self, NULL);
            g_source_attach(self->switch_poll, NULL);
        }
        return;
    }
    self->switch_pending = FALSE;
    ca_clear_source(&self->switch_timer);
    ca_clear_source(&self->switch_poll);
    g_signal_emit(self, signals[SIG_SWITCHED], 0, self->switch_from, self->switch_to,
                  self->switch_kind);
}

static void
queue_switch(CaUplink *self, const char *from, const char *to, const char *kind)
{
    g_free(self->switch_from);
    g_free(self->switch_to);
    g_free(self->switch_kind);
    self->switch_from = g_strdup(from);
    self->switch_to = g_strdup(to);
    self->switch_kind = g_strdup(kind);
    self->switch_pending = TRUE;
    ca_clear_source(&self->switch_timer);
    self->switch_timer = g_timeout_source_new(2000);
    g_source_set_callback(self->switch_timer, switch_timer_cb, self, NULL);
    g_source_attach(self->switch_timer, NULL);
}

/*****************************************************************************/
/* Activation */

typedef struct {
    CaUplink *self;
    guint i;
    guint generation;
    char *name;
    gboolean watchdog; /* report a watchdog-result event */
} ActCtx;

static void step_result(CaUplink *self, const char *uplink, CaWdStep step, const char *error);

static void
act_ctx_free(ActCtx *c)
{
    g_free(c->name);
    g_free(c);
}

static void
activate_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    ActCtx *c = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(NMActiveConnection) ac =
        nm_client_activate_connection_finish(NM_CLIENT(source), result, &error);
    CaUplink *self = c->self;

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        act_ctx_free(c);
        return;
    }
    if (c->generation == self->generation)
        self->rt[c->i].activating = FALSE;
    if (error)
        g_dbus_error_strip_remote_error(error);
    if (c->watchdog)
        step_result(self, c->name, CA_WD_STEP_REACTIVATE, ac ? NULL : error->message);
    else if (!ac)
        ca_warn("%s: activation failed: %s", c->name, error->message);
    act_ctx_free(c);
    schedule_refresh(self);
}

static gboolean
activate(CaUplink *self, guint i, const char *why, gboolean watchdog, char **out_error)
{
    const CaFoUplinkConfig *uc = &self->fo_config->uplinks[i];
    Rt *rt = &self->rt[i];
    ActCtx *c;
    NMDevice *dev = NULL;

    if (!self->client || !nm_client_get_nm_running(self->client)) {
        *out_error = g_strdup("NetworkManager is not running");
        return FALSE;
    }
    if (!rt->conn) {
        *out_error = g_strdup_printf("NetworkManager has no connection \"%s\"", uc->connection);
        return FALSE;
    }
    if (rt->activating) {
        *out_error = g_strdup("an activation is already under way");
        return FALSE;
    }
    if (rt->device && nm_device_connection_compatible(rt->device, NM_CONNECTION(rt->conn), NULL))
        dev = rt->device;
    ca_msg("%s: activating connection \"%s\"%s%s (%s)", uc->name, uc->connection, dev ? " on " : "",
           dev ? nm_device_get_iface(dev) : "", why);
    rt->activating = TRUE;
    c = g_new0(ActCtx, 1);
    c->self = self;
    c->i = i;
    c->generation = self->generation;
    c->name = g_strdup(uc->name);
    c->watchdog = watchdog;
    nm_client_activate_connection_async(self->client, NM_CONNECTION(rt->conn), dev, NULL,
                                        self->cancellable, activate_ready, c);
    return TRUE;
}

static void
deactivate_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;

    if (!nm_client_deactivate_connection_finish(NM_CLIENT(source), result, &error) &&
        !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        ca_warn("deactivation failed: %s", error->message);
}

static void
deactivate(CaUplink *self, guint i, const char *why)
{
    Rt *rt = &self->rt[i];

    if (!rt->ac || !self->client)
        return;
    ca_msg("%s: deactivating connection \"%s\" (%s)", self->fo_config->uplinks[i].name,
           self->fo_config->uplinks[i].connection, why);
    nm_client_deactivate_connection_async(self->client, rt->ac, self->cancellable, deactivate_ready,
                                          self);
}

/*****************************************************************************/
/* The cellular profile */

static char *
read_first_line(const char *path, GError **error)
{
    g_autofree char *text = NULL;
    char *nl;

    if (!g_file_get_contents(path, &text, NULL, error))
        return NULL;
    nl = strpbrk(text, "\r\n");
    if (nl)
        *nl = '\0';
    return g_steal_pointer(&text);
}

static void
add_profile_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(NMRemoteConnection) conn =
        nm_client_add_connection2_finish(NM_CLIENT(source), result, NULL, &error);
    CaUplink *self;

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    self = user_data;
    self->creating_profile = FALSE;
    if (!conn)
        ca_warn("could not create the cellular connection: %s", error->message);
    else
        ca_msg("created the cellular connection \"%s\" (%s)",
               nm_connection_get_id(NM_CONNECTION(conn)),
               nm_connection_get_uuid(NM_CONNECTION(conn)));
    schedule_refresh(self);
}

/* Create [cellular] connection (type gsm) when NetworkManager has none by that name. */
static void
ensure_cellular_profile(CaUplink *self)
{
    int ci = ca_fo_config_find(self->fo_config, "cellular");
    const CaFoUplinkConfig *uc;
    g_autoptr(NMConnection) c = NULL;
    g_autofree char *uuid = NULL, *password = NULL;
    const char *pwfile, *user;
    NMSetting *s;

    if (ci < 0 || self->creating_profile || !self->client ||
        !nm_client_get_nm_running(self->client))
        return;
    uc = &self->fo_config->uplinks[ci];
    if (uc->activate == CA_ACTIVATE_NEVER || find_connection(self, uc->connection))
        return;
    pwfile = ca_config_get_string(self->config, "cellular", "password-file");
    if (*pwfile) {
        g_autoptr(GError) error = NULL;
        password = read_first_line(pwfile, &error);
        if (!password) {
            ca_warn("cellular password-file: %s; creating the connection without a password",
                    error->message);
        }
    }
    user = ca_config_get_string(self->config, "cellular", "username");
    uuid = nm_utils_uuid_generate();
    c = nm_simple_connection_new();
    s = nm_setting_connection_new();
    g_object_set(s, NM_SETTING_CONNECTION_ID, uc->connection, NM_SETTING_CONNECTION_UUID, uuid,
                 NM_SETTING_CONNECTION_TYPE, NM_SETTING_GSM_SETTING_NAME,
                 NM_SETTING_CONNECTION_AUTOCONNECT, uc->activate == CA_ACTIVATE_ALWAYS, NULL);
    nm_connection_add_setting(c, s);
    s = nm_setting_gsm_new();
    g_object_set(s, NM_SETTING_GSM_APN, ca_config_get_string(self->config, "cellular", "apn"),
                 NULL);
    if (*user)
        g_object_set(s, NM_SETTING_GSM_USERNAME, user, NULL);
    if (password)
        g_object_set(s, NM_SETTING_GSM_PASSWORD, password, NULL);
    nm_connection_add_setting(c, s);
    /* may-fail=false: otherwise NetworkManager 1.42 reports the connection activated
     * before DHCP answers and stays so without an address (docs/lab.md). */
    s = nm_setting_ip4_config_new();
    g_object_set(s, NM_SETTING_IP_CONFIG_METHOD, NM_SETTING_IP4_CONFIG_METHOD_AUTO,
                 NM_SETTING_IP_CONFIG_MAY_FAIL, FALSE, NULL);
    nm_connection_add_setting(c, s);
    s = nm_setting_ip6_config_new();
    g_object_set(s, NM_SETTING_IP_CONFIG_METHOD, NM_SETTING_IP6_CONFIG_METHOD_AUTO,
                 NM_SETTING_IP_CONFIG_MAY_FAIL, TRUE, NULL);
    nm_connection_add_setting(c, s);
    ca_msg("creating the cellular connection \"%s\" (apn \"%s\")", uc->connection,
           ca_config_get_string(self->config, "cellular", "apn"));
    self->creating_profile = TRUE;
    nm_client_add_connection2(self->client, nm_connection_to_dbus(c, NM_CONNECTION_SERIALIZE_ALL),
                              NM_SETTINGS_ADD_CONNECTION2_FLAG_TO_DISK, NULL, TRUE,
                              self->cancellable, add_profile_ready, self);
}

/*****************************************************************************/
/* Watchdog steps */

typedef struct {
    CaUplink *self;
    char *uplink;
    CaWdStep step;
    char *modem_path; /* modem reset: the ModemManager object */
    int stage;        /* modem reset: 0 Reset, 1 Enable(false), 2 Enable(true) */
    GSubprocess *proc;
    GSource *timeout; /* owned */
    GCancellable *cancellable;
} StepCtx;

static void
step_ctx_free(StepCtx *c)
{
    ca_clear_source(&c->timeout);
    g_clear_object(&c->proc);
    g_clear_object(&c->cancellable);
    g_free(c->uplink);
    g_free(c->modem_path);
    g_free(c);
}

static void
step_result(CaUplink *self, const char *uplink, CaWdStep step, const char *error)
{
    cJSON *f = cJSON_CreateObject();

    if (error)
        ca_warn("%s: watchdog step %s failed: %s", uplink, ca_wd_step_to_string(step), error);
    else
        ca_msg("%s: watchdog step %s done", uplink, ca_wd_step_to_string(step));
    cJSON_AddStringToObject(f, "uplink", uplink);
    cJSON_AddStringToObject(f, "step", ca_wd_step_to_string(step));
    cJSON_AddBoolToObject(f, "ok", error == NULL);
    if (error)
        cJSON_AddStringToObject(f, "error", error);
    emit_event(self, "watchdog-result", f);
}

static gboolean
command_timeout_cb(gpointer user_data)
{
    StepCtx *c = user_data;

    ca_clear_source(&c->timeout);
    g_subprocess_force_exit(c->proc);
    return G_SOURCE_REMOVE;
}

static void
command_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    StepCtx *c = user_data;
    g_autoptr(GError) error = NULL;
    gboolean timed_out = c->timeout == NULL;

    if (!g_subprocess_wait_check_finish(G_SUBPROCESS(source), result, &error) &&
        g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        step_ctx_free(c);
        return;
    }
    ca_clear_source(&c->timeout);
    if (timed_out)
        step_result(c->self, c->uplink, c->step, "command timed out and was killed");
    else
        step_result(c->self, c->uplink, c->step, error ? error->message : NULL);
    step_ctx_free(c);
}

static void
run_command(CaUplink *self, const char *uplink, CaWdStep step, const char *cmdline)
{
    g_autoptr(GError) error = NULL;
    g_auto(GStrv) argv = NULL;
    StepCtx *c;

    if (!g_shell_parse_argv(cmdline, NULL, &argv, &error)) {
        step_result(self, uplink, step, error->message);
        return;
    }
    c = g_new0(StepCtx, 1);
    c->self = self;
    c->uplink = g_strdup(uplink);
    c->step = step;
    c->proc =
        g_subprocess_newv((const char *const *) argv, G_SUBPROCESS_FLAGS_STDIN_INHERIT, &error);
    if (!c->proc) {
        step_result(self, uplink, step, error->message);
        step_ctx_free(c);
        return;
    }
    c->timeout = g_timeout_source_new_seconds(
        (guint) ca_config_get_int(self->config, "watchdog", "command-timeout"));
    g_source_set_callback(c->timeout, command_timeout_cb, c, NULL);
    g_source_attach(c->timeout, NULL);
    g_subprocess_wait_check_async(c->proc, self->cancellable, command_ready, c);
}

static void
dbus_step_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    StepCtx *c = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) ret =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

    if (!ret && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        step_ctx_free(c);
        return;
    }
    if (error)
        g_dbus_error_strip_remote_error(error);
    step_result(c->self, c->uplink, c->step, ret ? NULL : error->message);
    step_ctx_free(c);
}

#define MM_SERVICE     "org.freedesktop.ModemManager1"
#define MM_MODEM_IFACE "org.freedesktop.ModemManager1.Modem"

static void
modem_reset_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    StepCtx *c = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) ret =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
    g_autofree char *remote = NULL;

    if (!ret && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        step_ctx_free(c);
        return;
    }
    if (error) {
        remote = g_dbus_error_get_remote_error(error);
        g_dbus_error_strip_remote_error(error);
    }
    if (c->stage == 0 && !ret &&
        g_strcmp0(remote, "org.freedesktop.ModemManager1.Error.Core.Unsupported") == 0) {
        /* The plugin cannot reset this modem: restart its radio stack instead
         * (Disable then Enable: detach, power the radio down and up, attach again). */
        ca_msg("%s: the modem cannot be reset (%s); disabling and enabling it instead", c->uplink,
               error->message);
        c->stage = 1;
        g_dbus_connection_call(G_DBUS_CONNECTION(source), MM_SERVICE, c->modem_path, MM_MODEM_IFACE,
                               "Enable", g_variant_new("(b)", FALSE), NULL, G_DBUS_CALL_FLAGS_NONE,
                               60000, c->self->cancellable, modem_reset_ready, c);
        return;
    }
    if (c->stage == 1 && ret) {
        c->stage = 2;
        g_dbus_connection_call(G_DBUS_CONNECTION(source), MM_SERVICE, c->modem_path, MM_MODEM_IFACE,
                               "Enable", g_variant_new("(b)", TRUE), NULL, G_DBUS_CALL_FLAGS_NONE,
                               60000, c->self->cancellable, modem_reset_ready, c);
        return;
    }
    step_result(c->self, c->uplink, c->step, ret ? NULL : error->message);
    step_ctx_free(c);
}

/* Reset the modem behind NetworkManager's device through ModemManager (Modem.Reset;
 * Disable + Enable where the plugin cannot reset). */
static void
modem_reset(CaUplink *self, const char *uplink, const char *modem_path)
{
    GDBusConnection *bus = self->client ? nm_client_get_dbus_connection(self->client) : NULL;
    StepCtx *c;

    if (!bus) {
        step_result(self, uplink, CA_WD_STEP_MODEM_RESET, "no system bus");
        return;
    }
    c = g_new0(StepCtx, 1);
    c->self = self;
    c->uplink = g_strdup(uplink);
    c->step = CA_WD_STEP_MODEM_RESET;
    c->modem_path = g_strdup(modem_path);
    g_dbus_connection_call(bus, MM_SERVICE, modem_path, MM_MODEM_IFACE, "Reset", NULL, NULL,
                           G_DBUS_CALL_FLAGS_NONE, 60000, self->cancellable, modem_reset_ready, c);
}

static void
dbus_step(CaUplink *self, const char *uplink, CaWdStep step, const char *bus_name, const char *path,
          const char *iface, const char *method, GVariant *args)
{
    GDBusConnection *bus = self->client ? nm_client_get_dbus_connection(self->client) : NULL;
    StepCtx *c;

    if (!bus) {
        if (args)
            g_variant_unref(g_variant_ref_sink(args));
        step_result(self, uplink, step, "no system bus");
        return;
    }
    c = g_new0(StepCtx, 1);
    c->self = self;
    c->uplink = g_strdup(uplink);
    c->step = step;
    g_dbus_connection_call(bus, bus_name, path, iface, method, args, NULL, G_DBUS_CALL_FLAGS_NONE,
                           60000, self->cancellable, dbus_step_ready, c);
}

static void
run_step(CaUplink *self, guint i, CaWdStep step, const char *reason)
{
    const char *name = self->fo_config->uplinks[i].name;
    Rt *rt = &self->rt[i];
    cJSON *f = cJSON_CreateObject();
    g_autofree char *error = NULL;
    gboolean handled = FALSE;

    ca_msg("%s: watchdog step %s (%s)", name, ca_wd_step_to_string(step), reason);
    cJSON_AddStringToObject(f, "uplink", name);
    cJSON_AddStringToObject(f, "step", ca_wd_step_to_string(step));
    cJSON_AddStringToObject(f, "reason", reason);
    if (step != CA_WD_STEP_REACTIVATE)
        cJSON_AddNumberToObject(
            f, "budget_left",
            ca_watchdog_remaining(ca_failover_get_watchdog(self->fo), step, now_ms()));
    cJSON_AddItemToObject(f, "evidence", ca_failover_evidence_json(self->fo, i, now_ms()));
    emit_event(self, "watchdog", f);

    switch (step) {
    case CA_WD_STEP_REACTIVATE:
        if (!activate(self, i, "watchdog", TRUE, &error))
            step_result(self, name, step, error);
        break;
    case CA_WD_STEP_MODEM_RESET:
        g_signal_emit(self, signals[SIG_MODEM_RESET], 0, reason, &handled);
        if (handled) {
            g_free(self->reset_uplink);
            self->reset_uplink = g_strdup(name);
            break;
        }
        if (!rt->device || !NM_IS_DEVICE_MODEM(rt->device) || !nm_device_get_udi(rt->device) ||
            !g_str_has_prefix(nm_device_get_udi(rt->device), "/org/freedesktop/ModemManager1/")) {
            step_result(self, name, step, "no modem known to NetworkManager");
            break;
        }
        modem_reset(self, name, nm_device_get_udi(rt->device));
        break;
    case CA_WD_STEP_POWER_CYCLE:
        run_command(self, name, step,
                    ca_config_get_string(self->config, "watchdog", "power-cycle-command"));
        break;
    case CA_WD_STEP_REBOOT: {
        const char *cmd = ca_config_get_string(self->config, "watchdog", "reboot-command");
        ca_warn("rebooting the device: no uplink works (%s)", reason);
        if (*cmd)
            run_command(self, name, step, cmd);
        else
            dbus_step(self, name, step, "org.freedesktop.login1", "/org/freedesktop/login1",
                      "org.freedesktop.login1.Manager", "Reboot", g_variant_new("(b)", FALSE));
        break;
    }
    case CA_WD_STEP_NONE:
        break;
    }
}

static void
save_watchdog(CaUplink *self)
{
    g_autofree char *text = ca_watchdog_save(ca_failover_get_watchdog(self->fo), now_ms());
    g_autoptr(GError) error = NULL;

    /* Written before the step runs: a reboot must find its own record. */
    if (!g_file_set_contents_full(self->state_path, text, -1,
                                  G_FILE_SET_CONTENTS_CONSISTENT | G_FILE_SET_CONTENTS_DURABLE,
                                  0600, &error))
        ca_warn("cannot save the watchdog history: %s", error->message);
}

static void
load_watchdog(CaUplink *self)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;

    if (!g_file_get_contents(self->state_path, &text, NULL, &error)) {
        if (!g_error_matches(error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
            ca_warn("cannot read the watchdog history: %s", error->message);
        return;
    }
    if (!ca_watchdog_load(ca_failover_get_watchdog(self->fo), text, &error))
        ca_warn("%s: %s; starting with empty budgets", self->state_path, error->message);
}

/*****************************************************************************/
/* Probes */

typedef struct {
    CaUplink *self;
    guint i;
    guint generation;
    CaProbeMode mode;
} ProbeCtx;

static void
probe_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    ProbeCtx *c = user_data;
    g_autoptr(GError) error = NULL;
    CaProbeRound round;
    CaUplink *self = c->self;
    Rt *rt;

    if (!ca_prober_run_finish(CA_PROBER(source), result, &round, &error)) {
        g_free(c);
        return; /* cancelled: shutting down */
    }
    if (c->generation != self->generation) {
        g_free(c);
        return;
    }
    rt = &self->rt[c->i];
    rt->probing = FALSE;
    /* The lead becomes the first probe that answered, in list order. */
    for (guint k = 0; k < round.n_results; k++) {
        if (round.results[k].sent && round.results[k].ok) {
            if (c->mode == CA_PROBE_MODE_ALL || !round.results[rt->lead].ok)
                rt->lead = k;
            break;
        }
    }
    if (++rt->lead_rounds >= LEAD_RESET_ROUNDS) {
        rt->lead_rounds = 0;
        rt->lead = 0;
    }
    ca_debug("%s: probe round %s", self->fo_config->uplinks[c->i].name, round.ok ? "ok" : "failed");
    ca_failover_probe_done(self->fo, c->i, &round, now_ms());
    g_free(c);
    run_policy(self);
}

static void
start_probe_round(CaUplink *self, guint i, CaProbeMode mode)
{
    const CaFoUplinkConfig *uc = &self->fo_config->uplinks[i];
    const CaUplinkFacts *f = ca_failover_get_facts(self->fo, i);
    CaProbeRequest req = {0};
    ProbeCtx *c = g_new0(ProbeCtx, 1);

    c->self = self;
    c->i = i;
    c->generation = self->generation;
    c->mode = mode;
    req.iface = f->ip_iface[0] ? f->ip_iface : f->device;
    req.specs = (const char *const *) uc->probes;
    req.lead = self->rt[i].lead;
    req.mode = mode;
    req.timeout_ms = (guint) self->fo_config->timeout_ms;
    req.mqtt_host = ca_config_get_string(self->config, "mqtt", "host");
    req.mqtt_port = (guint16) ca_config_get_int(self->config, "mqtt", "port");
    req.dns_name = self->fo_config->dns_name;
    self->rt[i].probing = TRUE;
    ca_prober_run_async(self->prober, &req, self->cancellable, probe_ready, c);
}

/*****************************************************************************/
/* The policy loop */

static cJSON *
uplink_fields(CaUplink *self, guint i)
{
    cJSON *f = cJSON_CreateObject();

    cJSON_AddStringToObject(f, "uplink", self->fo_config->uplinks[i].name);
    return f;
}

static void
handle_output(CaUplink *self, const CaFoOut *o, gboolean *routes, gboolean *status)
{
    const char *name = o->uplink >= 0 ? self->fo_config->uplinks[o->uplink].name : NULL;
    g_autofree char *error = NULL;
    cJSON *f;

    switch (o->type) {
    case CA_FO_OUT_PROBE:
        start_probe_round(self, (guint) o->uplink, o->mode);
        break;
    case CA_FO_OUT_ROUTES:
        *routes = TRUE;
        break;
    case CA_FO_OUT_ACTIVATE:
        if (!activate(self, (guint) o->uplink, o->reason, FALSE, &error))
            ca_debug("%s: not activated: %s", name, error);
        break;
    case CA_FO_OUT_DEACTIVATE:
        deactivate(self, (guint) o->uplink, o->reason);
        break;
    case CA_FO_OUT_WATCHDOG:
        save_watchdog(self);
        run_step(self, (guint) o->uplink, o->step, o->reason);
        break;
    case CA_FO_OUT_STATE:
        *status = TRUE;
        ca_msg("%s: %s -> %s (%s)", name, ca_uplink_state_to_string(o->old_state),
               ca_uplink_state_to_string(o->new_state), o->reason);
        if (o->new_state == CA_UPLINK_STATE_DOWN && o->old_state != CA_UPLINK_STATE_STANDBY) {
            f = uplink_fields(self, (guint) o->uplink);
            cJSON_AddStringToObject(f, "reason", o->reason);
            cJSON_AddItemToObject(f, "evidence",
                                  ca_failover_evidence_json(self->fo, (guint) o->uplink, now_ms()));
            emit_event(self, "uplink-down", f);
        } else if (o->new_state == CA_UPLINK_STATE_UP && o->old_state != CA_UPLINK_STATE_SUSPECT) {
            f = uplink_fields(self, (guint) o->uplink);
            cJSON_AddStringToObject(f, "reason", o->reason);
            emit_event(self, "uplink-up", f);
        }
        break;
    case CA_FO_OUT_SWITCH: {
        const char *from = o->from >= 0 ? self->fo_config->uplinks[o->from].name : NULL;
        const char *kind = ca_fo_switch_kind_to_string(o->kind);
        const CaUplinkFacts *facts = ca_failover_get_facts(self->fo, (guint) o->uplink);

        *status = TRUE;
        *routes = TRUE;
        ca_msg("%s: %s -> %s (%s)", kind, from ? from : "none", name, o->reason);
        f = cJSON_CreateObject();
        if (from)
            cJSON_AddStringToObject(f, "from", from);
        else
            cJSON_AddNullToObject(f, "from");
        cJSON_AddStringToObject(f, "to", name);
        cJSON_AddStringToObject(f, "reason", o->reason);
        cJSON_AddStringToObject(f, "interface",
                                facts->ip_iface[0] ? facts->ip_iface : facts->device);
        if (o->from >= 0)
            cJSON_AddItemToObject(f, "evidence",
                                  ca_failover_evidence_json(self->fo, (guint) o->from, now_ms()));
        emit_event(self,
                   o->kind == CA_FO_SWITCH_INITIAL  ? "uplink-selected"
                   : o->kind == CA_FO_SWITCH_FORCED ? "uplink-forced"
                                                    : kind,
                   f);
        queue_switch(self, from, name, kind);
        break;
    }
    }
}

static gboolean
timer_cb(gpointer user_data)
{
    CaUplink *self = user_data;

    ca_clear_source(&self->timer);
    run_policy(self);
    return G_SOURCE_REMOVE;
}

/* Decide now, carry the outputs out, re-arm the timer. */
static void
run_policy(CaUplink *self)
{
    gboolean routes = FALSE, status = FALSE;
    gint64 deadline, now;
    CaFoOut o;

    if (!self->fo || g_cancellable_is_cancelled(self->cancellable))
        return;
    ca_failover_run(self->fo, now_ms(), wall_s());
    while (ca_failover_pop(self->fo, &o))
        handle_output(self, &o, &routes, &status);
    /* Metrics: the new active uplink first, then the others. */
    if (routes) {
        int a = ca_failover_get_active(self->fo);
        if (a >= 0)
            ensure_metric(self, (guint) a);
        for (guint i = 0; i < self->n; i++) {
            if ((int) i != a)
                ensure_metric(self, i);
        }
    }
    settle_switch(self, FALSE);
    update_status(self);
    maybe_publish_link(self, FALSE);

    ca_clear_source(&self->timer);
    deadline = ca_failover_next_deadline(self->fo);
    if (deadline != G_MAXINT64) {
        now = now_ms();
        self->timer = g_timeout_source_new((guint) CLAMP(deadline - now, 0, G_MAXUINT32 / 2));
        g_source_set_callback(self->timer, timer_cb, self, NULL);
        g_source_attach(self->timer, NULL);
    }
}

static gboolean
refresh_cb(gpointer user_data)
{
    CaUplink *self = user_data;
    gint64 now = now_ms();

    ca_clear_source(&self->refresh);
    if (!self->fo)
        return G_SOURCE_REMOVE;
    if (!self->client) {
        /* Nothing known yet (NMClient not ready, or no bus): judge nothing. */
        update_status(self);
        return G_SOURCE_REMOVE;
    }
    ensure_cellular_profile(self);
    ca_failover_set_manager_running(self->fo,
                                    self->client && nm_client_get_nm_running(self->client));
    for (guint i = 0; i < self->n; i++) {
        CaUplinkFacts f;
        collect_facts(self, i, &f);
        ca_failover_set_facts(self->fo, i, &f, now);
    }
    run_policy(self);
    /* An activation may have reset the applied metric: put ours back. */
    for (guint i = 0; i < self->n; i++)
        ensure_metric(self, i);
    return G_SOURCE_REMOVE;
}

static void
schedule_refresh(CaUplink *self)
{
    if (self->refresh || g_cancellable_is_cancelled(self->cancellable))
        return;
    self->refresh = g_idle_source_new();
    g_source_set_callback(self->refresh, refresh_cb, self, NULL);
    g_source_attach(self->refresh, NULL);
}

/*****************************************************************************/
/* NMClient */

static void
any_notify_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
    schedule_refresh(CA_UPLINK(user_data));
}

static void
watch_object(CaUplink *self, gpointer object)
{
    /* Any property (state, carrier, connectivity, ip-interface, devices, ...) may matter;
     * refreshes are coalesced into one idle, so this stays cheap. */
    g_signal_connect_object(object, "notify", G_CALLBACK(any_notify_cb), self, 0);
}

static void
object_added_cb(NMClient *client, gpointer object, gpointer user_data)
{
    CaUplink *self = user_data;

    watch_object(self, object);
    schedule_refresh(self);
}

static void
object_removed_cb(NMClient *client, gpointer object, gpointer user_data)
{
    schedule_refresh(CA_UPLINK(user_data));
}

static void
nm_running_cb(NMClient *client, GParamSpec *pspec, gpointer user_data)
{
    CaUplink *self = user_data;

    if (nm_client_get_nm_running(client))
        ca_msg("NetworkManager is running");
    else
        ca_warn("NetworkManager is not running; waiting for it");
    schedule_refresh(self);
}

static void
busy_watcher_gone(gpointer data, GObject *where_the_object_was)
{
    CaUplink *self = data;
    GTask *task = g_steal_pointer(&self->shutdown_task);

    self->busy_watcher = NULL;
    if (task) {
        g_task_return_boolean(task, TRUE);
        g_object_unref(task);
    }
}

static void
drop_client(CaUplink *self)
{
    const GPtrArray *arr;

    if (!self->client)
        return;
    g_signal_handlers_disconnect_by_data(self->client, self);
    arr = nm_client_get_devices(self->client);
    for (guint k = 0; arr && k < arr->len; k++)
        g_signal_handlers_disconnect_by_data(arr->pdata[k], self);
    arr = nm_client_get_active_connections(self->client);
    for (guint k = 0; arr && k < arr->len; k++)
        g_signal_handlers_disconnect_by_data(arr->pdata[k], self);
    for (guint i = 0; i < self->n; i++)
        rt_clear(&self->rt[i]);
    g_clear_object(&self->client);
}

static void
drop_bus(CaUplink *self)
{
    drop_client(self);
    if (self->bus)
        g_signal_handlers_disconnect_by_data(self->bus, self);
    g_clear_object(&self->bus);
}

static gboolean
retry_cb(gpointer user_data)
{
    CaUplink *self = user_data;

    ca_clear_source(&self->retry);
    client_new(self);
    return G_SOURCE_REMOVE;
}

static void
schedule_retry(CaUplink *self, const char *why)
{
    guint delay = ca_backoff_next(&self->retry_backoff);

    ca_warn("cannot reach NetworkManager's bus: %s; retrying in %u s", why, (delay + 999) / 1000);
    ca_clear_source(&self->retry);
    self->retry = g_timeout_source_new(delay);
    g_source_set_callback(self->retry, retry_cb, self, NULL);
    g_source_attach(self->retry, NULL);
    update_status(self);
}

static void
bus_closed_cb(GDBusConnection *bus, gboolean remote_peer_vanished, GError *error,
              gpointer user_data)
{
    CaUplink *self = user_data;

    drop_bus(self);
    /* Nothing is known about NetworkManager until we are back: the watchdog holds. */
    if (self->fo)
        ca_failover_set_manager_running(self->fo, FALSE);
    schedule_refresh(self);
    schedule_retry(self, "the system bus closed");
}

static void
client_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;
    NMClient *client = nm_client_new_finish(result, &error);
    CaUplink *self;
    const GPtrArray *arr;

    if (!client && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    self = user_data;
    if (!client) {
        drop_bus(self);
        schedule_retry(self, error->message);
        return;
    }
    ca_backoff_reset(&self->retry_backoff);
    self->client = client;
    g_signal_connect_object(client, "notify::nm-running", G_CALLBACK(nm_running_cb), self, 0);
    g_signal_connect_object(client, "device-added", G_CALLBACK(object_added_cb), self, 0);
    g_signal_connect_object(client, "device-removed", G_CALLBACK(object_removed_cb), self, 0);
    g_signal_connect_object(client, "active-connection-added", G_CALLBACK(object_added_cb), self,
                            0);
    g_signal_connect_object(client, "active-connection-removed", G_CALLBACK(object_removed_cb),
                            self, 0);
    g_signal_connect_object(client, "connection-added", G_CALLBACK(object_removed_cb), self, 0);
    g_signal_connect_object(client, "connection-removed", G_CALLBACK(object_removed_cb), self, 0);
    arr = nm_client_get_devices(client);
    for (guint k = 0; arr && k < arr->len; k++)
        watch_object(self, arr->pdata[k]);
    arr = nm_client_get_active_connections(client);
    for (guint k = 0; arr && k < arr->len; k++)
        watch_object(self, arr->pdata[k]);
    ca_msg("connected to NetworkManager%s",
           nm_client_get_nm_running(client) ? "" : " (not running yet)");
    schedule_refresh(self);
}

static void
bus_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;
    GDBusConnection *bus = ca_bus_new_finish(result, &error);
    CaUplink *self;

    if (!bus && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    self = user_data;
    if (!bus) {
        schedule_retry(self, error->message);
        return;
    }
    self->bus = bus;
    g_signal_connect(bus, "closed", G_CALLBACK(bus_closed_cb), self);
    g_async_initable_new_async(NM_TYPE_CLIENT, G_PRIORITY_DEFAULT, self->cancellable, client_ready,
                               self, NM_CLIENT_DBUS_CONNECTION, bus, NULL);
}

static void
client_new(CaUplink *self)
{
    ca_bus_new_async(self->cancellable, bus_ready, self);
}

/*****************************************************************************/
/* Policy set-up */

static void
log_plan(CaUplink *self)
{
    for (guint i = 0; i < self->n; i++) {
        const CaFoUplinkConfig *uc = &self->fo_config->uplinks[i];
        g_autofree char *probes = g_strjoinv(", ", uc->probes);

        if (uc->activate == CA_ACTIVATE_NEVER)
            continue;
        ca_info("uplink %s: connection \"%s\", priority %d, %s, probes %s (idle ~%.1f MB/month)",
                uc->name, uc->connection, uc->priority,
                uc->activate == CA_ACTIVATE_ALWAYS ? "always up" : "on demand", probes,
                (double) ca_fo_idle_bytes_per_month(self->fo_config, i) / 1e6);
    }
}

static void
build_policy(CaUplink *self)
{
    g_autofree char *saved = NULL;

    if (self->fo)
        saved = ca_watchdog_save(ca_failover_get_watchdog(self->fo), now_ms());
    for (guint i = 0; i < self->n; i++)
        rt_clear(&self->rt[i]);
    g_clear_pointer(&self->rt, g_free);
    g_clear_pointer(&self->fo, ca_failover_free);
    g_clear_pointer(&self->fo_config, ca_fo_config_free);
    self->generation++;

    self->fo_config = ca_fo_config_new(self->config);
    self->n = self->fo_config->n_uplinks;
    self->rt = g_new0(Rt, self->n);
    self->fo = ca_failover_new(self->fo_config, self->boot_id, now_ms());
    g_free(self->state_path);
    self->state_path = g_build_filename(ca_config_get_string(self->config, "agent", "state-dir"),
                                        STATE_FILE, NULL);
    if (saved)
        ca_watchdog_load(ca_failover_get_watchdog(self->fo), saved, NULL);
    else
        load_watchdog(self);
    ca_clear_source(&self->report_timer);
    if (self->fo_config->report_interval_ms > 0) {
        self->report_timer =
            g_timeout_source_new((guint) MIN(self->fo_config->report_interval_ms, G_MAXUINT));
        g_source_set_callback(self->report_timer, report_timer_cb, self, NULL);
        g_source_attach(self->report_timer, NULL);
    }
    log_plan(self);
}

/*****************************************************************************/
/* GObject */

static void
ca_uplink_init(CaUplink *self)
{
    self->cancellable = g_cancellable_new();
    self->prober = ca_prober_new();
    self->boot_id = read_boot_id();
    ca_backoff_init(&self->retry_backoff, 1000, 60000, 20, NULL);
}

/* Cancel every call in flight and every timer (dispose and shutdown). */
static void
stop_everything(CaUplink *self)
{
    g_cancellable_cancel(self->cancellable);
    ca_clear_source(&self->timer);
    ca_clear_source(&self->refresh);
    ca_clear_source(&self->link_timer);
    ca_clear_source(&self->report_timer);
    ca_clear_source(&self->retry);
    ca_clear_source(&self->switch_timer);
    ca_clear_source(&self->switch_poll);
}

static void
ca_uplink_dispose(GObject *object)
{
    CaUplink *self = CA_UPLINK(object);

    stop_everything(self);
    drop_bus(self);
    if (self->busy_watcher) {
        g_object_weak_unref(self->busy_watcher, busy_watcher_gone, self);
        self->busy_watcher = NULL;
    }
    g_clear_object(&self->prober);
    G_OBJECT_CLASS(ca_uplink_parent_class)->dispose(object);
}

static void
ca_uplink_finalize(GObject *object)
{
    CaUplink *self = CA_UPLINK(object);

    g_clear_pointer(&self->rt, g_free);
    g_clear_pointer(&self->fo, ca_failover_free);
    g_clear_pointer(&self->fo_config, ca_fo_config_free);
    g_clear_pointer(&self->config, ca_config_unref);
    g_clear_object(&self->cancellable);
    g_free(self->boot_id);
    g_free(self->state_path);
    g_free(self->modem_state);
    g_free(self->modem_registration);
    g_free(self->link_signature);
    g_free(self->status);
    g_free(self->switch_from);
    g_free(self->switch_to);
    g_free(self->switch_kind);
    g_free(self->reset_uplink);
    if (self->shutdown_task) {
        g_task_return_boolean(self->shutdown_task, TRUE);
        g_clear_object(&self->shutdown_task);
    }
    G_OBJECT_CLASS(ca_uplink_parent_class)->finalize(object);
}

static void
ca_uplink_class_init(CaUplinkClass *klass)
{
    GObjectClass *oc = G_OBJECT_CLASS(klass);

    oc->dispose = ca_uplink_dispose;
    oc->finalize = ca_uplink_finalize;
    signals[SIG_LINK_CHANGED] =
        g_signal_new("link-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 0);
    signals[SIG_EVENT] = g_signal_new("event", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                      NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_POINTER);
    signals[SIG_SWITCHED] =
        g_signal_new("switched", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                     G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_STRING);
    signals[SIG_STATUS_CHANGED] =
        g_signal_new("status-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
    signals[SIG_MODEM_RESET] = g_signal_new("modem-reset", G_TYPE_FROM_CLASS(klass),
                                            G_SIGNAL_RUN_LAST, 0, g_signal_accumulator_true_handled,
                                            NULL, NULL, G_TYPE_BOOLEAN, 1, G_TYPE_STRING);
}

CaUplink *
ca_uplink_new(CaConfig *config)
{
    CaUplink *self = g_object_new(CA_TYPE_UPLINK, NULL);

    self->config = ca_config_ref(config);
    build_policy(self);
    return self;
}

void
ca_uplink_start(CaUplink *self)
{
    if (self->started)
        return;
    self->started = TRUE;
    update_status(self);
    client_new(self);
}

static gboolean
uplink_config_changed(CaConfig *a, CaConfig *b)
{
    static const char *const groups[] = {"uplink-*", "health", "watchdog", "cellular"};

    for (gsize k = 0; k < G_N_ELEMENTS(groups); k++) {
        if (!ca_config_group_equal(a, b, groups[k]))
            return TRUE;
    }
    return g_strcmp0(ca_config_get_string(a, "agent", "state-dir"),
                     ca_config_get_string(b, "agent", "state-dir")) != 0;
}

void
ca_uplink_set_config(CaUplink *self, CaConfig *config)
{
    CaConfig *old = self->config;
    gboolean changed = uplink_config_changed(old, config);

    self->config = ca_config_ref(config);
    ca_config_unref(old);
    if (!changed)
        return;
    ca_msg("uplink configuration changed; re-evaluating every uplink");
    build_policy(self);
    schedule_refresh(self);
}

void
ca_uplink_set_modem_facts(CaUplink *self, const CaUplinkModemFacts *facts)
{
    self->have_modem = facts != NULL;
    g_clear_pointer(&self->modem_state, g_free);
    g_clear_pointer(&self->modem_registration, g_free);
    if (facts) {
        self->modem = *facts;
        self->modem_state = g_strdup(facts->state);
        self->modem_registration = g_strdup(facts->registration);
        self->modem.state = self->modem.registration = NULL;
    }
    schedule_refresh(self);
}

void
ca_uplink_modem_reset_done(CaUplink *self, const GError *error)
{
    g_autofree char *name = g_steal_pointer(&self->reset_uplink);

    step_result(self, name ? name : "cellular", CA_WD_STEP_MODEM_RESET,
                error ? error->message : NULL);
}

void
ca_uplink_note_trouble(CaUplink *self, const char *why)
{
    if (!self->fo)
        return;
    ca_failover_note_trouble(self->fo, -1, why, now_ms());
    run_policy(self);
}

void
ca_uplink_shutdown_async(CaUplink *self, GAsyncReadyCallback callback, gpointer user_data)
{
    g_autoptr(GTask) task = g_task_new(self, NULL, callback, user_data);
    GObject *watcher = self->client ? nm_client_get_context_busy_watcher(self->client) : NULL;

    g_task_set_source_tag(task, ca_uplink_shutdown_async);
    stop_everything(self);
    if (watcher && !self->shutdown_task && !self->busy_watcher) {
        /* libnm keeps the watcher alive while it has work queued on our context. */
        self->busy_watcher = watcher;
        g_object_weak_ref(watcher, busy_watcher_gone, self);
        self->shutdown_task = g_steal_pointer(&task);
        drop_bus(self);
        return;
    }
    drop_bus(self);
    g_task_return_boolean(task, TRUE);
}

gboolean
ca_uplink_shutdown_finish(CaUplink *self, GAsyncResult *result, GError **error)
{
    return g_task_propagate_boolean(G_TASK(result), error);
}

cJSON *
ca_uplink_get_link_json(CaUplink *self)
{
    return ca_failover_link_json(self->fo, now_ms(), g_get_real_time());
}

const char *
ca_uplink_get_status(CaUplink *self)
{
    if (!self->status)
        update_status(self);
    return self->status;
}

const char *
ca_uplink_get_active(CaUplink *self)
{
    int a = self->fo ? ca_failover_get_active(self->fo) : -1;

    return a >= 0 ? self->fo_config->uplinks[a].name : NULL;
}

gboolean
ca_uplink_force(CaUplink *self, const char *name, GError **error)
{
    int i = -1;

    if (!self->fo) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_NOT_READY, "the uplinks are not set up");
        return FALSE;
    }
    if (name) {
        i = ca_fo_config_find(self->fo_config, name);
        if (i < 0) {
            g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "no uplink \"%s\"", name);
            return FALSE;
        }
    }
    if (!ca_failover_force(self->fo, i)) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                    "uplink \"%s\" is not managed (activate=never)", name);
        return FALSE;
    }
    ca_msg("uplink choice: %s%s", name ? "forced to " : "automatic", name ? name : "");
    run_policy(self);
    return TRUE;
}

const char *
ca_uplink_get_forced(CaUplink *self)
{
    int i = self->fo ? ca_failover_get_forced(self->fo) : -1;

    return i >= 0 ? self->fo_config->uplinks[i].name : NULL;
}

const char *
ca_uplink_reactivate(CaUplink *self, const char *why, GError **error)
{
    int a = self->fo ? ca_failover_get_active(self->fo) : -1;
    g_autofree char *problem = NULL;

    if (a < 0) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_NOT_READY, "no uplink is in use");
        return NULL;
    }
    if (!activate(self, (guint) a, why, FALSE, &problem)) {
        g_set_error(error, CA_ERROR,
                    self->client && nm_client_get_nm_running(self->client) ? CA_ERROR_NETWORK
                                                                           : CA_ERROR_NOT_READY,
                    "%s: %s", self->fo_config->uplinks[a].name, problem);
        return NULL;
    }
    return self->fo_config->uplinks[a].name;
}
