/* uplink-routes: the route side of the uplink module (see uplink-private.h).
 *
 * Failover mechanism: every managed uplink keeps its default route; the policy ranks them
 * and we set each active connection's ipv4/ipv6 route-metric at runtime with
 * nm_device_reapply() on the applied connection (the stored profile is not touched):
 * the chosen uplink gets 100, the others 30000 + 10 x rank, above NetworkManager's own
 * +20000 penalty for devices without full connectivity. A cellular uplink stays between
 * the two, chosen or not (25000, + 10 x (rank + 1) when not chosen): NetworkManager 1.52
 * answers a Reapply on a modem whose bearer takes its address by DHCP but does not restart
 * that DHCP client, whose routes keep the metric of the activation in the kernel. See
 * docs/uplinks.md.
 *
 * After a switch, "switched" (MQTT reconnects) waits until the kernel routes through the
 * new uplink: NetworkManager answers Reapply before it has committed the routes. The wait
 * follows the kernel's route events (route-watch.c), ends at once when the kernel already
 * agrees, and at the latest after SETTLE_TIMEOUT_MS. */
#define CA_LOG_MODULE "uplink"
#include "uplink-private.h"

#include "autocleanups.h"
#include "log.h"
#include "probe-spec.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#define SETTLE_TIMEOUT_MS 2000

/*****************************************************************************/
/* Route metrics through Reapply */

typedef struct {
    CaUplink *self;
    guint i;
    guint generation;
    guint32 metric;
    char *rules; /* the data cap's rules (uplink-cap.c), "" none */
    char *ac_path;
    NMDevice *device;
} ReapplyCtx;

static void
reapply_ctx_free(ReapplyCtx *c)
{
    g_free(c->ac_path);
    g_free(c->rules);
    g_clear_object(&c->device);
    g_free(c);
}

static void
reapply_done(ReapplyCtx *c, gboolean ok)
{
    CaUplink *self = c->self;
    CaUplinkRt *rt = &self->rt[c->i];

    rt->reapplying = FALSE;
    if (ok) {
        g_free(rt->applied_ac);
        rt->applied_ac = g_strdup(c->ac_path);
        rt->applied_metric = c->metric;
        if (g_strcmp0(rt->applied_rules, c->rules) != 0) {
            if (*c->rules)
                ca_msg("%s: data cap: only the agent's own traffic through %s",
                       self->fo_config->uplinks[c->i].name, nm_device_get_ip_iface(c->device));
            else if (rt->applied_rules && *rt->applied_rules)
                ca_msg("%s: data cap lifted: all traffic through %s again",
                       self->fo_config->uplinks[c->i].name, nm_device_get_ip_iface(c->device));
        }
        g_free(rt->applied_rules);
        rt->applied_rules = g_strdup(c->rules);
    }
    if (rt->reapply_again) {
        rt->reapply_again = FALSE;
        ca_uplink_routes_ensure(self, c->i);
    }
    ca_uplink_routes_settle(self, FALSE);
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
    ca_uplink_cap_apply(conn, c->rules, &changed);
    if (!changed) {
        reapply_done(c, TRUE);
        reapply_ctx_free(c);
        return;
    }
    /* Reapply changes the running connection only; the profile on disk stays as is. */
    nm_device_reapply_async(c->device, conn, version, 0, self->cancellable, reapply_ready, c);
}

void
ca_uplink_routes_ensure(CaUplink *self, guint i)
{
    CaUplinkRt *rt = &self->rt[i];
    ReapplyCtx *c;
    guint32 metric;
    const char *path;
    g_autofree char *rules = NULL;

    if (!self->fo || ca_failover_get_active(self->fo) < 0 || !rt->ac || !rt->device ||
        nm_active_connection_get_state(rt->ac) != NM_ACTIVE_CONNECTION_STATE_ACTIVATED)
        return;
    metric = ca_failover_get_metric(self->fo, i);
    rules = ca_uplink_cap_rules_key(self, i);
    path = nm_object_get_path(NM_OBJECT(rt->ac));
    if (g_strcmp0(path, rt->applied_ac) == 0 && rt->applied_metric == metric &&
        g_strcmp0(rules, rt->applied_rules ? rt->applied_rules : "") == 0)
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
    c->rules = g_steal_pointer(&rules);
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
    ca_warn("the kernel's routes did not follow the switch within %d s; telling MQTT anyway",
            SETTLE_TIMEOUT_MS / 1000);
    ca_uplink_routes_settle(self, TRUE);
    return G_SOURCE_REMOVE;
}

/* The kernel's routes changed while a switch waits for them: look again. */
static void
routes_changed_cb(gpointer user_data)
{
    ca_uplink_routes_settle(CA_UPLINK(user_data), FALSE);
}

/* Emit "switched" once the kernel routes through the new uplink, so that MQTT's
 * reconnect does not go out over the old (dead) path; force: emit now regardless. */
void
ca_uplink_routes_settle(CaUplink *self, gboolean force)
{
    if (!self->switch_pending)
        return;
    /* Until then the kernel's events (or NetworkManager's, through the refresh that runs
     * the policy) bring us back here; the timer ends the wait. */
    if (!force && (!active_route_in_place(self) || !kernel_routes_via_active(self)))
        return;
    self->switch_pending = FALSE;
    ca_clear_source(&self->switch_timer);
    g_clear_pointer(&self->route_watch, ca_route_watch_free);
    g_signal_emit(self, ca_uplink_signals[CA_UPLINK_SIG_SWITCHED], 0, self->switch_from,
                  self->switch_to, self->switch_kind);
}

void
ca_uplink_routes_queue_switch(CaUplink *self, const char *from, const char *to, const char *kind)
{
    g_free(self->switch_from);
    g_free(self->switch_to);
    g_free(self->switch_kind);
    self->switch_from = g_strdup(from);
    self->switch_to = g_strdup(to);
    self->switch_kind = g_strdup(kind);
    self->switch_pending = TRUE;
    ca_clear_source(&self->switch_timer);
    self->switch_timer = g_timeout_source_new(SETTLE_TIMEOUT_MS);
    g_source_set_callback(self->switch_timer, switch_timer_cb, self, NULL);
    g_source_attach(self->switch_timer, NULL);
    /* Watch before the first Reapply goes out, so no route change is missed. */
    if (!self->route_watch) {
        g_autoptr(GError) error = NULL;

        self->route_watch = ca_route_watch_new(routes_changed_cb, self, &error);
        if (!self->route_watch && !self->route_watch_warned) {
            self->route_watch_warned = TRUE;
            ca_warn("cannot follow the kernel's route changes (%s); after a switch MQTT is "
                    "told when NetworkManager reports a change, at the latest after %d s",
                    error->message, SETTLE_TIMEOUT_MS / 1000);
        }
    }
}

void
ca_uplink_routes_stop(CaUplink *self)
{
    self->switch_pending = FALSE;
    ca_clear_source(&self->switch_timer);
    g_clear_pointer(&self->route_watch, ca_route_watch_free);
}
