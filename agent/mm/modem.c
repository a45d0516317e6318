/* modem: the libmm-glib adapter. Follows ModemManager (MMManager without auto-start,
 * object-added/removed, name owner), selects one modem, prepares it (PIN, enable, Signal
 * and Location setup) in a GTask step machine, and turns the D-Bus property cache into
 * a CaModemFacts snapshot. Owns: the manager, the selected object, its SIM and bearers.
 * Does not own: telemetry JSON (telemetry.c), MQTT or SMS. No synchronous D-Bus calls. */
#define CA_LOG_MODULE "modem"
#include "modem.h"

#include "autocleanups.h"
#include "backoff.h"
#include "bus.h"
#include "error.h"
#include "log.h"

#include <math.h>
#include <string.h>

#define MM_DBUS_NAME         "org.freedesktop.ModemManager1"
#define SETTLE_LIMIT_MS      5000   /* settle at the latest this long after the manager is up */
#define PREPARE_RETRY_MIN_MS 2000   /* failed enable/unlock: first retry */
#define PREPARE_RETRY_MAX_MS 120000 /* ... and the longest wait between retries */
#define PIN_REJECTED_FILE    "modem-pin-rejected"

/*****************************************************************************/
/* The object */

struct _CaModem {
    GObject parent;

    CaConfig *config;
    GCancellable *cancellable; /* life of start..stop */
    gboolean started;

    GDBusConnection *bus;
    MMManager *manager;
    GSource *retry; /* owned: get the bus / manager again */
    CaBackoff backoff;
    gboolean manager_present; /* ModemManager owns its name */

    gboolean settled;
    GSource *settle_limit; /* owned */

    /* The selected modem and what hangs off it */
    MMObject *object;
    GCancellable *object_cancellable; /* cancelled when the object is dropped */
    char *sim_path;                   /* SIM path the MMSim below belongs to (or in flight) */
    MMSim *sim;
    GStrv bearer_paths; /* bearer list the array below belongs to (or in flight) */
    GPtrArray *bearers; /* MMBearer */
    MMLocation3gpp *location;
    guint loads_pending; /* SIM / bearer reads in flight for settling */
    gboolean signal_unsupported;
    gboolean location_unsupported;
    gboolean warned_no_pin;
    gboolean warned_no_match;

    /* Preparation (PIN, enable, setup) */
    gboolean preparing;
    gboolean prepare_again;
    GSource *prepare_retry; /* owned */
    CaBackoff prepare_backoff;
    CaModemPinStatus pin_status;

    /* The refused PIN: sha256(equipment id, PIN), kept across replugs, ModemManager and agent
     * restarts (state-dir), so a wrong PIN is never sent twice. */
    char *pin_rejected;
    /* A SendPin whose outcome is unknown (D-Bus error or cancelled in flight): its key and
     * the SIM's PIN attempts left before it. Sent again only once the SIM shows it did not
     * count an attempt; a reload forgets it. */
    char *pin_uncertain;
    guint pin_uncertain_retries;

    CaModemFacts facts;
    GSource *facts_idle; /* owned: coalesced rebuild */
};

G_DEFINE_FINAL_TYPE(CaModem, ca_modem, G_TYPE_OBJECT)

enum { SIGNAL_OBJECT_CHANGED, SIGNAL_FACTS_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void get_bus(CaModem *self);
static void reselect(CaModem *self);
static void schedule_facts(CaModem *self);
static void prepare(CaModem *self);

static const char *
short_path(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;

    /* "Modem/3" is what a person recognises from mmcli. */
    if (slash && slash > path) {
        const char *p = slash - 1;
        while (p > path && *p != '/')
            p--;
        return *p == '/' ? p + 1 : p;
    }
    return path ? path : "(none)";
}

/*****************************************************************************/
/* Refused PIN memory */

static char *
pin_key(const char *equipment_id, const char *pin)
{
    g_autofree char *text = g_strconcat(equipment_id ? equipment_id : "", "\n", pin, NULL);

    return g_compute_checksum_for_string(G_CHECKSUM_SHA256, text, -1);
}

static char *
pin_rejected_path(CaModem *self)
{
    return g_build_filename(ca_config_get_string(self->config, "agent", "state-dir"),
                            PIN_REJECTED_FILE, NULL);
}

static void
load_pin_rejected(CaModem *self)
{
    g_autofree char *path = pin_rejected_path(self);
    g_autofree char *text = NULL;

    g_clear_pointer(&self->pin_rejected, g_free);
    if (g_file_get_contents(path, &text, NULL, NULL))
        self->pin_rejected = g_strdup(g_strstrip(text));
}

static void
store_pin_rejected(CaModem *self, const char *key)
{
    g_autofree char *path = pin_rejected_path(self);
    g_autofree char *dir = g_path_get_dirname(path);
    g_autoptr(GError) error = NULL;
    g_autofree char *text = g_strconcat(key, "\n", NULL);

    g_free(self->pin_rejected);
    self->pin_rejected = g_strdup(key);
    /* A small local file: written at once so a crash or restart cannot retry the PIN. */
    if (g_mkdir_with_parents(dir, 0700) != 0 ||
        !g_file_set_contents_full(path, text, -1, G_FILE_SET_CONTENTS_CONSISTENT, 0600, &error))
        ca_warn("cannot record the refused PIN in %s (%s); it is remembered until the agent "
                "restarts",
                path, error ? error->message : g_strerror(errno));
}

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
                ca_msg("%s: %s -> failed (%s)", short_path(now->path),
                       mm_modem_state_get_string(old->state),
                       mm_modem_state_failed_reason_get_string(now->failed_reason));
            else
                ca_msg("%s: %s -> %s", short_path(now->path), mm_modem_state_get_string(old->state),
                       mm_modem_state_get_string(now->state));
        }
        if (old->registration != now->registration)
            ca_msg("%s: registration %s -> %s", short_path(now->path),
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
        g_signal_emit(self, signals[SIGNAL_FACTS_CHANGED], 0);
    return G_SOURCE_REMOVE;
}

static void
schedule_facts(CaModem *self)
{
    if (self->facts_idle)
        return;
    self->facts_idle = g_idle_source_new();
    g_source_set_priority(self->facts_idle, G_PRIORITY_DEFAULT);
    g_source_set_callback(self->facts_idle, facts_idle_cb, self, NULL);
    g_source_attach(self->facts_idle, NULL);
}

/* Rebuild now (not coalesced), so callers can peek a fresh snapshot before they emit. */
static void
flush_facts(CaModem *self)
{
    ca_clear_source(&self->facts_idle);
    facts_idle_cb(self);
}

static void
set_settled(CaModem *self)
{
    if (self->settled)
        return;
    ca_clear_source(&self->settle_limit);
    ca_clear_source(&self->facts_idle);
    facts_idle_cb(self); /* not settled yet: rebuilds without emitting */
    self->settled = TRUE;
    ca_debug("first look at ModemManager done: %s",
             self->facts.present ? short_path(self->facts.path) : "no modem");
    g_signal_emit(self, signals[SIGNAL_FACTS_CHANGED], 0);
}

static gboolean
settle_limit_cb(gpointer user_data)
{
    CaModem *self = user_data;

    ca_clear_source(&self->settle_limit);
    set_settled(self);
    return G_SOURCE_REMOVE;
}

static void
check_settled(CaModem *self)
{
    if (!self->settled && self->manager && self->loads_pending == 0)
        set_settled(self);
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

static void
property_notify_cb(GObject *proxy, GParamSpec *pspec, gpointer user_data)
{
    schedule_facts(CA_MODEM(user_data));
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
        g_signal_connect_object(sim, "notify", G_CALLBACK(property_notify_cb), self, 0);
        schedule_facts(self);
    } else if (current && !sim && error &&
               !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        ca_warn("cannot read the SIM of %s: %s", short_path(mm_object_get_path(self->object)),
                error->message);
    }
    check_settled(self);
    g_object_unref(self);
}

static void
update_sim(CaModem *self, MMModem *modem)
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
    schedule_facts(self);
    if (path)
        mm_modem_get_sim(modem, self->object_cancellable, sim_ready, load_context_new(self));
}

static void
clear_bearers(CaModem *self)
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
        clear_bearers(self);
        self->bearers = g_ptr_array_new_with_free_func(g_object_unref);
        for (GList *l = list; l; l = l->next) {
            g_signal_connect_object(l->data, "notify", G_CALLBACK(property_notify_cb), self, 0);
            g_ptr_array_add(self->bearers, g_object_ref(l->data));
        }
        schedule_facts(self);
    } else if (current && error && !g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        ca_warn("cannot list the bearers of %s: %s", short_path(mm_object_get_path(self->object)),
                error->message);
    }
    g_list_free_full(list, g_object_unref);
    check_settled(self);
    g_object_unref(self);
}

static void
update_bearers(CaModem *self, MMModem *modem)
{
    const char *const *paths = mm_modem_get_bearer_paths(modem);

    if (self->bearer_paths && paths &&
        g_strv_equal((const char *const *) self->bearer_paths, paths))
        return;
    if (!self->bearer_paths && (!paths || !paths[0]) && self->bearers)
        return;
    g_strfreev(self->bearer_paths);
    self->bearer_paths = g_strdupv((char **) paths);
    clear_bearers(self);
    schedule_facts(self);
    if (paths && paths[0])
        mm_modem_list_bearers(modem, self->object_cancellable, bearers_ready,
                              load_context_new(self));
    else
        self->bearers = g_ptr_array_new_with_free_func(g_object_unref);
}

static void
location_notify_cb(GObject *proxy, GParamSpec *pspec, gpointer user_data)
{
    CaModem *self = CA_MODEM(user_data);
    MMModemLocation *loc = MM_MODEM_LOCATION(proxy);
    MMLocation3gpp *signaled;

    if (!mm_modem_location_signals_location(loc))
        return;
    signaled = mm_modem_location_peek_signaled_3gpp(loc);
    if (signaled && signaled != self->location) {
        g_set_object(&self->location, signaled);
        schedule_facts(self);
    }
}

/*****************************************************************************/
/* Preparation: unlock, enable, Signal and Location setup (a GTask step machine) */

typedef enum {
    PREPARE_STEP_FIRST,
    PREPARE_STEP_UNLOCK,        /* SIM PIN locked: SendPin from pin-file, once per PIN */
    PREPARE_STEP_ENABLE,        /* disabled and enable=true: Enable */
    PREPARE_STEP_SIGNAL,        /* Signal.Setup(signal-rate) when the rate differs */
    PREPARE_STEP_LOCATION,      /* Location.Setup(+3gpp-lac-ci, signal location) */
    PREPARE_STEP_LOCATION_READ, /* first read of the 3GPP location */
    PREPARE_STEP_LAST,
} PrepareStep;

typedef struct {
    PrepareStep step;
    MMObject *object;
    char *pin;
    char *pin_key;
    guint retries_before; /* PIN attempts left before SendPin (MM_UNLOCK_RETRIES_UNKNOWN) */
    GError *error;        /* a failure that warrants a retry */
} PrepareContext;

static void
prepare_context_free(gpointer data)
{
    PrepareContext *ctx = data;

    g_object_unref(ctx->object);
    if (ctx->pin)
        memset(ctx->pin, 0, strlen(ctx->pin));
    g_free(ctx->pin);
    g_free(ctx->pin_key);
    g_clear_error(&ctx->error);
    g_free(ctx);
}

static void prepare_step(GTask *task);

static void
set_pin_status(CaModem *self, CaModemPinStatus status)
{
    if (self->pin_status == status)
        return;
    self->pin_status = status;
    schedule_facts(self);
}

static guint
pin_retries_left(MMModem *modem)
{
    MMUnlockRetries *retries = modem ? mm_modem_peek_unlock_retries(modem) : NULL;

    return retries ? mm_unlock_retries_get(retries, MM_MODEM_LOCK_SIM_PIN)
                   : MM_UNLOCK_RETRIES_UNKNOWN;
}

static void
reject_pin(CaModem *self, MMObject *object, const char *key, guint left)
{
    store_pin_rejected(self, key);
    g_clear_pointer(&self->pin_uncertain, g_free);
    if (left == MM_UNLOCK_RETRIES_UNKNOWN)
        ca_err("%s: the SIM refused the PIN from %s; it will not be sent again until the file "
               "changes",
               short_path(mm_object_get_path(object)),
               ca_config_get_string(self->config, "modem", "pin-file"));
    else
        ca_err("%s: the SIM refused the PIN from %s (%u attempts left); it will not be sent "
               "again until the file changes",
               short_path(mm_object_get_path(object)),
               ca_config_get_string(self->config, "modem", "pin-file"), left);
    set_pin_status(self, CA_MODEM_PIN_WRONG);
}

static gboolean
is_wrong_pin_error(const GError *error)
{
    g_autofree char *remote = NULL;

    if (g_error_matches(error, MM_MOBILE_EQUIPMENT_ERROR,
                        MM_MOBILE_EQUIPMENT_ERROR_INCORRECT_PASSWORD))
        return TRUE;
    remote = g_dbus_error_get_remote_error(error);
    return remote && g_str_has_suffix(remote, ".IncorrectPassword");
}

static void
send_pin_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    CaModem *self = g_task_get_source_object(task);
    PrepareContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;

    if (mm_sim_send_pin_finish(MM_SIM(source), result, &error)) {
        ca_msg("%s: SIM unlocked with the PIN from pin-file",
               short_path(mm_object_get_path(ctx->object)));
        g_clear_pointer(&self->pin_uncertain, g_free);
        set_pin_status(self, CA_MODEM_PIN_UNLOCKED);
    } else if (is_wrong_pin_error(error)) {
        reject_pin(self, ctx->object, ctx->pin_key,
                   pin_retries_left(mm_object_peek_modem(ctx->object)));
    } else {
        /* The SIM may or may not have seen it: remember, so it is not blindly sent again. */
        g_free(self->pin_uncertain);
        self->pin_uncertain = g_strdup(ctx->pin_key);
        self->pin_uncertain_retries = ctx->retries_before;
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            ctx->error = g_steal_pointer(&error);
        } else {
            set_pin_status(self, CA_MODEM_PIN_FAILED);
            ctx->error =
                g_error_new(CA_ERROR, CA_ERROR_MODEM, "SendPin failed: %s", error->message);
        }
    }
    /* After an unlock ModemManager initialises the modem again; its state change brings
     * us back for the remaining steps. */
    ctx->step = PREPARE_STEP_LAST;
    prepare_step(task);
}

static void
unlock_sim_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    CaModem *self = g_task_get_source_object(task);
    PrepareContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    g_autoptr(MMSim) sim = mm_modem_get_sim_finish(MM_MODEM(source), result, &error);

    if (!sim) {
        set_pin_status(self, CA_MODEM_PIN_FAILED);
        ctx->error =
            error ? g_error_new(CA_ERROR, CA_ERROR_MODEM, "cannot get the SIM: %s", error->message)
                  : g_error_new_literal(CA_ERROR, CA_ERROR_MODEM, "the modem has no SIM");
        ctx->step = PREPARE_STEP_LAST;
        prepare_step(task);
        return;
    }
    ca_msg("%s: SIM locked, sending the PIN from pin-file",
           short_path(mm_object_get_path(ctx->object)));
    mm_sim_send_pin(sim, ctx->pin, g_task_get_cancellable(task), send_pin_ready, task);
}

/* Decide what to do about a locked modem. Returns TRUE when an async call was started. */
static gboolean
prepare_unlock(GTask *task, MMModem *modem)
{
    CaModem *self = g_task_get_source_object(task);
    PrepareContext *ctx = g_task_get_task_data(task);
    const char *pin_file = ca_config_get_string(self->config, "modem", "pin-file");
    MMModemLock lock = mm_modem_get_unlock_required(modem);
    g_autoptr(GError) error = NULL;

    if (mm_modem_get_state(modem) != MM_MODEM_STATE_LOCKED)
        return FALSE;
    if (lock != MM_MODEM_LOCK_SIM_PIN) {
        if (lock != MM_MODEM_LOCK_NONE && lock != MM_MODEM_LOCK_UNKNOWN) {
            if (self->pin_status != CA_MODEM_PIN_NEEDS_PUK)
                ca_err("%s: the SIM needs %s, which the agent cannot give",
                       short_path(mm_object_get_path(ctx->object)), mm_modem_lock_get_string(lock));
            set_pin_status(self, CA_MODEM_PIN_NEEDS_PUK);
        }
        return FALSE;
    }
    if (!*pin_file) {
        if (!self->warned_no_pin)
            ca_warn("%s: SIM locked by a PIN and no [modem] pin-file is configured",
                    short_path(mm_object_get_path(ctx->object)));
        self->warned_no_pin = TRUE;
        set_pin_status(self, CA_MODEM_PIN_NO_FILE);
        return FALSE;
    }
    ctx->pin = ca_modem_read_pin_file(pin_file, &error);
    if (!ctx->pin) {
        if (!self->warned_no_pin)
            ca_err("%s: SIM locked by a PIN: %s", short_path(mm_object_get_path(ctx->object)),
                   error->message);
        self->warned_no_pin = TRUE;
        set_pin_status(self, CA_MODEM_PIN_NO_FILE);
        return FALSE;
    }
    self->warned_no_pin = FALSE;
    ctx->pin_key = pin_key(mm_modem_get_equipment_identifier(modem), ctx->pin);
    if (self->pin_rejected && g_str_equal(self->pin_rejected, ctx->pin_key)) {
        if (self->pin_status != CA_MODEM_PIN_WRONG)
            ca_err("%s: SIM locked; the PIN in %s was refused before and is not sent again",
                   short_path(mm_object_get_path(ctx->object)), pin_file);
        set_pin_status(self, CA_MODEM_PIN_WRONG);
        return FALSE;
    }
    ctx->retries_before = pin_retries_left(modem);
    if (self->pin_uncertain && g_str_equal(self->pin_uncertain, ctx->pin_key)) {
        /* The last SendPin of this PIN ended without an answer and the SIM is still locked. */
        if (self->pin_uncertain_retries != MM_UNLOCK_RETRIES_UNKNOWN &&
            ctx->retries_before != MM_UNLOCK_RETRIES_UNKNOWN &&
            ctx->retries_before < self->pin_uncertain_retries) {
            reject_pin(self, ctx->object, ctx->pin_key, ctx->retries_before);
            return FALSE;
        }
        if (self->pin_uncertain_retries == MM_UNLOCK_RETRIES_UNKNOWN ||
            ctx->retries_before == MM_UNLOCK_RETRIES_UNKNOWN) {
            if (self->pin_status != CA_MODEM_PIN_FAILED)
                ca_err("%s: SIM still locked after a SendPin without answer, and the SIM does not "
                       "tell its attempts left: not sending the PIN again (reload to retry)",
                       short_path(mm_object_get_path(ctx->object)));
            set_pin_status(self, CA_MODEM_PIN_FAILED);
            return FALSE;
        }
        /* Same attempts left: the SIM never saw it; sending again is safe. */
        g_clear_pointer(&self->pin_uncertain, g_free);
    }
    set_pin_status(self, CA_MODEM_PIN_SENDING);
    mm_modem_get_sim(modem, g_task_get_cancellable(task), unlock_sim_ready, task);
    return TRUE;
}

static void
enable_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    PrepareContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;

    if (!mm_modem_enable_finish(MM_MODEM(source), result, &error)) {
        ctx->error =
            g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                ? g_steal_pointer(&error)
                : g_error_new(CA_ERROR, CA_ERROR_MODEM, "Enable failed: %s", error->message);
        ctx->step = PREPARE_STEP_LAST;
    } else {
        ca_msg("%s: enabled", short_path(mm_object_get_path(ctx->object)));
        ctx->step++;
    }
    prepare_step(task);
}

static void
signal_setup_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    CaModem *self = g_task_get_source_object(task);
    PrepareContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;

    if (!mm_modem_signal_setup_finish(MM_MODEM_SIGNAL(source), result, &error)) {
        if (g_error_matches(error, MM_CORE_ERROR, MM_CORE_ERROR_UNSUPPORTED)) {
            ca_info("%s: extended signal values unsupported",
                    short_path(mm_object_get_path(ctx->object)));
            self->signal_unsupported = TRUE;
        } else if (!ctx->error) {
            ctx->error = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                             ? g_steal_pointer(&error)
                             : g_error_new(CA_ERROR, CA_ERROR_MODEM, "Signal.Setup failed: %s",
                                           error->message);
        }
    }
    ctx->step++;
    prepare_step(task);
}

static void
location_setup_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    CaModem *self = g_task_get_source_object(task);
    PrepareContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;

    if (!mm_modem_location_setup_finish(MM_MODEM_LOCATION(source), result, &error)) {
        if (g_error_matches(error, MM_CORE_ERROR, MM_CORE_ERROR_UNSUPPORTED)) {
            self->location_unsupported = TRUE;
        } else if (!ctx->error) {
            ctx->error = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)
                             ? g_steal_pointer(&error)
                             : g_error_new(CA_ERROR, CA_ERROR_MODEM, "Location.Setup failed: %s",
                                           error->message);
        }
        ctx->step = PREPARE_STEP_LAST;
    } else {
        ctx->step++;
    }
    prepare_step(task);
}

static void
location_read_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    GTask *task = user_data;
    CaModem *self = g_task_get_source_object(task);
    PrepareContext *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    g_autoptr(MMLocation3gpp) loc =
        mm_modem_location_get_3gpp_finish(MM_MODEM_LOCATION(source), result, &error);

    if (loc && self->object == ctx->object) {
        g_set_object(&self->location, loc);
        schedule_facts(self);
    } else if (error && g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) && !ctx->error) {
        ctx->error = g_steal_pointer(&error);
    } else if (error) {
        /* Not worth a retry: signalled updates fill it in later. */
        ca_debug("reading the 3GPP location: %s", error->message);
    }
    ctx->step++;
    prepare_step(task);
}

static void
prepare_step(GTask *task)
{
    CaModem *self = g_task_get_source_object(task);
    PrepareContext *ctx = g_task_get_task_data(task);
    MMModem *modem = mm_object_peek_modem(ctx->object);
    MMModemState state = modem ? mm_modem_get_state(modem) : MM_MODEM_STATE_UNKNOWN;
    GCancellable *cancellable = g_task_get_cancellable(task);

    if (g_cancellable_is_cancelled(cancellable) && ctx->step != PREPARE_STEP_LAST) {
        g_clear_error(&ctx->error);
        g_cancellable_set_error_if_cancelled(cancellable, &ctx->error);
        ctx->step = PREPARE_STEP_LAST;
    }
    if (!modem && ctx->step != PREPARE_STEP_LAST)
        ctx->step = PREPARE_STEP_LAST;

    switch (ctx->step) {
    case PREPARE_STEP_FIRST:
        ctx->step++;
        G_GNUC_FALLTHROUGH;
    case PREPARE_STEP_UNLOCK:
        if (state == MM_MODEM_STATE_LOCKED) {
            /* Nothing else can be done on a locked modem. */
            ctx->step = PREPARE_STEP_LAST;
            if (prepare_unlock(task, modem))
                return;
            prepare_step(task);
            return;
        }
        ctx->step++;
        G_GNUC_FALLTHROUGH;
    case PREPARE_STEP_ENABLE:
        if (state == MM_MODEM_STATE_DISABLED &&
            ca_config_get_bool(self->config, "modem", "enable")) {
            ca_msg("%s: disabled, enabling", short_path(mm_object_get_path(ctx->object)));
            mm_modem_enable(modem, cancellable, enable_ready, task);
            return;
        }
        ctx->step++;
        G_GNUC_FALLTHROUGH;
    case PREPARE_STEP_SIGNAL: {
        MMModemSignal *sig = mm_object_peek_modem_signal(ctx->object);
        guint rate = (guint) ca_config_get_int(self->config, "telemetry", "signal-rate");

        /* The _ready callbacks advance ctx->step; a skipped step advances here. */
        if (sig && !self->signal_unsupported && state >= MM_MODEM_STATE_ENABLED &&
            mm_modem_signal_get_rate(sig) != rate) {
            ca_debug("Signal.Setup(%u)", rate);
            mm_modem_signal_setup(sig, rate, cancellable, signal_setup_ready, task);
            return;
        }
        ctx->step++;
    }
        G_GNUC_FALLTHROUGH;
    case PREPARE_STEP_LOCATION: {
        MMModemLocation *loc = mm_object_peek_modem_location(ctx->object);
        MMModemLocationSource want = MM_MODEM_LOCATION_SOURCE_3GPP_LAC_CI;

        if (!loc || self->location_unsupported || state < MM_MODEM_STATE_ENABLED ||
            !(mm_modem_location_get_capabilities(loc) & want)) {
            ctx->step = PREPARE_STEP_LAST;
            prepare_step(task);
            return;
        }
        if (!(mm_modem_location_get_enabled(loc) & want) ||
            !mm_modem_location_signals_location(loc)) {
            ca_debug("Location.Setup(+3gpp-lac-ci, signal)");
            mm_modem_location_setup(loc, mm_modem_location_get_enabled(loc) | want, TRUE,
                                    cancellable, location_setup_ready, task);
            return;
        }
        ctx->step++;
    }
        G_GNUC_FALLTHROUGH;
    case PREPARE_STEP_LOCATION_READ: {
        MMModemLocation *loc = mm_object_peek_modem_location(ctx->object);

        if (loc && !self->location && mm_modem_location_peek_signaled_3gpp(loc)) {
            g_set_object(&self->location, mm_modem_location_peek_signaled_3gpp(loc));
            schedule_facts(self);
        }
        if (loc && !self->location) {
            mm_modem_location_get_3gpp(loc, cancellable, location_read_ready, task);
            return;
        }
        ctx->step++;
    }
        G_GNUC_FALLTHROUGH;
    case PREPARE_STEP_LAST:
        if (ctx->error)
            g_task_return_error(task, g_steal_pointer(&ctx->error));
        else
            g_task_return_boolean(task, TRUE);
        g_object_unref(task);
        return;
    }
    g_assert_not_reached();
}

static gboolean
prepare_retry_cb(gpointer user_data)
{
    CaModem *self = user_data;

    ca_clear_source(&self->prepare_retry);
    prepare(self);
    return G_SOURCE_REMOVE;
}

static void
prepare_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaModem *self = CA_MODEM(source);
    g_autoptr(GError) error = NULL;

    self->preparing = FALSE;
    if (!g_task_propagate_boolean(G_TASK(result), &error)) {
        if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            return;
        if (self->object && !self->prepare_retry) {
            guint delay = ca_backoff_next(&self->prepare_backoff);

            ca_warn("preparing %s: %s; will retry in %u s",
                    short_path(mm_object_get_path(self->object)), error->message,
                    (delay + 999) / 1000);
            self->prepare_retry = g_timeout_source_new(delay);
            g_source_set_callback(self->prepare_retry, prepare_retry_cb, self, NULL);
            g_source_attach(self->prepare_retry, NULL);
        }
        return;
    }
    if (self->prepare_again) {
        self->prepare_again = FALSE;
        prepare(self);
    }
}

/* Bring the selected modem forward as far as it can go now; runs again on state changes. */
static void
prepare(CaModem *self)
{
    GTask *task;
    PrepareContext *ctx;

    if (!self->object)
        return;
    if (self->preparing) {
        self->prepare_again = TRUE;
        return;
    }
    if (self->prepare_retry)
        return; /* a retry is already scheduled after a failure */
    self->preparing = TRUE;
    self->prepare_again = FALSE;
    task = g_task_new(self, self->object_cancellable, prepare_ready, NULL);
    g_task_set_source_tag(task, prepare);
    ctx = g_new0(PrepareContext, 1);
    ctx->object = g_object_ref(self->object);
    g_task_set_task_data(task, ctx, prepare_context_free);
    prepare_step(task);
}

/*****************************************************************************/
/* Following the selected object */

static void
modem_notify_cb(GObject *proxy, GParamSpec *pspec, gpointer user_data)
{
    CaModem *self = CA_MODEM(user_data);
    MMModem *modem = MM_MODEM(proxy);
    const char *name = pspec->name;

    schedule_facts(self);
    if (g_str_equal(name, "sim"))
        update_sim(self, modem);
    else if (g_str_equal(name, "bearers"))
        update_bearers(self, modem);
    else if (g_str_equal(name, "state") || g_str_equal(name, "unlock-required")) {
        if (mm_modem_get_state(modem) < MM_MODEM_STATE_ENABLED)
            g_clear_object(&self->location);
        if (g_str_equal(name, "state") && mm_modem_get_state(modem) >= MM_MODEM_STATE_ENABLED) {
            ca_backoff_reset(&self->prepare_backoff);
            ca_clear_source(&self->prepare_retry);
        }
        prepare(self);
    }
}

static void
connect_interface(CaModem *self, GDBusInterface *iface)
{
    if (MM_IS_MODEM(iface)) {
        g_signal_connect_object(iface, "notify", G_CALLBACK(modem_notify_cb), self, 0);
        update_sim(self, MM_MODEM(iface));
        update_bearers(self, MM_MODEM(iface));
    } else if (MM_IS_MODEM_LOCATION(iface)) {
        g_signal_connect_object(iface, "notify", G_CALLBACK(location_notify_cb), self, 0);
        g_signal_connect_object(iface, "notify", G_CALLBACK(property_notify_cb), self, 0);
    } else {
        g_signal_connect_object(iface, "notify", G_CALLBACK(property_notify_cb), self, 0);
    }
}

static void
interface_added_cb(GDBusObject *object, GDBusInterface *iface, gpointer user_data)
{
    CaModem *self = CA_MODEM(user_data);

    connect_interface(self, iface);
    schedule_facts(self);
    prepare(self); /* Signal/Location may have just appeared */
}

static void
interface_removed_cb(GDBusObject *object, GDBusInterface *iface, gpointer user_data)
{
    CaModem *self = CA_MODEM(user_data);

    g_signal_handlers_disconnect_by_data(iface, self);
    if (MM_IS_MODEM_LOCATION(iface))
        g_clear_object(&self->location);
    schedule_facts(self);
}

static void
drop_object(CaModem *self)
{
    g_autolist(GDBusInterface) ifaces = NULL;

    if (!self->object)
        return;
    g_cancellable_cancel(self->object_cancellable);
    g_clear_object(&self->object_cancellable);
    ifaces = g_dbus_object_get_interfaces(G_DBUS_OBJECT(self->object));
    for (GList *l = ifaces; l; l = l->next)
        g_signal_handlers_disconnect_by_data(l->data, self);
    g_signal_handlers_disconnect_by_data(self->object, self);
    g_clear_object(&self->object);
    if (self->sim) {
        g_signal_handlers_disconnect_by_data(self->sim, self);
        g_clear_object(&self->sim);
    }
    g_clear_pointer(&self->sim_path, g_free);
    clear_bearers(self);
    g_clear_pointer(&self->bearer_paths, g_strfreev);
    g_clear_object(&self->location);
    ca_clear_source(&self->prepare_retry);
    ca_backoff_reset(&self->prepare_backoff);
    self->preparing = FALSE;
    self->prepare_again = FALSE;
    self->signal_unsupported = self->location_unsupported = FALSE;
    self->warned_no_pin = FALSE;
    self->pin_status = CA_MODEM_PIN_NONE;
}

static void
take_object(CaModem *self, MMObject *object)
{
    g_autolist(GDBusInterface) ifaces = NULL;
    MMModem *modem = mm_object_peek_modem(object);

    self->object = g_object_ref(object);
    self->object_cancellable = g_cancellable_new();
    ca_msg("using modem %s (%s %s, %s)", short_path(mm_object_get_path(object)),
           mm_modem_get_manufacturer(modem) ? mm_modem_get_manufacturer(modem) : "?",
           mm_modem_get_model(modem) ? mm_modem_get_model(modem) : "?",
           ca_log_personal(mm_modem_get_equipment_identifier(modem)));
    g_signal_connect_object(object, "interface-added", G_CALLBACK(interface_added_cb), self, 0);
    g_signal_connect_object(object, "interface-removed", G_CALLBACK(interface_removed_cb), self, 0);
    ifaces = g_dbus_object_get_interfaces(G_DBUS_OBJECT(object));
    for (GList *l = ifaces; l; l = l->next)
        connect_interface(self, l->data);
}

static gint
compare_objects(gconstpointer a, gconstpointer b)
{
    const char *pa = g_dbus_object_get_object_path(*(GDBusObject **) a);
    const char *pb = g_dbus_object_get_object_path(*(GDBusObject **) b);
    gsize la = strlen(pa), lb = strlen(pb);

    /* Modem/9 before Modem/10: the longest-known modem is "the first". */
    return la != lb ? (la < lb ? -1 : 1) : strcmp(pa, pb);
}

static gboolean
object_matches(CaModem *self, MMObject *object)
{
    MMModem *modem = mm_object_peek_modem(object);

    return modem &&
           ca_modem_match(ca_config_get_string(self->config, "modem", "match"),
                          mm_modem_get_equipment_identifier(modem), mm_modem_get_device(modem));
}

static void
candidate_notify_cb(GObject *proxy, GParamSpec *pspec, gpointer user_data)
{
    CaModem *self = CA_MODEM(user_data);

    if (!self->object)
        reselect(self);
}

/* Pick the modem: keep the current one while it exists and matches, else the first that
 * matches [modem] match. Emits object-changed when the choice changes. */
static void
reselect(CaModem *self)
{
    g_autoptr(GPtrArray) candidates = g_ptr_array_new_with_free_func(g_object_unref);
    MMObject *pick = NULL;
    GList *objects;

    if (self->manager) {
        objects = g_dbus_object_manager_get_objects(G_DBUS_OBJECT_MANAGER(self->manager));
        for (GList *l = objects; l; l = l->next)
            g_ptr_array_add(candidates, l->data); /* takes the reference */
        g_list_free(objects);
    }
    g_ptr_array_sort(candidates, compare_objects);
    for (guint i = 0; i < candidates->len; i++) {
        MMObject *o = g_ptr_array_index(candidates, i);

        if (o == self->object && object_matches(self, o)) {
            pick = o;
            break;
        }
    }
    for (guint i = 0; !pick && i < candidates->len; i++) {
        MMObject *o = g_ptr_array_index(candidates, i);

        if (object_matches(self, o))
            pick = o;
        else if (mm_object_peek_modem(o) &&
                 !g_object_get_data(G_OBJECT(o), "ca-modem-candidate-watch")) {
            /* Its identity may not be known yet: look again when it is. */
            g_object_set_data(G_OBJECT(o), "ca-modem-candidate-watch", GINT_TO_POINTER(1));
            g_signal_connect_object(mm_object_peek_modem(o), "notify::equipment-identifier",
                                    G_CALLBACK(candidate_notify_cb), self, 0);
            g_signal_connect_object(mm_object_peek_modem(o), "notify::device",
                                    G_CALLBACK(candidate_notify_cb), self, 0);
        }
    }
    if (!pick && candidates->len > 0 && !self->warned_no_match) {
        ca_warn("no modem matches [modem] match=%s (%u present)",
                ca_log_personal(ca_config_get_string(self->config, "modem", "match")),
                candidates->len);
        self->warned_no_match = TRUE;
    }
    if (pick == self->object)
        return;
    if (self->object)
        ca_msg("modem %s is gone", short_path(mm_object_get_path(self->object)));
    drop_object(self);
    if (pick) {
        self->warned_no_match = FALSE;
        take_object(self, pick);
    }
    flush_facts(self);
    g_signal_emit(self, signals[SIGNAL_OBJECT_CHANGED], 0);
    if (self->object)
        prepare(self);
}

/*****************************************************************************/
/* Following ModemManager */

static void
object_added_cb(GDBusObjectManager *manager, GDBusObject *object, gpointer user_data)
{
    ca_debug("object added: %s", g_dbus_object_get_object_path(object));
    reselect(CA_MODEM(user_data));
}

static void
object_removed_cb(GDBusObjectManager *manager, GDBusObject *object, gpointer user_data)
{
    ca_debug("object removed: %s", g_dbus_object_get_object_path(object));
    reselect(CA_MODEM(user_data));
}

static void
name_owner_cb(GObject *manager, GParamSpec *pspec, gpointer user_data)
{
    CaModem *self = CA_MODEM(user_data);
    g_autofree char *owner =
        g_dbus_object_manager_client_get_name_owner(G_DBUS_OBJECT_MANAGER_CLIENT(manager));
    gboolean present = owner != NULL;

    if (present == self->manager_present)
        return;
    self->manager_present = present;
    if (present)
        ca_msg("ModemManager appeared on the system bus (%s)", owner);
    else
        ca_msg("ModemManager left the system bus; waiting for it");
    reselect(self);
}

static void
drop_manager(CaModem *self)
{
    drop_object(self);
    if (self->manager)
        g_signal_handlers_disconnect_by_data(self->manager, self);
    g_clear_object(&self->manager);
    self->manager_present = FALSE;
    if (self->bus)
        g_signal_handlers_disconnect_by_data(self->bus, self);
    g_clear_object(&self->bus);
}

static gboolean
retry_cb(gpointer user_data)
{
    CaModem *self = user_data;

    ca_clear_source(&self->retry);
    get_bus(self);
    return G_SOURCE_REMOVE;
}

static void
schedule_retry(CaModem *self)
{
    guint delay = ca_backoff_next(&self->backoff);

    ca_clear_source(&self->retry);
    self->retry = g_timeout_source_new(delay);
    g_source_set_callback(self->retry, retry_cb, self, NULL);
    g_source_attach(self->retry, NULL);
}

static void
bus_closed_cb(GDBusConnection *bus, gboolean remote_peer_vanished, GError *error,
              gpointer user_data)
{
    CaModem *self = CA_MODEM(user_data);
    gboolean had = self->object != NULL;

    ca_warn("system bus closed; following ModemManager again once it is back");
    drop_manager(self);
    if (had) {
        flush_facts(self);
        g_signal_emit(self, signals[SIGNAL_OBJECT_CHANGED], 0);
    }
    schedule_retry(self);
}

static void
manager_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaModem *self = user_data; /* owned ref */
    g_autoptr(GError) error = NULL;
    MMManager *manager = mm_manager_new_finish(result, &error);

    if (!manager) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            ca_warn("cannot follow ModemManager: %s; will retry", error->message);
            schedule_retry(self);
        }
        g_object_unref(self);
        return;
    }
    if (!self->started) {
        g_object_unref(manager);
        g_object_unref(self);
        return;
    }
    ca_backoff_reset(&self->backoff);
    self->manager = manager;
    g_signal_connect(manager, "object-added", G_CALLBACK(object_added_cb), self);
    g_signal_connect(manager, "object-removed", G_CALLBACK(object_removed_cb), self);
    g_signal_connect(manager, "notify::name-owner", G_CALLBACK(name_owner_cb), self);
    name_owner_cb(G_OBJECT(manager), NULL, self);
    if (!self->manager_present)
        ca_msg("waiting for ModemManager on the system bus");
    reselect(self);
    check_settled(self);
    g_object_unref(self);
}

static void
bus_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    CaModem *self = user_data; /* owned ref */
    g_autoptr(GError) error = NULL;
    GDBusConnection *bus = ca_bus_new_finish(result, &error);

    if (!bus) {
        if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            ca_warn("system bus unavailable: %s; will retry", error->message);
            schedule_retry(self);
            if (!self->settled)
                set_settled(self);
        }
        g_object_unref(self);
        return;
    }
    if (!self->started) {
        g_object_unref(bus);
        g_object_unref(self);
        return;
    }
    self->bus = bus;
    g_signal_connect(bus, "closed", G_CALLBACK(bus_closed_cb), self);
    mm_manager_new(bus, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START, self->cancellable,
                   manager_ready, self);
}

static void
get_bus(CaModem *self)
{
    ca_bus_new_async(self->cancellable, bus_ready, g_object_ref(self));
}

/*****************************************************************************/
/* Public API */

CaModem *
ca_modem_new(CaConfig *config)
{
    CaModem *self = g_object_new(CA_TYPE_MODEM, NULL);

    self->config = ca_config_ref(config);
    return self;
}

void
ca_modem_start(CaModem *self)
{
    g_return_if_fail(CA_IS_MODEM(self));

    if (self->started)
        return;
    self->started = TRUE;
    g_clear_object(&self->cancellable);
    self->cancellable = g_cancellable_new();
    load_pin_rejected(self);
    /* Settle at the latest after SETTLE_LIMIT_MS, even when ModemManager hangs. */
    if (!self->settled) {
        self->settle_limit = g_timeout_source_new(SETTLE_LIMIT_MS);
        g_source_set_callback(self->settle_limit, settle_limit_cb, self, NULL);
        g_source_attach(self->settle_limit, NULL);
    }
    get_bus(self);
}

void
ca_modem_stop(CaModem *self)
{
    gboolean had;

    g_return_if_fail(CA_IS_MODEM(self));

    if (!self->started)
        return;
    self->started = FALSE;
    had = self->object != NULL;
    g_cancellable_cancel(self->cancellable);
    ca_clear_source(&self->retry);
    ca_clear_source(&self->settle_limit);
    drop_manager(self);
    if (had) {
        flush_facts(self);
        g_signal_emit(self, signals[SIGNAL_OBJECT_CHANGED], 0);
    }
    ca_clear_source(&self->facts_idle);
    self->settled = FALSE;
}

void
ca_modem_apply_config(CaModem *self, CaConfig *config)
{
    CaConfig *old;
    gboolean modem_changed;

    g_return_if_fail(CA_IS_MODEM(self));

    old = self->config;
    modem_changed = !ca_config_group_equal(old, config, "modem");
    self->config = ca_config_ref(config);
    if (g_strcmp0(ca_config_get_string(old, "agent", "state-dir"),
                  ca_config_get_string(config, "agent", "state-dir")) != 0)
        load_pin_rejected(self);
    ca_config_unref(old);
    if (!self->started)
        return;
    self->warned_no_pin = FALSE;
    g_clear_pointer(&self->pin_uncertain, g_free);
    if (modem_changed) {
        self->warned_no_match = FALSE;
        reselect(self);
    }
    /* Preparing is idempotent: a reload re-reads the pin-file (an operator fixing it
     * reloads), re-applies signal-rate and retries a failed enable now. */
    if (self->object) {
        ca_clear_source(&self->prepare_retry);
        ca_backoff_reset(&self->prepare_backoff);
        prepare(self);
    }
}

MMObject *
ca_modem_peek_object(CaModem *self)
{
    g_return_val_if_fail(CA_IS_MODEM(self), NULL);
    return self->object;
}

const CaModemFacts *
ca_modem_peek_facts(CaModem *self)
{
    g_return_val_if_fail(CA_IS_MODEM(self), NULL);
    return &self->facts;
}

gboolean
ca_modem_is_manager_present(CaModem *self)
{
    g_return_val_if_fail(CA_IS_MODEM(self), FALSE);
    return self->manager_present;
}

gboolean
ca_modem_is_settled(CaModem *self)
{
    g_return_val_if_fail(CA_IS_MODEM(self), FALSE);
    return self->settled;
}

static void
reset_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GTask) task = user_data;
    g_autoptr(GError) error = NULL;

    if (mm_modem_reset_finish(MM_MODEM(source), result, &error))
        g_task_return_boolean(task, TRUE);
    else if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_task_return_error(task, g_steal_pointer(&error));
    else
        g_task_return_new_error(task, CA_ERROR, CA_ERROR_MODEM, "modem reset failed: %s",
                                error->message);
}

void
ca_modem_reset_async(CaModem *self, GCancellable *cancellable, GAsyncReadyCallback callback,
                     gpointer user_data)
{
    g_autoptr(GTask) task = NULL;
    MMModem *modem;

    g_return_if_fail(CA_IS_MODEM(self));

    task = g_task_new(self, cancellable, callback, user_data);
    g_task_set_source_tag(task, ca_modem_reset_async);
    modem = self->object ? mm_object_peek_modem(self->object) : NULL;
    if (!modem) {
        g_task_return_new_error(task, CA_ERROR, CA_ERROR_NOT_READY, "no modem");
        return;
    }
    ca_msg("%s: resetting", short_path(mm_object_get_path(self->object)));
    mm_modem_reset(modem, cancellable, reset_ready, g_steal_pointer(&task));
}

gboolean
ca_modem_reset_finish(CaModem *self, GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, self), FALSE);
    return g_task_propagate_boolean(G_TASK(result), error);
}

/*****************************************************************************/
/* GObject */

static void
ca_modem_init(CaModem *self)
{
    ca_modem_facts_init(&self->facts);
    ca_backoff_init(&self->backoff, 1000, 60000, 20, NULL);
    ca_backoff_init(&self->prepare_backoff, PREPARE_RETRY_MIN_MS, PREPARE_RETRY_MAX_MS, 20, NULL);
}

static void
ca_modem_dispose(GObject *object)
{
    CaModem *self = CA_MODEM(object);

    self->started = FALSE;
    if (self->cancellable)
        g_cancellable_cancel(self->cancellable);
    ca_clear_source(&self->retry);
    ca_clear_source(&self->settle_limit);
    ca_clear_source(&self->facts_idle);
    drop_manager(self);
    G_OBJECT_CLASS(ca_modem_parent_class)->dispose(object);
}

static void
ca_modem_finalize(GObject *object)
{
    CaModem *self = CA_MODEM(object);

    ca_modem_facts_clear(&self->facts);
    g_clear_object(&self->cancellable);
    g_free(self->pin_rejected);
    g_free(self->pin_uncertain);
    if (self->config)
        ca_config_unref(self->config);
    G_OBJECT_CLASS(ca_modem_parent_class)->finalize(object);
}

static void
ca_modem_class_init(CaModemClass *klass)
{
    GObjectClass *object_class = G_OBJECT_CLASS(klass);

    object_class->dispose = ca_modem_dispose;
    object_class->finalize = ca_modem_finalize;
    /* Register ModemManager's D-Bus error names so remote errors map to their domains. */
    (void) MM_CORE_ERROR;
    (void) MM_MOBILE_EQUIPMENT_ERROR;

    signals[SIGNAL_OBJECT_CHANGED] =
        g_signal_new("object-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 0);
    signals[SIGNAL_FACTS_CHANGED] =
        g_signal_new("facts-changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                     NULL, G_TYPE_NONE, 0);
}
