/* failover-config: the failover policy's typed settings, read once from the config
 * and compared on reload (see failover.h). */
#include "failover-private.h"

#include "probe-spec.h"

#include <string.h>

const char *
ca_activate_mode_to_string(CaActivateMode m)
{
    switch (m) {
    case CA_ACTIVATE_ALWAYS:
        return "always";
    case CA_ACTIVATE_ON_DEMAND:
        return "on-demand";
    case CA_ACTIVATE_NEVER:
        return "never";
    }
    g_assert_not_reached();
}

/*****************************************************************************/
/* Config */

static int
compare_uplink_names(gconstpointer a, gconstpointer b)
{
    return strcmp(((const CaFoUplinkConfig *) a)->name, ((const CaFoUplinkConfig *) b)->name);
}

static CaActivateMode
parse_activate(const char *s)
{
    if (g_strcmp0(s, "on-demand") == 0)
        return CA_ACTIVATE_ON_DEMAND;
    if (g_strcmp0(s, "never") == 0)
        return CA_ACTIVATE_NEVER;
    return CA_ACTIVATE_ALWAYS;
}

CaFoConfig *
ca_fo_config_new(const CaConfig *config)
{
    CaFoConfig *c = g_new0(CaFoConfig, 1);
    g_auto(GStrv) groups = ca_config_get_groups_with_prefix(config, "uplink-");
    g_autoptr(GArray) ups = g_array_new(FALSE, TRUE, sizeof(CaFoUplinkConfig));
    gboolean have_cellular = FALSE;
    CaWdConfig *w = &c->watchdog;
    const char *const *steps;

    c->interval_ms = ca_config_get_int(config, "health", "interval") * 1000;
    c->fast_interval_ms = ca_config_get_int(config, "health", "fast-interval") * 1000;
    c->timeout_ms = ca_config_get_int(config, "health", "timeout") * 1000;
    c->down_after = (guint) ca_config_get_int(config, "health", "down-after");
    c->up_after = (guint) ca_config_get_int(config, "health", "up-after");
    c->hold_down_ms = ca_config_get_int(config, "health", "hold-down") * 1000;
    c->max_hold_down_ms = ca_config_get_int(config, "health", "max-hold-down") * 1000;
    c->flap_window_ms = ca_config_get_int(config, "health", "flap-window") * 1000;
    c->report_interval_ms = ca_config_get_int(config, "health", "report-interval") * 1000;
    c->dns_name = g_strdup(ca_config_get_string(config, "health", "dns-name"));

    for (int i = 0; groups[i]; i++) {
        const char *g = groups[i];
        CaFoUplinkConfig u = {0};

        u.name = g_strdup(g + strlen("uplink-"));
        u.cellular = strcmp(u.name, "cellular") == 0;
        have_cellular |= u.cellular;
        if (ca_config_is_set(config, g, "connection"))
            u.connection = g_strdup(ca_config_get_string(config, g, "connection"));
        else if (u.cellular)
            u.connection = g_strdup(ca_config_get_string(config, "cellular", "connection"));
        else
            u.connection = g_strdup(u.name);
        u.priority = ca_config_is_set(config, g, "priority")
                         ? (int) ca_config_get_int(config, g, "priority")
                         : (u.cellular ? 200 : 100);
        u.activate = parse_activate(ca_config_get_string(config, g, "activate"));
        u.probes = g_strdupv((char **) (ca_config_is_set(config, g, "probes")
                                            ? ca_config_get_list(config, g, "probes")
                                            : ca_config_get_list(config, "health", "probes")));
        g_array_append_val(ups, u);
    }
    if (!have_cellular) {
        CaFoUplinkConfig u = {0};

        u.name = g_strdup("cellular");
        u.cellular = TRUE;
        u.connection = g_strdup(ca_config_get_string(config, "cellular", "connection"));
        u.priority = 200;
        u.activate = CA_ACTIVATE_ALWAYS;
        u.probes = g_strdupv((char **) ca_config_get_list(config, "health", "probes"));
        g_array_append_val(ups, u);
    }
    g_array_sort(ups, compare_uplink_names);
    c->n_uplinks = ups->len;
    c->uplinks = (CaFoUplinkConfig *) (void *) g_array_free(g_steal_pointer(&ups), FALSE);

    w->enabled = ca_config_get_bool(config, "watchdog", "enabled");
    steps = ca_config_get_list(config, "watchdog", "steps");
    for (int i = 0; steps[i]; i++) {
        CaWdStep s;
        if (ca_wd_step_from_string(steps[i], &s))
            w->step_enabled[s] = TRUE;
    }
    if (!*ca_config_get_string(config, "watchdog", "power-cycle-command"))
        w->step_enabled[CA_WD_STEP_POWER_CYCLE] = FALSE;
    if (!ca_config_get_bool(config, "watchdog", "reboot"))
        w->step_enabled[CA_WD_STEP_REBOOT] = FALSE;
    w->start_after_ms = ca_config_get_int(config, "watchdog", "start-after") * 1000;
    w->cooldown_ms[CA_WD_STEP_REACTIVATE] =
        ca_config_get_int(config, "watchdog", "reactivate-cooldown") * 1000;
    w->cooldown_ms[CA_WD_STEP_MODEM_RESET] =
        ca_config_get_int(config, "watchdog", "modem-reset-cooldown") * 1000;
    w->cooldown_ms[CA_WD_STEP_POWER_CYCLE] =
        ca_config_get_int(config, "watchdog", "power-cycle-cooldown") * 1000;
    w->cooldown_ms[CA_WD_STEP_REBOOT] =
        ca_config_get_int(config, "watchdog", "reboot-cooldown") * 1000;
    w->budget[CA_WD_STEP_MODEM_RESET] =
        (guint) ca_config_get_int(config, "watchdog", "modem-reset-budget");
    w->budget[CA_WD_STEP_POWER_CYCLE] =
        (guint) ca_config_get_int(config, "watchdog", "power-cycle-budget");
    w->budget[CA_WD_STEP_REBOOT] = (guint) ca_config_get_int(config, "watchdog", "reboot-budget");
    w->healthy_reset_ms = ca_config_get_int(config, "watchdog", "healthy-reset") * 1000;
    w->max_backoff_shift = 4;
    return c;
}

CaFoConfig *
ca_fo_config_copy(const CaFoConfig *src)
{
    CaFoConfig *c = g_new0(CaFoConfig, 1);

    *c = *src;
    c->dns_name = g_strdup(src->dns_name);
    c->uplinks = g_new0(CaFoUplinkConfig, src->n_uplinks);
    for (guint i = 0; i < src->n_uplinks; i++) {
        c->uplinks[i] = src->uplinks[i];
        c->uplinks[i].name = g_strdup(src->uplinks[i].name);
        c->uplinks[i].connection = g_strdup(src->uplinks[i].connection);
        c->uplinks[i].probes = g_strdupv(src->uplinks[i].probes);
    }
    return c;
}

void
ca_fo_config_free(CaFoConfig *c)
{
    if (!c)
        return;
    for (guint i = 0; i < c->n_uplinks; i++) {
        g_free(c->uplinks[i].name);
        g_free(c->uplinks[i].connection);
        g_strfreev(c->uplinks[i].probes);
    }
    g_free(c->uplinks);
    g_free(c->dns_name);
    g_free(c);
}

static gboolean
wd_config_equal(const CaWdConfig *a, const CaWdConfig *b)
{
    if (a->enabled != b->enabled || a->start_after_ms != b->start_after_ms ||
        a->healthy_reset_ms != b->healthy_reset_ms || a->max_backoff_shift != b->max_backoff_shift)
        return FALSE;
    for (guint s = 0; s < CA_WD_N_STEPS; s++) {
        if (a->step_enabled[s] != b->step_enabled[s] || a->cooldown_ms[s] != b->cooldown_ms[s] ||
            a->budget[s] != b->budget[s])
            return FALSE;
    }
    return TRUE;
}

gboolean
ca_fo_config_equal(const CaFoConfig *a, const CaFoConfig *b)
{
    if (a->interval_ms != b->interval_ms || a->fast_interval_ms != b->fast_interval_ms ||
        a->timeout_ms != b->timeout_ms || a->down_after != b->down_after ||
        a->up_after != b->up_after || a->hold_down_ms != b->hold_down_ms ||
        a->max_hold_down_ms != b->max_hold_down_ms || a->flap_window_ms != b->flap_window_ms ||
        a->report_interval_ms != b->report_interval_ms ||
        g_strcmp0(a->dns_name, b->dns_name) != 0 || !wd_config_equal(&a->watchdog, &b->watchdog) ||
        a->n_uplinks != b->n_uplinks)
        return FALSE;
    for (guint i = 0; i < a->n_uplinks; i++) {
        const CaFoUplinkConfig *x = &a->uplinks[i], *y = &b->uplinks[i];

        if (g_strcmp0(x->name, y->name) != 0 || g_strcmp0(x->connection, y->connection) != 0 ||
            x->priority != y->priority || x->activate != y->activate ||
            x->cellular != y->cellular ||
            !g_strv_equal((const char *const *) x->probes, (const char *const *) y->probes))
            return FALSE;
    }
    return TRUE;
}

int
ca_fo_config_find(const CaFoConfig *c, const char *name)
{
    for (guint i = 0; i < c->n_uplinks; i++) {
        if (g_strcmp0(c->uplinks[i].name, name) == 0)
            return (int) i;
    }
    return -1;
}

guint64
ca_fo_idle_bytes_per_month(const CaFoConfig *c, guint uplink)
{
    CaProbeSpec spec;
    const CaFoUplinkConfig *u = &c->uplinks[uplink];
    guint64 rounds;

    if (!u->probes || !u->probes[0] || !ca_probe_spec_parse(u->probes[0], &spec, NULL))
        return 0;
    rounds = (guint64) MONTH_S * 1000 / (guint64) MAX(c->interval_ms, 1);
    return rounds * ca_probe_spec_cost(&spec);
}
