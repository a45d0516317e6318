/* baseline-idle: the idle-footprint baseline (docs/benchmarks.md). A minimal program that
 * links the agent's libraries and creates the clients the agent creates, then idles:
 * a GLib main loop, a libmosquitto connection to a broker (external loop, like the agent),
 * an NMClient and an MMManager on the system bus ($DBUS_SYSTEM_BUS_ADDRESS). The agent's
 * PSS, private memory and wakeups are reported as ratios against this program.
 *
 * Usage: baseline-idle HOST PORT [KEEPALIVE]. Prints "baseline-idle: ready modems=N" once
 * all clients are up; exits 0 on SIGTERM/SIGINT after releasing everything (so it also
 * runs clean under valgrind and LSan), 1 when a client cannot be created or the broker
 * connection drops. */
#include <NetworkManager.h>
#include <cjson/cJSON.h>
#include <glib-unix.h>
#include <libmm-glib.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

static struct {
    GMainLoop *loop;
    struct mosquitto *mosq;
    GSource *mosq_watch; /* the socket: IN always, OUT while mosquitto wants to write */
    int mosq_fd;
    GIOCondition mosq_want;
    GSource *misc_timer; /* keepalive: mosquitto_loop_misc every keepalive/3 s */
    gboolean mqtt_up;
    GDBusConnection *bus;
    NMClient *nm;
    MMManager *mm;
    int exit_code;
} gl = {.mosq_fd = -1};

static void
fail(const char *what, const char *why)
{
    fprintf(stderr, "baseline-idle: %s: %s\n", what, why);
    gl.exit_code = 1;
    g_main_loop_quit(gl.loop);
}

static void
maybe_ready(void)
{
    g_autolist(GDBusObject) modems = NULL;

    if (!gl.mqtt_up || !gl.nm || !gl.mm)
        return;
    modems = g_dbus_object_manager_get_objects(G_DBUS_OBJECT_MANAGER(gl.mm));
    printf("baseline-idle: ready modems=%u nm-running=%d cjson=%s\n", g_list_length(modems),
           nm_client_get_nm_running(gl.nm), cJSON_Version());
    fflush(stdout);
    sd_notify(0, "READY=1");
}

static gboolean mosq_io_cb(int fd, GIOCondition condition, gpointer user_data);

/* (Re)watch the mosquitto socket with the interest it needs now. */
static void
update_watch(void)
{
    int fd = mosquitto_socket(gl.mosq);
    GIOCondition want = G_IO_IN | (mosquitto_want_write(gl.mosq) ? G_IO_OUT : 0);

    if (gl.mosq_watch && fd == gl.mosq_fd && want == gl.mosq_want)
        return;
    if (gl.mosq_watch) {
        g_source_destroy(gl.mosq_watch);
        g_clear_pointer(&gl.mosq_watch, g_source_unref);
    }
    gl.mosq_fd = fd;
    gl.mosq_want = want;
    if (fd < 0)
        return;
    gl.mosq_watch = g_unix_fd_source_new(fd, want);
    g_source_set_callback(gl.mosq_watch, G_SOURCE_FUNC(mosq_io_cb), NULL, NULL);
    g_source_attach(gl.mosq_watch, NULL);
}

static gboolean
mosq_io_cb(int fd, GIOCondition condition, gpointer user_data)
{
    int rc = MOSQ_ERR_SUCCESS;

    if (condition & (G_IO_IN | G_IO_HUP | G_IO_ERR))
        rc = mosquitto_loop_read(gl.mosq, 1);
    if (rc == MOSQ_ERR_SUCCESS && (condition & G_IO_OUT))
        rc = mosquitto_loop_write(gl.mosq, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
        fail("broker connection", mosquitto_strerror(rc));
        return G_SOURCE_CONTINUE;
    }
    update_watch();
    return G_SOURCE_CONTINUE;
}

static gboolean
misc_cb(gpointer user_data)
{
    mosquitto_loop_misc(gl.mosq);
    update_watch();
    return G_SOURCE_CONTINUE;
}

static void
on_connect(struct mosquitto *mosq, void *data, int rc)
{
    if (rc != 0) {
        fail("CONNACK", mosquitto_connack_string(rc));
        return;
    }
    gl.mqtt_up = TRUE;
    maybe_ready();
}

static void
nm_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;

    gl.nm = nm_client_new_finish(result, &error);
    if (!gl.nm) {
        fail("NMClient", error->message);
        return;
    }
    maybe_ready();
}

static void
mm_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;

    gl.mm = mm_manager_new_finish(result, &error);
    if (!gl.mm) {
        fail("MMManager", error->message);
        return;
    }
    maybe_ready();
}

static void
bus_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    g_autoptr(GError) error = NULL;

    gl.bus = g_bus_get_finish(result, &error);
    if (!gl.bus) {
        fail("system bus", error->message);
        return;
    }
    mm_manager_new(gl.bus, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_DO_NOT_AUTO_START, NULL, mm_ready,
                   NULL);
    nm_client_new_async(NULL, nm_ready, NULL);
}

static gboolean
stop_cb(gpointer user_data)
{
    g_main_loop_quit(gl.loop);
    return G_SOURCE_CONTINUE;
}

/* NMClient's cancelled D-Bus calls are still queued when it is released: iterate until
 * its context busy watcher is gone (libnm documentation), at most 2 s. */
static void
release_nm(void)
{
    GObject *watcher;
    gint64 deadline = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;

    if (!gl.nm)
        return;
    watcher = g_object_ref(nm_client_get_context_busy_watcher(gl.nm));
    g_object_add_weak_pointer(watcher, (gpointer *) &watcher);
    g_object_unref(watcher);
    g_clear_object(&gl.nm);
    while (watcher && g_get_monotonic_time() < deadline)
        g_main_context_iteration(NULL, TRUE);
}

int
main(int argc, char **argv)
{
    int keepalive = argc > 3 ? atoi(argv[3]) : 60;
    int rc;

    if (argc < 3 || keepalive < 5) {
        fprintf(stderr, "usage: baseline-idle HOST PORT [KEEPALIVE>=5]\n");
        return 2;
    }
    gl.loop = g_main_loop_new(NULL, FALSE);
    g_unix_signal_add(SIGTERM, stop_cb, NULL);
    g_unix_signal_add(SIGINT, stop_cb, NULL);

    mosquitto_lib_init();
    gl.mosq = mosquitto_new("baseline-idle", true, NULL);
    mosquitto_int_option(gl.mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    mosquitto_connect_callback_set(gl.mosq, on_connect);
    rc = mosquitto_connect_async(gl.mosq, argv[1], atoi(argv[2]), keepalive);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "baseline-idle: connect: %s\n", mosquitto_strerror(rc));
        return 1;
    }
    update_watch();
    /* A PINGREQ goes out when keepalive seconds passed without traffic; checking every
     * keepalive/3 s sends it before the broker's 1.5 x keepalive limit. */
    gl.misc_timer = g_timeout_source_new_seconds(keepalive / 3);
    g_source_set_callback(gl.misc_timer, misc_cb, NULL, NULL);
    g_source_attach(gl.misc_timer, NULL);
    g_bus_get(G_BUS_TYPE_SYSTEM, NULL, bus_ready, NULL);

    g_main_loop_run(gl.loop);

    g_source_destroy(gl.misc_timer);
    g_source_unref(gl.misc_timer);
    if (gl.mosq_watch) {
        g_source_destroy(gl.mosq_watch);
        g_source_unref(gl.mosq_watch);
    }
    mosquitto_disconnect(gl.mosq);
    mosquitto_destroy(gl.mosq);
    mosquitto_lib_cleanup();
    g_clear_object(&gl.mm);
    release_nm();
    g_clear_object(&gl.bus);
    g_main_loop_unref(gl.loop);
    return gl.exit_code;
}
