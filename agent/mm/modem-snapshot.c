/* modem-snapshot: CaModem's facts. Turns the D-Bus property cache of the selected modem
 * (Modem, 3GPP, Signal, Location, its SIM and bearers) into a CaModemFacts snapshot,
 * rebuilt in an idle when anything changes, and decides when the first look at
 * ModemManager is done ("settled"). Owns: the SIM and bearer proxies it reads. */
#define CA_LOG_MODULE "modem"
#include "modem-private.h"

#include "autocleanups.h"
#include "log.h"

#include <math.h>
#include <string.h>

/*****************************************************************************/
/* Facts from the D-Bus property cache */

static gboolean
signal_known(double v)
{
    return v != MM_SIGNAL_UNKNOWN && !isnan(v);
}

static double
signal_value(double v)
{
    return signal_known(v) ? v : NAN;
}

/* The Signal interface's values for the technology in use: LTE (rssi, rsrp, rsrq, snr),
 * 5G (rsrp, rsrq, snr), UMTS or GSM (rssi); else the first technology with any value. */
static void
fill_signal(CaModemFacts *f, MMModemSignal *sig)
{
    MMSignal *lte = mm_modem_signal_peek_lte(sig);
    MMSignal *nr5g = mm_modem_signal_peek_nr5g(sig);
    MMSignal *umts = mm_modem_signal_peek_umts(sig);
    MMSignal *gsm = mm_modem_signal_peek_gsm(sig);
    MMSignal *pick = NULL;
    MMModemAccessTechnology at = f->access_tech;

    if (at & MM_MODEM_ACCESS_TECHNOLOGY_5GNR)
        pick = nr5g;
    else if (at & MM_MODEM_ACCESS_TECHNOLOGY_LTE)
        pick = lte;
    else if (at & (MM_MODEM_ACCESS_TECHNOLOGY_UMTS | MM_MODEM_ACCESS_TECHNOLOGY_HSDPA |
                   MM_MODEM_ACCESS_TECHNOLOGY_HSUPA | MM_MODEM_ACCESS_TECHNOLOGY_HSPA |
                   MM_MODEM_ACCESS_TECHNOLOGY_HSPA_PLUS))
        pick = umts;
    else if (at & (MM_MODEM_ACCESS_TECHNOLOGY_GSM | MM_MODEM_ACCESS_TECHNOLOGY_GPRS |
                   MM_MODEM_ACCESS_TECHNOLOGY_EDGE))
        pick = gsm;
    if (!pick) {
        MMSignal *order[] = {nr5g, lte, umts, gsm};

        for (gsize i = 0; i < G_N_ELEMENTS(order) && !pick; i++) {
            MMSignal *s = order[i];

            if (s && (signal_known(mm_signal_get_rssi(s)) || signal_known(mm_signal_get_rsrp(s))))
                pick = s;
        }
    }
    if (!pick)
        return;
    f->rssi = signal_value(mm_signal_get_rssi(pick));
    f->rsrp = signal_value(mm_signal_get_rsrp(pick));
    f->rsrq = signal_value(mm_signal_get_rsrq(pick));
    f->snr = signal_value(mm_signal_get_snr(pick));
}

static void
fill_facts(CaModem *self, CaModemFacts *f)
{
    MMModem *modem;
    MMModem3gpp *m3gpp;
    MMModemSignal *sig;
    MMUnlockRetries *retries;
    gboolean recent;

    ca_modem_facts_init(f);
    if (!self->object)
        return;
    modem = mm_object_peek_modem(self->object);
    if (!modem)
        return;
    f->present = TRUE;
    f->path = g_strdup(mm_object_get_path(self->object));
    f->device = g_strdup(mm_modem_get_device(modem));
    f->plugin = g_strdup(mm_modem_get_plugin(modem));
    f->state = mm_modem_get_state(modem);
    f->failed_reason = mm_modem_get_state_failed_reason(modem);
    f->unlock_required = mm_modem_get_unlock_required(modem);
    f->manufacturer = g_strdup(mm_modem_get_manufacturer(modem));
    f->model = g_strdup(mm_modem_get_model(modem));
    f->revision = g_strdup(mm_modem_get_revision(modem));
    f->imei = g_strdup(mm_modem_get_equipment_identifier(modem));
    f->access_tech = mm_modem_get_access_technologies(modem);
    f->signal_quality = mm_modem_get_signal_quality(modem, &recent);
    /* ModemManager reports 0 while it cannot know (disabled, locked, failed, not yet
     * measured); 0 is a real value only when it says the reading is recent. */
    f->signal_quality_valid =
        f->state >= MM_MODEM_STATE_ENABLED && (f->signal_quality > 0 || recent);
    if (!f->signal_quality_valid)
        f->signal_quality = 0;
    retries = mm_modem_peek_unlock_retries(modem);
    if (retries && f->unlock_required != MM_MODEM_LOCK_NONE &&
        f->unlock_required != MM_MODEM_LOCK_UNKNOWN) {
        guint n = mm_unlock_retries_get(retries, f->unlock_required);

        f->pin_retries = n == MM_UNLOCK_RETRIES_UNKNOWN ? -1 : (int) n;
    }
    /* Until ModemManager has re-read the counter after the refusal we saw. */
    if (self->pin_status == CA_MODEM_PIN_WRONG && self->pin_wrong_retries >= 0 &&
        (f->pin_retries < 0 || f->pin_retries > self->pin_wrong_retries))
        f->pin_retries = self->pin_wrong_retries;

    m3gpp = mm_object_peek_modem_3gpp(self->object);
    if (m3gpp) {
        if (mm_modem_3gpp_get_imei(m3gpp)) {
            g_free(f->imei);
            f->imei = g_strdup(mm_modem_3gpp_get_imei(m3gpp));
        }
        f->registration = mm_modem_3gpp_get_registration_state(m3gpp);
        f->operator_code = g_strdup(mm_modem_3gpp_get_operator_code(m3gpp));
        f->operator_name = g_strdup(mm_modem_3gpp_get_operator_name(m3gpp));
    }

    sig = mm_object_peek_modem_signal(self->object);
    if (sig && f->state >= MM_MODEM_STATE_ENABLED)
        fill_signal(f, sig);

    if (self->location && f->state >= MM_MODEM_STATE_ENABLED) {
        f->lac = ca_modem_format_hex(mm_location_3gpp_get_location_area_code(self->location), 4);
        f->tac = ca_modem_format_hex(mm_location_3gpp_get_tracking_area_code(self->location), 6);
        f->cell_id = ca_modem_format_hex(mm_location_3gpp_get_cell_id(self->location), 8);
    }

    if (self->sim) {
        f->sim_present = TRUE;
        f->iccid = g_strdup(mm_sim_get_identifier(self->sim));
        f->imsi = g_strdup(mm_sim_get_imsi(self->sim));
        f->sim_operator_code = g_strdup(mm_sim_get_operator_identifier(self->sim));
        f->sim_operator_name = g_strdup(mm_sim_get_operator_name(self->sim));
    }

    if (self->bearers && self->bearers->len > 0) {
        MMBearer *pick = g_ptr_array_index(self->bearers, 0);
        MMBearerStats *stats;

        /* The connected bearer; otherwise the first one (its last session's counters). */
        for (guint i = 0; i < self->bearers->len; i++) {
            if (mm_bearer_get_connected(g_ptr_array_index(self->bearers, i))) {
                pick = g_ptr_array_index(self->bearers, i);
                break;
            }
        }
        f->bearer_connected = mm_bearer_get_connected(pick);
        if (f->bearer_connected)
            f->bearer_interface = g_strdup(mm_bearer_get_interface(pick));
        stats = mm_bearer_peek_stats(pick);
        if (stats) {
            f->bearer_stats_valid = TRUE;
            f->rx_bytes = mm_bearer_stats_get_rx_bytes(stats);
            f->tx_bytes = mm_bearer_stats_get_tx_bytes(stats);
            f->duration = mm_bearer_stats_get_duration(stats);
        }
    }
    f->pin_status = self->pin_status;
}

static void
log_transitions(const CaModemFacts *old, const CaModemFacts *now)
{
    if (!now->present)
        return;
    if (old->present && g_strcmp0(old->path, now->path) == 0) {
        if (old->state != now->state) {
            if (now->state == MM_MODEM_STATE_FAILED)
                ca_msg("%s: %s -> failed (%s)", ca_modem_short_path(now->path),
                       mm_modem_state_get_string(old->state),
                       mm_modem_state_failed_reason_get_string(now->failed_reason));
            else
                ca_msg("%s: %s -> %s", ca_modem_short_path(now->path),
                       mm_modem_state_get_string(old->state),
                       mm_modem_state_get_string(now->state));
        }
        if (old->registration != now->registration)
            ca_msg("%s: registration %s -> %s", ca_modem_short_path(now->path),
                   mm_modem_3gpp_registration_state_get_string(old->registration),
                   mm_modem_3gpp_registration_state_get_string(now->registration));
    }
}

static gboolean
facts_idle_cb(gpointer user_data)
{
    CaModem *self = user_data;
    CaModemFacts now;

    ca_clear_source(&self->facts_idle);
    fill_facts(self, &now);
    if (ca_modem_facts_equal(&now, &self->facts)) {
        ca_modem_facts_clear(&now);
        return G_SOURCE_REMOVE;
    }
    log_transitions(&self->facts, &now);
    ca_modem_facts_clear(&self->facts);
    self->facts = now; /* takes the strings */
    if (self->settled)
        ca_modem_emit_facts_changed(self);
    return G_SOURCE_REMOVE;
}

void
ca_modem_schedule_facts(CaModem *self)
{
    if (self->facts_idle)
        return;
    self->facts_idle = g_idle_source_new();
    g_source_set_priority(self->facts_idle, G_PRIORITY_DEFAULT);
    g_source_set_callback(self->facts_idle, facts_idle_cb, self, NULL);
    g_source_attach(self->facts_idle, NULL);
}

/* Rebuild now (not coalesced), so callers can peek a fresh snapshot before they emit. */
void
ca_modem_flush_facts(CaModem *self)
{
    ca_clear_source(&self->facts_idle);
    facts_idle_cb(self);
}

void
ca_modem_set_settled(CaModem *self)
{
    if (self->settled)
        return;
    ca_clear_source(&self->settle_limit);
    ca_clear_source(&self->facts_idle);
    facts_idle_cb(self); /* not settled yet: rebuilds without emitting */
    self->settled = TRUE;
    ca_debug("first look at ModemManager done: %s",
             self->facts.present ? ca_modem_short_path(self->facts.path) : "no modem");
    ca_modem_emit_facts_changed(self);
}

gboolean
ca_modem_settle_limit_cb(gpointer user_data)
{
    CaModem *self = user_data;

    ca_clear_source(&self->settle_limit);
    ca_modem_set_settled(self);
    return G_SOURCE_REMOVE;
}

void
ca_modem_check_settled(CaModem *self)
{
    if (!self->settled && self->manager && self->loads_pending == 0)
        ca_modem_set_settled(self);
}

/*****************************************************************************/
/* SIM, bearers and location of the selected modem */

typedef struct {
    CaModem *self; /* owned ref */
    MMObject *object;
    gboolean counted; /* counts in loads_pending */
} LoadContext;

static LoadContext *
load_context_new(CaModem *self)
{
    LoadContext *ctx = g_new0(LoadContext, 1);

    ctx->self = g_object_ref(self);
    ctx->object = g_object_ref(self->object);
    if (!self->settled) {
        ctx->counted = TRUE;
        self->loads_pending++;
    }
    return ctx;
}

/* TRUE when the result still belongs to the selected object. Frees ctx. */
static gboolean
load_context_finish(LoadContext *ctx, CaModem **out_self)
{
    CaModem *self = ctx->self;
    gboolean current = self->object == ctx->object;

    if (ctx->counted && self->loads_pending > 0)
        self->loads_pending--;
    g_object_unref(ctx->object);
    *out_self = self;
    g_free(ctx);
    return current;
}

void
ca_modem_property_notify_cb(GObject *proxy, GParamSpec *pspec, gpointer user_data)
{
    ca_modem_schedule_facts(CA_MODEM(user_data));
}

static void
sim_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(MMSim) sim = mm_modem_get_sim_finish(MM_MODEM(source), result, &error);
    CaModem *self;
    gboolean current = load_context_finish(user_data, &self);

    if (current && sim && g_strcmp0(mm_sim_get_path(sim), self->sim_path) == 0) {
        if (self->sim)
            g_signal_handlers_disconnect_by_data(self->sim, self);
        g_set_object(&self->sim, sim);
        g_signal_connect_object(sim, "notify", G_CALLBACK(ca_modem_property_notify_cb), self, 0);
        ca_modem_schedule_facts(self);
    } else if (current && !sim && error &&
               !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        ca_warn("cannot read the SIM of %s: %s",
                ca_modem_short_path(mm_object_get_path(self->object)), error->message);
    }
    ca_modem_check_settled(self);
    g_object_unref(self);
}

void
ca_modem_update_sim(CaModem *self, MMModem *modem)
{
    const char *path = mm_modem_get_sim_path(modem);

    if (path && g_str_equal(path, "/"))
        path = NULL; /* no SIM */
    if (g_strcmp0(path, self->sim_path) == 0)
        return;
    g_free(self->sim_path);
    self->sim_path = g_strdup(path);
    if (self->sim) {
        g_signal_handlers_disconnect_by_data(self->sim, self);
        g_clear_object(&self->sim);
    }
    ca_modem_schedule_facts(self);
    if (path)
        mm_modem_get_sim(modem, self->object_cancellable, sim_ready, load_context_new(self));
}

void
ca_modem_clear_bearers(CaModem *self)
{
    for (guint i = 0; self->bearers && i < self->bearers->len; i++)
        g_signal_handlers_disconnect_by_data(g_ptr_array_index(self->bearers, i), self);
    g_clear_pointer(&self->bearers, g_ptr_array_unref);
}

static gboolean
bearer_list_matches(GList *list, GStrv paths)
{
    guint n = paths ? g_strv_length(paths) : 0;

    if (g_list_length(list) != n)
        return FALSE;
    for (GList *l = list; l; l = l->next)
        if (!g_strv_contains((const char *const *) paths, mm_bearer_get_path(l->data)))
            return FALSE;
    return TRUE;
}

static void
bearers_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;
    GList *list = mm_modem_list_bearers_finish(MM_MODEM(source), result, &error);
    CaModem *self;
    gboolean current = load_context_finish(user_data, &self);

    if (current && !error && bearer_list_matches(list, self->bearer_paths)) {
        ca_modem_clear_bearers(self);
        self->bearers = g_ptr_array_new_with_free_func(g_object_unref);
        for (GList *l = list; l; l = l->next) {
            g_signal_connect_object(l->data, "notify", G_CALLBACK(ca_modem_property_notify_cb),
                                    self, 0);
            g_ptr_array_add(self->bearers, g_object_ref(l->data));
        }
        ca_modem_schedule_facts(self);
    } else if (current && error && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        ca_warn("cannot list the bearers of %s: %s",
                ca_modem_short_path(mm_object_get_path(self->object)), error->message);
    }
    g_list_free_full(list, g_object_unref);
    ca_modem_check_settled(self);
    g_object_unref(self);
}

void
ca_modem_update_bearers(CaModem *self, MMModem *modem)
{
    const char *const *paths = mm_modem_get_bearer_paths(modem);

    if (self->bearer_paths && paths &&
        g_strv_equal((const char *const *) self->bearer_paths, paths))
        return;
    if (!self->bearer_paths && (!paths || !paths[0]) && self->bearers)
        return;
    g_strfreev(self->bearer_paths);
    self->bearer_paths = g_strdupv((char **) paths);
    ca_modem_clear_bearers(self);
    ca_modem_schedule_facts(self);
    if (paths && paths[0])
        mm_modem_list_bearers(modem, self->object_cancellable, bearers_ready,
                              load_context_new(self));
    else
        self->bearers = g_ptr_array_new_with_free_func(g_object_unref);
}

void
ca_modem_location_notify_cb(GObject *proxy, GParamSpec *pspec, gpointer user_data)
{
    CaModem *self = CA_MODEM(user_data);
    MMModemLocation *loc = MM_MODEM_LOCATION(proxy);
    MMLocation3gpp *signaled;

    if (!mm_modem_location_signals_location(loc))
        return;
    signaled = mm_modem_location_peek_signaled_3gpp(loc);
    if (signaled && signaled != self->location) {
        g_set_object(&self->location, signaled);
        ca_modem_schedule_facts(self);
    }
}
