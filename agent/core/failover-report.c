/* failover-report: what the failover policy tells others: queries, the status line
 * and the link JSON (see failover.h). */
#include "failover-private.h"

#include <math.h>
#include <string.h>

/*****************************************************************************/
/* Queries */

gboolean
ca_failover_any_usable(const CaFailover *self)
{
    for (guint i = 0; i < self->n; i++) {
        if (usable(self, i))
            return TRUE;
    }
    return FALSE;
}

int
ca_failover_get_active(const CaFailover *self)
{
    return self->active;
}

CaUplinkState
ca_failover_get_state(const CaFailover *self, guint i)
{
    g_return_val_if_fail(i < self->n, CA_UPLINK_STATE_STANDBY);
    return self->up[i].state;
}

const CaUplinkFacts *
ca_failover_get_facts(const CaFailover *self, guint i)
{
    g_return_val_if_fail(i < self->n, NULL);
    return &self->up[i].facts;
}

guint32
ca_failover_get_metric(const CaFailover *self, guint i)
{
    gboolean chosen = self->active == (int) i;

    g_return_val_if_fail(i < self->n, METRIC_OTHERS);
    /* A cellular uplink stays in its own band, between the chosen uplink (even with
     * NetworkManager's +20000 penalty) and the others: NetworkManager 1.52 takes a new
     * metric on a modem whose bearer uses DHCP but keeps the old one in the kernel until
     * the next activation, so the modem's kernel route must be right in either role.
     * Within the band the chosen one is lowest, for devices with two modems. */
    if (is_cellular(self, i))
        return METRIC_CELLULAR + (chosen ? 0 : 10 * (self->static_rank[i] + 1));
    if (chosen)
        return METRIC_ACTIVE;
    return METRIC_OTHERS + 10 * self->static_rank[i];
}

gboolean
ca_failover_force(CaFailover *self, int uplink)
{
    if (uplink < -1 || uplink >= (int) self->n)
        return FALSE;
    if (uplink >= 0 && ucfg(self, (guint) uplink)->activate == CA_ACTIVATE_NEVER)
        return FALSE;
    self->forced = uplink;
    return TRUE;
}

int
ca_failover_get_forced(const CaFailover *self)
{
    return self->forced;
}

gboolean
ca_failover_is_wanted(const CaFailover *self, guint i)
{
    g_return_val_if_fail(i < self->n, FALSE);
    return ca_fo_compute_wanted(self, i);
}

guint
ca_failover_get_flaps(const CaFailover *self, guint i, gint64 now)
{
    g_return_val_if_fail(i < self->n, 0);
    return count_flaps(&self->up[i], now, self->config->flap_window_ms);
}

gint64
ca_failover_get_hold_down(const CaFailover *self, guint i, gint64 now)
{
    g_return_val_if_fail(i < self->n, 0);
    return ca_fo_hold_down(self, i, now);
}

double
ca_failover_get_loss(const CaFailover *self, guint i)
{
    const Uplink *u;
    guint lost = 0;

    g_return_val_if_fail(i < self->n, -1);
    u = &self->up[i];
    if (u->loss_n == 0)
        return -1;
    for (guint k = 0; k < u->loss_n; k++)
        lost += u->loss[k];
    return (double) lost / u->loss_n;
}

char *
ca_failover_status_line(const CaFailover *self)
{
    GString *s = g_string_new(NULL);

    if (self->active < 0) {
        g_string_append(s, "no uplink in use");
    } else {
        const Uplink *u = &self->up[self->active];
        g_string_append_printf(s, "uplink %s %s", ucfg(self, (guint) self->active)->name,
                               ca_uplink_state_to_string(u->state));
        if (u->facts.ip_iface[0] || u->facts.device[0])
            g_string_append_printf(s, " (%s)",
                                   u->facts.ip_iface[0] ? u->facts.ip_iface : u->facts.device);
        if (!isnan(u->rtt_ms))
            g_string_append_printf(s, ", rtt %.0f ms", u->rtt_ms);
    }
    for (guint i = 0; i < self->n; i++) {
        if ((int) i == self->active || ucfg(self, i)->activate == CA_ACTIVATE_NEVER)
            continue;
        g_string_append_printf(s, "; %s %s", ucfg(self, i)->name,
                               ca_uplink_state_to_string(self->up[i].state));
    }
    return g_string_free(s, FALSE);
}

/*****************************************************************************/
/* JSON */

static char *
iso_ts(gint64 wall_us)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_utc(wall_us / G_USEC_PER_SEC);
    g_autofree char *base =
        dt ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S") : g_strdup("1970-01-01T00:00:00");

    return g_strdup_printf("%s.%03dZ", base, (int) ((wall_us % G_USEC_PER_SEC) / 1000));
}

static void
add_ts(cJSON *obj, const char *key, gint64 wall_us)
{
    g_autofree char *ts = iso_ts(wall_us);
    cJSON_AddStringToObject(obj, key, ts);
}

static void
add_str_or_null(cJSON *obj, const char *key, const char *value)
{
    if (value && *value)
        cJSON_AddStringToObject(obj, key, value);
    else
        cJSON_AddNullToObject(obj, key);
}

static double
round_ms(double v)
{
    return round(v * 100.0) / 100.0;
}

static cJSON *
probes_json(const Uplink *u)
{
    cJSON *arr = cJSON_CreateArray();

    for (guint k = 0; u->have_round && k < u->last_round.n_results; k++) {
        const CaProbeResult *r = &u->last_round.results[k];
        cJSON *p;

        if (!r->sent)
            continue;
        p = cJSON_CreateObject();
        cJSON_AddStringToObject(p, "target", r->target);
        cJSON_AddBoolToObject(p, "ok", r->ok);
        if (r->ok)
            cJSON_AddNumberToObject(p, "rtt_ms", round_ms(r->rtt_ms));
        else
            cJSON_AddStringToObject(p, "error", r->error[0] ? r->error : "failed");
        cJSON_AddItemToArray(arr, p);
    }
    return arr;
}

static void
add_modem_facts(cJSON *obj, const CaUplinkFacts *f)
{
    cJSON *m = cJSON_AddObjectToObject(obj, "modem");

    if (!f->modem_known) {
        cJSON_AddNullToObject(m, "state");
        return;
    }
    add_str_or_null(m, "state", f->modem_present ? f->modem_state : "absent");
    add_str_or_null(m, "registration", f->registration);
    if (f->signal_quality >= 0)
        cJSON_AddNumberToObject(m, "signal_quality", f->signal_quality);
    else
        cJSON_AddNullToObject(m, "signal_quality");
    cJSON_AddBoolToObject(m, "bearer_connected", f->bearer_connected);
}

cJSON *
ca_failover_evidence_json(const CaFailover *self, guint i, gint64 now)
{
    const Uplink *u = &self->up[i];
    const CaUplinkFacts *f = &u->facts;
    cJSON *e = cJSON_CreateObject();
    double loss = ca_failover_get_loss(self, i);

    cJSON_AddStringToObject(e, "state", ca_uplink_state_to_string(u->state));
    cJSON_AddStringToObject(e, "reason", u->hard_ok ? u->reason : u->hard_why);
    cJSON_AddItemToObject(e, "probes", probes_json(u));
    if (loss >= 0)
        cJSON_AddNumberToObject(e, "loss", round_ms(loss));
    else
        cJSON_AddNullToObject(e, "loss");
    add_str_or_null(e, "nm_state", f->nm_state);
    add_str_or_null(e, "nm_reason", f->nm_reason);
    cJSON_AddStringToObject(e, "connectivity", ca_connectivity_to_string(f->connectivity));
    cJSON_AddBoolToObject(e, "carrier", f->carrier);
    if (is_cellular(self, i))
        add_modem_facts(e, f);
    return e;
}

cJSON *
ca_failover_link_json(const CaFailover *self, gint64 now, gint64 now_wall_us)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *ups;

    add_ts(root, "ts", now_wall_us);
    add_str_or_null(root, "active",
                    self->active >= 0 ? ucfg(self, (guint) self->active)->name : NULL);
    add_str_or_null(root, "forced",
                    self->forced >= 0 ? ucfg(self, (guint) self->forced)->name : NULL);
    add_str_or_null(root, "cap",
                    self->cap != CA_FO_CAP_NONE ? ca_fo_cap_to_string(self->cap) : NULL);
    ups = cJSON_AddObjectToObject(root, "uplinks");
    for (guint i = 0; i < self->n; i++) {
        const Uplink *u = &self->up[i];
        const CaUplinkFacts *f = &u->facts;
        cJSON *o = cJSON_AddObjectToObject(ups, ucfg(self, i)->name);
        double loss = ca_failover_get_loss(self, i);
        guint flaps = count_flaps(u, now, self->config->flap_window_ms);

        cJSON_AddStringToObject(o, "state", ca_uplink_state_to_string(u->state));
        cJSON_AddStringToObject(o, "reason", u->hard_ok ? u->reason : u->hard_why);
        cJSON_AddStringToObject(o, "connection", ucfg(self, i)->connection);
        cJSON_AddNumberToObject(o, "priority", ucfg(self, i)->priority);
        cJSON_AddStringToObject(o, "activate", ca_activate_mode_to_string(ucfg(self, i)->activate));
        cJSON_AddStringToObject(o, "type", is_cellular(self, i) ? "cellular" : "wired");
        add_str_or_null(o, "device", f->device);
        add_str_or_null(o, "interface", f->ip_iface[0] ? f->ip_iface : f->device);
        add_str_or_null(o, "nm_state", f->nm_state);
        cJSON_AddStringToObject(o, "connectivity", ca_connectivity_to_string(f->connectivity));
        cJSON_AddBoolToObject(o, "carrier", f->carrier);
        cJSON_AddStringToObject(o, "metered", ca_metered_to_string(f->metered));
        if (!isnan(u->rtt_ms))
            cJSON_AddNumberToObject(o, "rtt_ms", round_ms(u->rtt_ms));
        else
            cJSON_AddNullToObject(o, "rtt_ms");
        if (loss >= 0)
            cJSON_AddNumberToObject(o, "loss", round_ms(loss));
        else
            cJSON_AddNullToObject(o, "loss");
        cJSON_AddItemToObject(o, "probes", probes_json(u));
        if (u->have_round)
            add_ts(o, "last_probe", now_wall_us - (now - u->last_round_at) * 1000);
        else
            cJSON_AddNullToObject(o, "last_probe");
        add_ts(o, "since", now_wall_us - (now - u->state_since) * 1000);
        cJSON_AddNumberToObject(o, "metric", ca_failover_get_metric(self, i));
        cJSON_AddNumberToObject(o, "flaps", flaps);
        cJSON_AddNumberToObject(o, "hold_down", (double) (ca_fo_hold_down(self, i, now) / 1000));
        cJSON_AddBoolToObject(o, "damped", flaps > 1 && self->config->hold_down_ms > 0);
        if (u->ladder.last_step != CA_WD_STEP_NONE) {
            cJSON *w = cJSON_AddObjectToObject(o, "watchdog");
            cJSON_AddStringToObject(w, "last_step", ca_wd_step_to_string(u->ladder.last_step));
            add_ts(w, "last_step_at", now_wall_us - (now - u->ladder.last_step_at) * 1000);
            cJSON_AddNumberToObject(w, "steps", u->ladder.steps_taken);
        }
        if (is_cellular(self, i))
            add_modem_facts(o, f);
    }
    return root;
}
