/* modem: the libmm-glib adapter. Follows ModemManager (MMManager without auto-start,
 * object-added/removed, name owner), selects one modem, prepares it (PIN, enable, Signal
 * and Location setup) in a GTask step machine, and turns the D-Bus property cache into
 * a CaModemFacts snapshot. Owns: the manager, the selected object, its SIM and bearers.
 * Does not own: telemetry JSON (telemetry.c), MQTT or SMS. No synchronous D-Bus calls. */
#define CA_LOG_MODULE "modem"
#include "modem-private.h"

#include "autocleanups.h"
#include "backoff.h"
#include "bus.h"
#include "error.h"
#include "log.h"

#include <math.h>
#include <string.h>

#define MM_DBUS_NAME         "org.freedesktop.ModemManager1"
#define PREPARE_RETRY_MIN_MS 2000   /* failed enable/unlock: first retry */
#define PREPARE_RETRY_MAX_MS 120000 /* ... and the longest wait between retries */
#define SETTLE_LIMIT_MS      5000   /* settle at the latest this long after the manager is up */

/*****************************************************************************/
/* The object */

G_DEFINE_FINAL_TYPE(CaModem, ca_modem, G_TYPE_OBJECT)

enum { SIGNAL_OBJECT_CHANGED, SIGNAL_FACTS_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

static void get_bus(CaModem *self);
static void reselect(CaModem *self);

const char *
ca_modem_short_path(const char *path)
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

void
ca_modem_emit_facts_changed(CaModem *self)
{
    g_signal_emit(self, signals[SIGNAL_FACTS_CHANGED], 0);
}

/*****************************************************************************/
/* Following the selected object */

static void
modem_notify_cb(GObject *proxy, GParamSpec *pspec, gpointer user_data)
{
    CaModem *self = CA_MODEM(user_data);
    MMModem *modem = MM_MODEM(proxy);
    const char *name = pspec->name;

    ca_modem_schedule_facts(self);
    if (g_str_equal(name, "sim"))
        ca_modem_update_sim(self, modem);
    else if (g_str_equal(name, "bearers"))
        ca_modem_update_bearers(self, modem);
    else if (g_str_equal(name, "state") || g_str_equal(name, "unlock-required")) {
        if (mm_modem_get_state(modem) < MM_MODEM_STATE_ENABLED)
            g_clear_object(&self->location);
        if (g_str_equal(name, "state") && mm_modem_get_state(modem) >= MM_MODEM_STATE_ENABLED) {
            ca_backoff_reset(&self->prepare_backoff);
            ca_clear_source(&self->prepare_retry);
        }
        ca_modem_prepare(self);
    }
}

static void
connect_interface(CaModem *self, GDBusInterface *iface)
{
    if (MM_IS_MODEM(iface)) {
        g_signal_connect_object(iface, "notify", G_CALLBACK(modem_notify_cb), self, 0);
        ca_modem_update_sim(self, MM_MODEM(iface));
        ca_modem_update_bearers(self, MM_MODEM(iface));
    } else if (MM_IS_MODEM_LOCATION(iface)) {
        g_signal_connect_object(iface, "notify", G_CALLBACK(ca_modem_location_notify_cb), self, 0);
        g_signal_connect_object(iface, "notify", G_CALLBACK(ca_modem_property_notify_cb), self, 0);
    } else {
        g_signal_connect_object(iface, "notify", G_CALLBACK(ca_modem_property_notify_cb), self, 0);
    }
}

static void
interface_added_cb(GDBusObject *object, GDBusInterface *iface, gpointer user_data)
{
    CaModem *self = CA_MODEM(user_data);

    connect_interface(self, iface);
    ca_modem_schedule_facts(self);
    ca_modem_prepare(self); /* Signal/Location may have just appeared */
}

static void
interface_removed_cb(GDBusObject *object, GDBusInterface *iface, gpointer user_data)
{
    CaModem *self = CA_MODEM(user_data);

    g_signal_handlers_disconnect_by_data(iface, self);
    if (MM_IS_MODEM_LOCATION(iface))
        g_clear_object(&self->location);
    ca_modem_schedule_facts(self);
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
    ca_modem_ops_set_modem(self->ops, NULL);
    if (self->sim) {
        g_signal_handlers_disconnect_by_data(self->sim, self);
        g_clear_object(&self->sim);
    }
    g_clear_pointer(&self->sim_path, g_free);
    ca_modem_clear_bearers(self);
    g_clear_pointer(&self->bearer_paths, g_strfreev);
    g_clear_object(&self->location);
    ca_clear_source(&self->prepare_retry);
    ca_backoff_reset(&self->prepare_backoff);
    self->preparing = FALSE;
    self->prepare_again = FALSE;
    self->signal_unsupported = self->location_unsupported = FALSE;
    self->warned_no_pin = FALSE;
    self->pin_status = CA_MODEM_PIN_NONE;
    self->pin_wrong_retries = -1;
}

/* GDBusObjectManagerClient can keep an object that ModemManager removed while the manager
 * was being set up: the InterfacesRemoved signal handled before the GetManagedObjects
 * reply (GLib logs "Processing InterfaceRemoved signal ... but no object proxy exists").
 * Nothing would ever remove it, and a modem plugged in after it would never be used. So
 * the object is asked for its state once taken, and again when another modem appears; a
 * path that no longer exists is a ghost, never chosen again. */
#define GHOST_KEY "ca-modem-ghost"

typedef struct {
    CaModem *self;
    MMObject *object;
} Verify;

static void
verify_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Verify *v = user_data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);

    if (!reply && (g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT) ||
                   g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD) ||
                   g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_INTERFACE))) {
        ca_warn("modem %s no longer exists in ModemManager (%s): ignoring it",
                ca_modem_short_path(mm_object_get_path(v->object)), error->message);
        g_object_set_data(G_OBJECT(v->object), GHOST_KEY, GINT_TO_POINTER(1));
        if (v->self->object == v->object)
            reselect(v->self);
    }
    g_object_unref(v->object);
    g_object_unref(v->self);
    g_free(v);
}

static void
verify_object(CaModem *self)
{
    MMModem *modem = mm_object_peek_modem(self->object);
    Verify *v;

    if (!modem)
        return;
    v = g_new0(Verify, 1);
    v->self = g_object_ref(self);
    v->object = g_object_ref(self->object);
    g_dbus_connection_call(g_dbus_proxy_get_connection(G_DBUS_PROXY(modem)), MM_DBUS_NAME,
                           mm_object_get_path(self->object), "org.freedesktop.DBus.Properties",
                           "Get",
                           g_variant_new("(ss)", "org.freedesktop.ModemManager1.Modem", "State"),
                           G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, -1,
                           self->object_cancellable, verify_ready, v);
}

static void
take_object(CaModem *self, MMObject *object)
{
    g_autolist(GDBusInterface) ifaces = NULL;
    MMModem *modem = mm_object_peek_modem(object);

    self->object = g_object_ref(object);
    self->object_cancellable = g_cancellable_new();
    ca_modem_ops_set_modem(self->ops, modem);
    ca_msg("using modem %s (%s %s, %s)", ca_modem_short_path(mm_object_get_path(object)),
           mm_modem_get_manufacturer(modem) ? mm_modem_get_manufacturer(modem) : "?",
           mm_modem_get_model(modem) ? mm_modem_get_model(modem) : "?",
           ca_log_personal(mm_modem_get_equipment_identifier(modem)));
    g_signal_connect_object(object, "interface-added", G_CALLBACK(interface_added_cb), self, 0);
    g_signal_connect_object(object, "interface-removed", G_CALLBACK(interface_removed_cb), self, 0);
    ifaces = g_dbus_object_get_interfaces(G_DBUS_OBJECT(object));
    for (GList *l = ifaces; l; l = l->next)
        connect_interface(self, l->data);
    verify_object(self);
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

    return modem && ca_modem_match(self->set.match, mm_modem_get_equipment_identifier(modem),
                                   mm_modem_get_device(modem));
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
        for (GList *l = objects; l; l = l->next) {
            if (g_object_get_data(l->data, GHOST_KEY))
                g_object_unref(l->data);
            else
                g_ptr_array_add(candidates, l->data); /* takes the reference */
        }
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
        ca_warn("no modem matches [modem] match=%s (%u present)", ca_log_personal(self->set.match),
                candidates->len);
        self->warned_no_match = TRUE;
    }
    if (pick == self->object)
        return;
    if (self->object)
        ca_msg("modem %s is gone", ca_modem_short_path(mm_object_get_path(self->object)));
    drop_object(self);
    if (pick) {
        self->warned_no_match = FALSE;
        take_object(self, pick);
    }
    ca_modem_flush_facts(self);
    g_signal_emit(self, signals[SIGNAL_OBJECT_CHANGED], 0);
    if (self->object)
        ca_modem_prepare(self);
}

/*****************************************************************************/
/* Following ModemManager */

static void
object_added_cb(GDBusObjectManager *manager, GDBusObject *object, gpointer user_data)
{
    CaModem *self = CA_MODEM(user_data);

    ca_debug("object added: %s", g_dbus_object_get_object_path(object));
    if (self->object && G_DBUS_OBJECT(self->object) != object)
        verify_object(self); /* still there, or a ghost keeping the new one out? */
    reselect(self);
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
        ca_modem_flush_facts(self);
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
    ca_modem_check_settled(self);
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
                ca_modem_set_settled(self);
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

    ca_modem_settings_load(&self->set, config);
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
    ca_modem_load_pin_rejected(self);
    /* Settle at the latest after SETTLE_LIMIT_MS, even when ModemManager hangs. */
    if (!self->settled) {
        self->settle_limit = g_timeout_source_new(SETTLE_LIMIT_MS);
        g_source_set_callback(self->settle_limit, ca_modem_settle_limit_cb, self, NULL);
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
        ca_modem_flush_facts(self);
        g_signal_emit(self, signals[SIGNAL_OBJECT_CHANGED], 0);
    }
    ca_clear_source(&self->facts_idle);
    ca_modem_ops_stop(self->ops);
    self->settled = FALSE;
}

void
ca_modem_apply_config(CaModem *self, CaConfig *config)
{
    CaModemSettings old;
    gboolean match_changed;

    g_return_if_fail(CA_IS_MODEM(self));

    old = self->set;
    ca_modem_settings_load(&self->set, config);
    match_changed = g_strcmp0(old.match, self->set.match) != 0;
    if (g_strcmp0(old.state_dir, self->set.state_dir) != 0)
        ca_modem_load_pin_rejected(self);
    ca_modem_settings_clear(&old);
    if (!self->started)
        return;
    self->warned_no_pin = FALSE;
    g_clear_pointer(&self->pin_uncertain, g_free);
    if (match_changed) {
        self->warned_no_match = FALSE;
        reselect(self);
    }
    /* Preparing is idempotent: a reload re-reads the pin-file (an operator fixing it
     * reloads), re-applies signal-rate and retries a failed enable now. */
    if (self->object) {
        ca_clear_source(&self->prepare_retry);
        ca_backoff_reset(&self->prepare_backoff);
        ca_modem_prepare(self);
    }
}

CaModemOps *
ca_modem_get_ops(CaModem *self)
{
    g_return_val_if_fail(CA_IS_MODEM(self), NULL);
    return self->ops;
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

/*****************************************************************************/
/* GObject */

static void
ca_modem_init(CaModem *self)
{
    ca_modem_facts_init(&self->facts);
    self->pin_wrong_retries = -1;
    ca_backoff_init(&self->backoff, 1000, 60000, 20, NULL);
    ca_backoff_init(&self->prepare_backoff, PREPARE_RETRY_MIN_MS, PREPARE_RETRY_MAX_MS, 20, NULL);
    self->ops = ca_modem_ops_new();
    /* The modem comes back enabled after an operation: prepare it again (Signal setup). */
    g_signal_connect_swapped(self->ops, "idle", G_CALLBACK(ca_modem_prepare), self);
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
    if (self->ops) {
        g_signal_handlers_disconnect_by_data(self->ops, self);
        ca_modem_ops_stop(self->ops);
        g_clear_object(&self->ops);
    }
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
    ca_modem_settings_clear(&self->set);
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
