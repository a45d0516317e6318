/* uplink-nm: the uplink module's NetworkManager side (see uplink-private.h): a private
 * bus and an NMClient on it (retried while the bus is missing, rebuilt after the bus
 * closes), every NMClient object watched for changes (coalesced into one refresh), the
 * facts of each uplink as the policy wants them, activation and deactivation, and the
 * cellular profile created when missing. */
#define CA_LOG_MODULE "uplink"
#include "uplink-private.h"

#include "autocleanups.h"
#include "bus.h"
#include "error.h"
#include "log.h"
#include "secret-file.h"

#include <string.h>

static void watch_object(CaUplink *self, gpointer object);
static void object_added_cb(NMClient *client, gpointer object, gpointer user_data);
static void object_removed_cb(NMClient *client, gpointer object, gpointer user_data);
static void nm_running_cb(NMClient *client, GParamSpec *pspec, gpointer user_data);

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
/* Facts from NetworkManager */

void
ca_uplink_rt_clear(CaUplinkRt *rt)
{
    g_clear_object(&rt->conn);
    g_clear_object(&rt->ac);
    g_clear_object(&rt->device);
    g_clear_pointer(&rt->applied_ac, g_free);
    g_clear_pointer(&rt->applied_rules, g_free);
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
    CaUplinkRt *rt = &self->rt[i];
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
        f->metered = (CaMetered) nm_device_get_metered(dev);
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
/* Activation */

typedef struct {
    CaUplink *self;
    guint i;
    guint generation;
    char *name;
    gboolean watchdog; /* report a watchdog-result event */
} ActCtx;

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
        ca_uplink_step_result(self, c->name, CA_WD_STEP_REACTIVATE, ac ? NULL : error->message);
    else if (!ac)
        ca_warn("%s: activation failed: %s", c->name, error->message);
    act_ctx_free(c);
    ca_uplink_schedule_refresh(self);
}

gboolean
ca_uplink_nm_activate(CaUplink *self, guint i, const char *why, gboolean watchdog, char **out_error)
{
    const CaFoUplinkConfig *uc = &self->fo_config->uplinks[i];
    CaUplinkRt *rt = &self->rt[i];
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

void
ca_uplink_nm_deactivate(CaUplink *self, guint i, const char *why)
{
    CaUplinkRt *rt = &self->rt[i];

    if (!rt->ac || !self->client)
        return;
    ca_msg("%s: deactivating connection \"%s\" (%s)", self->fo_config->uplinks[i].name,
           self->fo_config->uplinks[i].connection, why);
    nm_client_deactivate_connection_async(self->client, rt->ac, self->cancellable, deactivate_ready,
                                          self);
}
/*****************************************************************************/
/* The cellular profile */

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
    ca_uplink_schedule_refresh(self);
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
    gint64 metric;
    NMSetting *s;

    if (ci < 0 || self->creating_profile || self->password_refused || !self->client ||
        !nm_client_get_nm_running(self->client))
        return;
    uc = &self->fo_config->uplinks[ci];
    if (uc->activate == CA_ACTIVATE_NEVER || find_connection(self, uc->connection))
        return;
    pwfile = self->settings->password_file;
    if (*pwfile) {
        g_autoptr(GError) error = NULL;
        password = ca_secret_file_read_line(pwfile, &error);
        if (!password) {
            ca_warn("[cellular] password-file: %s; the cellular connection is not created "
                    "until this is fixed and the configuration reloaded",
                    error->message);
            self->password_refused = TRUE;
            return;
        }
    }
    user = self->settings->username;
    metric = self->fo ? (gint64) ca_failover_get_metric(self->fo, (guint) ci) : -1;
    uuid = nm_utils_uuid_generate();
    c = nm_simple_connection_new();
    s = nm_setting_connection_new();
    g_object_set(s, NM_SETTING_CONNECTION_ID, uc->connection, NM_SETTING_CONNECTION_UUID, uuid,
                 NM_SETTING_CONNECTION_TYPE, NM_SETTING_GSM_SETTING_NAME,
                 NM_SETTING_CONNECTION_AUTOCONNECT, uc->activate == CA_ACTIVATE_ALWAYS, NULL);
    nm_connection_add_setting(c, s);
    s = nm_setting_gsm_new();
    g_object_set(s, NM_SETTING_GSM_APN, self->settings->apn, NULL);
    if (*user)
        g_object_set(s, NM_SETTING_GSM_USERNAME, user, NULL);
    if (password)
        g_object_set(s, NM_SETTING_GSM_PASSWORD, password, NULL);
    nm_connection_add_setting(c, s);
    /* may-fail=false: otherwise NetworkManager 1.42 reports the connection activated
     * before DHCP answers and stays so without an address (docs/lab.md). */
    /* The route metric of its standby role from the first activation on: NetworkManager
     * 1.52 keeps a DHCP modem bearer's activation metric in the kernel (uplink-routes.c). */
    s = nm_setting_ip4_config_new();
    g_object_set(s, NM_SETTING_IP_CONFIG_METHOD, NM_SETTING_IP4_CONFIG_METHOD_AUTO,
                 NM_SETTING_IP_CONFIG_MAY_FAIL, FALSE, NM_SETTING_IP_CONFIG_ROUTE_METRIC, metric,
                 NULL);
    nm_connection_add_setting(c, s);
    s = nm_setting_ip6_config_new();
    g_object_set(s, NM_SETTING_IP_CONFIG_METHOD, NM_SETTING_IP6_CONFIG_METHOD_AUTO,
                 NM_SETTING_IP_CONFIG_MAY_FAIL, TRUE, NM_SETTING_IP_CONFIG_ROUTE_METRIC, metric,
                 NULL);
    nm_connection_add_setting(c, s);
    ca_msg("creating the cellular connection \"%s\" (apn \"%s\")", uc->connection,
           self->settings->apn);
    self->creating_profile = TRUE;
    nm_client_add_connection2(self->client, nm_connection_to_dbus(c, NM_CONNECTION_SERIALIZE_ALL),
                              NM_SETTINGS_ADD_CONNECTION2_FLAG_TO_DISK, NULL, TRUE,
                              self->cancellable, add_profile_ready, self);
}
/*****************************************************************************/
/* NMClient */

static void
any_notify_cb(GObject *object, GParamSpec *pspec, gpointer user_data)
{
    ca_uplink_schedule_refresh(CA_UPLINK(user_data));
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
    ca_uplink_schedule_refresh(self);
}

static void
object_removed_cb(NMClient *client, gpointer object, gpointer user_data)
{
    ca_uplink_schedule_refresh(CA_UPLINK(user_data));
}

static void
nm_running_cb(NMClient *client, GParamSpec *pspec, gpointer user_data)
{
    CaUplink *self = user_data;

    if (nm_client_get_nm_running(client))
        ca_msg("NetworkManager is running");
    else
        ca_warn("NetworkManager is not running; waiting for it");
    ca_uplink_schedule_refresh(self);
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
        ca_uplink_rt_clear(&self->rt[i]);
    g_clear_object(&self->client);
    self->facts_known = FALSE;
}

void
ca_uplink_nm_stop(CaUplink *self)
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
    ca_uplink_nm_start(self);
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
    ca_uplink_update_status(self);
}

static void
bus_closed_cb(GDBusConnection *bus, gboolean remote_peer_vanished, GError *error,
              gpointer user_data)
{
    CaUplink *self = user_data;

    ca_uplink_nm_stop(self);
    /* Nothing is known about NetworkManager until we are back: the watchdog holds. */
    if (self->fo)
        ca_failover_set_manager_running(self->fo, FALSE);
    ca_uplink_schedule_refresh(self);
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
        ca_uplink_nm_stop(self);
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
    ca_uplink_schedule_refresh(self);
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

void
ca_uplink_nm_start(CaUplink *self)
{
    ca_bus_new_async(self->cancellable, bus_ready, self);
}

gboolean
ca_uplink_nm_running(CaUplink *self)
{
    return self->client && nm_client_get_nm_running(self->client);
}

void
ca_uplink_nm_refresh_facts(CaUplink *self)
{
    gint64 now = ca_uplink_now_ms();

    ensure_cellular_profile(self);
    ca_failover_set_manager_running(self->fo, ca_uplink_nm_running(self));
    for (guint i = 0; i < self->n; i++) {
        CaUplinkFacts f;
        collect_facts(self, i, &f);
        ca_failover_set_facts(self->fo, i, &f, now);
    }
}

gboolean
ca_uplink_nm_has_default_route(CaUplink *self)
{
    return ca_uplink_nm_running(self) && nm_client_get_primary_connection(self->client) != NULL;
}
