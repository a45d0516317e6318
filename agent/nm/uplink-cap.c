/* uplink-cap: the cellular uplink under a data cap (see uplink-private.h, docs/usage.md).
 *
 * essential-only (and next-uplink while cellular still carries the traffic) lets only the
 * agent's own traffic use cellular. NetworkManager carries it out: routing rules on the
 * cellular connection, given with the same Reapply as the route metric (the stored profile
 * is not touched; a re-activation drops them and the policy gives them again):
 *
 *   30200  oif IFACE lookup main                 the agent's probes (bound to the interface)
 *   30201  to ADDR lookup main (one per address) the broker, the cellular DNS servers
 *   30290  lookup main suppress_prefixlength 0   every route but a default route
 *   30291  unreachable                           the rest: no default route any more
 *
 * The same for IPv6 when the connection has IPv6. Why rules and not ipv4.never-default plus
 * host routes: with a modem whose bearer takes its address by DHCP (ECM), NetworkManager
 * 1.42 keeps the DHCP default route on a Reapply of never-default (seen in the lab), and a
 * /32 host route would also pull the broker's traffic onto cellular while a wired uplink
 * carries the rest. The rules apply only while cellular is the uplink in use; otherwise it
 * is a standby like any other, behind the active uplink's better metric. */
#define CA_LOG_MODULE "uplink"
#include "uplink-private.h"

#include "autocleanups.h"
#include "log.h"

#include <linux/fib_rules.h>
#include <string.h>

#define PRIO_OIF        30200
#define PRIO_ADDR_FIRST 30201
#define PRIO_SUPPRESS   30290
#define PRIO_REJECT     30291
#define PRIO_LAST       30299
#define MAIN_TABLE      254
#define BROKER_TTL_MS   (5 * 60 * 1000)

/*****************************************************************************/
/* The broker's addresses (for the rules) */

static void
broker_resolved(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;
    GList *addrs = g_resolver_lookup_by_name_finish(G_RESOLVER(source), result, &error);
    CaUplink *self;

    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
    self = user_data;
    self->cap_resolving = FALSE;
    if (!addrs) {
        /* Keep what we had: the rules keep the old addresses reachable. */
        ca_warn("data cap: cannot resolve the broker \"%s\": %s", self->settings->mqtt_host,
                error->message);
        return;
    }
    g_ptr_array_set_size(self->cap_broker, 0);
    for (GList *l = addrs; l; l = l->next)
        g_ptr_array_add(self->cap_broker, g_inet_address_to_string(l->data));
    g_resolver_free_addresses(addrs);
    self->cap_resolved_at = ca_uplink_now_ms();
    for (guint i = 0; i < self->n; i++)
        ca_uplink_routes_ensure(self, i);
}

/* The broker's addresses, resolving again when they are older than BROKER_TTL_MS. */
static void
need_broker(CaUplink *self)
{
    const char *host = self->settings->mqtt_host;
    g_autoptr(GInetAddress) literal = NULL;

    if (!host || !*host || ca_uplink_settings_broker_is_local(self->settings))
        return;
    literal = g_inet_address_new_from_string(host);
    if (literal) {
        g_ptr_array_set_size(self->cap_broker, 0);
        g_ptr_array_add(self->cap_broker, g_strdup(host));
        return;
    }
    if (self->cap_resolving ||
        (self->cap_resolved_at > 0 && ca_uplink_now_ms() - self->cap_resolved_at < BROKER_TTL_MS))
        return;
    self->cap_resolving = TRUE;
    g_resolver_lookup_by_name_async(g_resolver_get_default(), host, self->cancellable,
                                    broker_resolved, self);
}

/*****************************************************************************/
/* The rules */

static void
add_line(GString *key, int family, const char *what)
{
    g_string_append_printf(key, "%d %s\n", family == AF_INET6 ? 6 : 4, what);
}

static void
add_addresses(GString *key, const char *const *addrs, guint n)
{
    for (guint k = 0; k < n; k++) {
        g_autoptr(GInetAddress) a = g_inet_address_new_from_string(addrs[k]);
        g_autofree char *line = NULL;

        if (!a)
            continue;
        line = g_strdup_printf("to %s", addrs[k]);
        add_line(key, g_inet_address_get_family(a) == G_SOCKET_FAMILY_IPV6 ? AF_INET6 : AF_INET,
                 line);
    }
}

char *
ca_uplink_cap_rules_key(CaUplink *self, guint i)
{
    CaUplinkRt *rt = &self->rt[i];
    GString *key;
    const char *iface;
    g_autofree char *oif = NULL;

    if (!self->fo || !ca_failover_is_restricted(self->fo, i) || !rt->device)
        return g_strdup("");
    iface = nm_device_get_ip_iface(rt->device);
    if (!iface)
        iface = nm_device_get_iface(rt->device);
    need_broker(self);
    key = g_string_new(NULL);
    oif = g_strdup_printf("oif %s", iface);
    for (int family = AF_INET; family != 0; family = family == AF_INET ? AF_INET6 : 0) {
        NMIPConfig *ipc = family == AF_INET ? nm_device_get_ip4_config(rt->device)
                                            : nm_device_get_ip6_config(rt->device);
        const char *const *dns = ipc ? nm_ip_config_get_nameservers(ipc) : NULL;
        GString *addrs;
        g_auto(GStrv) lines = NULL;

        if (!ipc)
            continue; /* no such family on the connection */
        addrs = g_string_new(NULL);
        add_line(key, family, oif);
        add_addresses(addrs, (const char *const *) self->cap_broker->pdata, self->cap_broker->len);
        add_addresses(addrs, dns, dns ? g_strv_length((char **) dns) : 0);
        /* Only this family's addresses. */
        lines = g_strsplit(addrs->str, "\n", -1);
        for (guint k = 0; lines[k]; k++) {
            if (lines[k][0] == (family == AF_INET ? '4' : '6'))
                g_string_append_printf(key, "%s\n", lines[k]);
        }
        g_string_free(addrs, TRUE);
        add_line(key, family, "suppress");
        add_line(key, family, "unreachable");
    }
    return g_string_free(key, FALSE);
}

/* Remove the rules of our priority range from s. */
static gboolean
drop_ours(NMSettingIPConfig *s)
{
    gboolean changed = FALSE;

    for (guint k = nm_setting_ip_config_get_num_routing_rules(s); k > 0; k--) {
        NMIPRoutingRule *r = nm_setting_ip_config_get_routing_rule(s, k - 1);
        gint64 prio = nm_ip_routing_rule_get_priority(r);

        if (prio >= PRIO_OIF && prio <= PRIO_LAST) {
            nm_setting_ip_config_remove_routing_rule(s, k - 1);
            changed = TRUE;
        }
    }
    return changed;
}

static NMIPRoutingRule *
rule_from_line(int family, const char *what, guint32 *next_addr_prio)
{
    NMIPRoutingRule *r = nm_ip_routing_rule_new(family);

    if (g_str_has_prefix(what, "oif ")) {
        nm_ip_routing_rule_set_priority(r, PRIO_OIF);
        nm_ip_routing_rule_set_oifname(r, what + 4);
        nm_ip_routing_rule_set_table(r, MAIN_TABLE);
    } else if (g_str_has_prefix(what, "to ")) {
        nm_ip_routing_rule_set_priority(r, MIN(*next_addr_prio, PRIO_SUPPRESS - 1));
        (*next_addr_prio)++;
        nm_ip_routing_rule_set_to(r, what + 3, family == AF_INET6 ? 128 : 32);
        nm_ip_routing_rule_set_table(r, MAIN_TABLE);
    } else if (g_str_equal(what, "suppress")) {
        nm_ip_routing_rule_set_priority(r, PRIO_SUPPRESS);
        nm_ip_routing_rule_set_table(r, MAIN_TABLE);
        nm_ip_routing_rule_set_suppress_prefixlength(r, 0);
    } else {
        nm_ip_routing_rule_set_priority(r, PRIO_REJECT);
        nm_ip_routing_rule_set_action(r, FR_ACT_UNREACHABLE);
    }
    return r;
}

void
ca_uplink_cap_apply(NMConnection *conn, const char *key, gboolean *changed)
{
    NMSettingIPConfig *s4 = nm_connection_get_setting_ip4_config(conn);
    NMSettingIPConfig *s6 = nm_connection_get_setting_ip6_config(conn);
    g_auto(GStrv) lines = g_strsplit(key, "\n", -1);
    guint32 next4 = PRIO_ADDR_FIRST, next6 = PRIO_ADDR_FIRST;

    if (s4 && drop_ours(s4))
        *changed = TRUE;
    if (s6 && drop_ours(s6))
        *changed = TRUE;
    for (guint k = 0; lines[k]; k++) {
        int family;
        NMSettingIPConfig *s;
        g_autoptr(GError) error = NULL;
        NMIPRoutingRule *r;

        if (strlen(lines[k]) < 3)
            continue;
        family = lines[k][0] == '6' ? AF_INET6 : AF_INET;
        s = family == AF_INET6 ? s6 : s4;
        if (!s)
            continue;
        r = rule_from_line(family, lines[k] + 2, family == AF_INET6 ? &next6 : &next4);
        if (nm_ip_routing_rule_validate(r, &error)) {
            nm_setting_ip_config_add_routing_rule(s, r);
            *changed = TRUE;
        } else {
            ca_warn("data cap: routing rule \"%s\" refused: %s", lines[k], error->message);
        }
        nm_ip_routing_rule_unref(r);
    }
}
