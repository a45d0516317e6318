/* diagnose: the support bundle (diagnose.h). One GTask; its parts are collected side by side
 * (D-Bus calls, child processes), each under its own timeout and all under
 * CA_DIAGNOSE_LIMIT_MS; the bundle is assembled and redacted once the last part is in. */
#define CA_LOG_MODULE "diagnose"
#include "diagnose.h"

#include "autocleanups.h"
#include "bus.h"
#include "diag-format.h"
#include "error.h"
#include "log.h"
#include "secret-file.h"
#include "status-file.h"
#include "tar.h"
#include "timestamp.h"
#include "version.h"

#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>

#define DBUS_TIMEOUT_MS      3000          /* ModemManager or NetworkManager not answering */
#define DBUS_ITEM_TIMEOUT_MS 2000          /* one SIM, bearer or profile */
#define MAX_ITEMS            64            /* bearers, profiles asked for (hostile-ish peers) */
#define PART_MAX             (1024 * 1024) /* one part of the bundle, except the journal */
#define JOURNAL_MAX          (4 * 1024 * 1024)

#define MM_NAME "org.freedesktop.ModemManager1"
#define NM_NAME "org.freedesktop.NetworkManager"

typedef struct {
    CaDiagnoseOptions opts;
    gint64 now;
    CaRedactor *redactor;
    GCancellable *cancellable; /* ours: the deadline and the caller's cancellable cancel it */
    GCancellable *caller;
    gulong caller_handler;
    GSource *deadline; /* owned */
    GDBusConnection *bus;
    guint pending;
    GHashTable *outstanding; /* label -> count of its operations in flight */
    GPtrArray *timed_out;    /* char*: labels that ran out of time */
    GTree *mm;               /* object path -> GString */
    GTree *nm;               /* object path -> GString */
    GString *mm_note;
    GString *nm_note;
    GPtrArray *usb_devices; /* char*: sysfs device paths of the modems */
    GString *routes;
    char *journal;
    char *journal_note;
} Ctx;

typedef struct {
    GBytes *bytes;
    char *name;
    char *timed_out;
} CaDiagnoseResult;

static void
result_free(gpointer data)
{
    CaDiagnoseResult *res = data;

    g_bytes_unref(res->bytes);
    g_free(res->name);
    g_free(res->timed_out);
    g_free(res);
}

static void
ctx_free(gpointer data)
{
    Ctx *ctx = data;

    ca_clear_source(&ctx->deadline);
    if (ctx->caller_handler)
        g_cancellable_disconnect(ctx->caller, ctx->caller_handler);
    g_clear_object(&ctx->caller);
    g_clear_object(&ctx->cancellable);
    if (ctx->bus)
        g_dbus_connection_close(ctx->bus, NULL, NULL, NULL);
    g_clear_object(&ctx->bus);
    ca_redactor_free(ctx->redactor);
    g_hash_table_unref(ctx->outstanding);
    g_ptr_array_unref(ctx->timed_out);
    g_tree_unref(ctx->mm);
    g_tree_unref(ctx->nm);
    g_string_free(ctx->mm_note, TRUE);
    g_string_free(ctx->nm_note, TRUE);
    g_ptr_array_unref(ctx->usb_devices);
    g_string_free(ctx->routes, TRUE);
    g_free(ctx->journal);
    g_free(ctx->journal_note);
    g_free(ctx);
}

/*****************************************************************************/
/* Book-keeping: every operation in flight holds a task reference and a label */

typedef struct {
    GTask *task;
    char *label;
    char *path; /* the object asked about, when one */
} Op;

static void assemble(GTask *task);

static void
string_free_all(GString *s)
{
    g_string_free(s, TRUE);
}

static Op *
op_begin(GTask *task, const char *label, const char *path)
{
    Ctx *ctx = g_task_get_task_data(task);
    Op *op = g_new0(Op, 1);
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(ctx->outstanding, label));

    op->task = g_object_ref(task);
    op->label = g_strdup(label);
    op->path = g_strdup(path);
    g_hash_table_replace(ctx->outstanding, g_strdup(label), GUINT_TO_POINTER(n + 1));
    ctx->pending++;
    return op;
}

static void
op_end(Op *op)
{
    GTask *task = op->task;
    Ctx *ctx = g_task_get_task_data(task);
    guint n = GPOINTER_TO_UINT(g_hash_table_lookup(ctx->outstanding, op->label));

    if (n <= 1)
        g_hash_table_remove(ctx->outstanding, op->label);
    else
        g_hash_table_replace(ctx->outstanding, g_strdup(op->label), GUINT_TO_POINTER(n - 1));
    g_free(op->label);
    g_free(op->path);
    g_free(op);
    if (--ctx->pending == 0)
        assemble(task);
    g_object_unref(task);
}

static void
note_timeout(Ctx *ctx, const char *what)
{
    for (guint i = 0; i < ctx->timed_out->len; i++) {
        if (g_str_equal(g_ptr_array_index(ctx->timed_out, i), what))
            return;
    }
    g_ptr_array_add(ctx->timed_out, g_strdup(what));
}

/* How a failed part reads in the bundle; timeouts are also listed in README.txt. */
static char *
failure_text(Ctx *ctx, const char *label, const GError *error, guint timeout_ms)
{
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)) {
        note_timeout(ctx, label);
        return g_strdup_printf("TIMED OUT: %s did not answer within %u ms", label, timeout_ms);
    }
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        note_timeout(ctx, label);
        return g_strdup_printf("TIMED OUT: %s was still running at the bundle's limit (%d ms)",
                               label, CA_DIAGNOSE_LIMIT_MS);
    }
    if (g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_SERVICE_UNKNOWN) ||
        g_error_matches(error, G_DBUS_ERROR, G_DBUS_ERROR_NAME_HAS_NO_OWNER))
        return g_strdup_printf("NOT RUNNING: %s is not on the system bus", label);
    return g_strdup_printf("FAILED: %s: %s", label, error->message);
}

static gboolean
deadline_cb(gpointer user_data)
{
    Ctx *ctx = user_data;
    GHashTableIter it;
    gpointer label;

    ca_clear_source(&ctx->deadline);
    g_hash_table_iter_init(&it, ctx->outstanding);
    while (g_hash_table_iter_next(&it, &label, NULL))
        note_timeout(ctx, label);
    g_cancellable_cancel(ctx->cancellable);
    return G_SOURCE_REMOVE;
}

static void
caller_cancelled_cb(GCancellable *caller, gpointer user_data)
{
    g_cancellable_cancel(user_data);
}

/*****************************************************************************/
/* Child processes: routes, the journal */

typedef void (*ChildDone)(Ctx *ctx, const char *output, const GError *error, const char *label);

typedef struct {
    Op *op;
    GSubprocess *proc;
    ChildDone done;
} Child;

static void
child_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Child *c = user_data;
    Ctx *ctx = g_task_get_task_data(c->op->task);
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;

    if (!g_subprocess_communicate_utf8_finish(c->proc, result, &out, NULL, &error))
        g_subprocess_force_exit(c->proc);
    c->done(ctx, out, error, c->op->label);
    g_object_unref(c->proc);
    op_end(c->op);
    g_free(c);
}

static void
run_child(GTask *task, const char *label, const char *const *argv, ChildDone done)
{
    Ctx *ctx = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    GSubprocess *proc =
        g_subprocess_newv(argv,
                          G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE |
                              G_SUBPROCESS_FLAGS_STDIN_INHERIT,
                          &error);
    Child *c;

    if (!proc) {
        done(ctx, NULL, error, label);
        return;
    }
    c = g_new0(Child, 1);
    c->op = op_begin(task, label, NULL);
    c->proc = proc;
    c->done = done;
    g_subprocess_communicate_utf8_async(proc, NULL, ctx->cancellable, child_ready, c);
}

static void
routes_done(Ctx *ctx, const char *output, const GError *error, const char *label)
{
    g_autofree char *why = error ? failure_text(ctx, label, error, CA_DIAGNOSE_LIMIT_MS) : NULL;

    g_string_append_printf(ctx->routes, "$ %s\n%s\n", label, why ? why : output ? output : "");
}

static void
journal_done(Ctx *ctx, const char *output, const GError *error, const char *label)
{
    gsize len = output ? strlen(output) : 0;

    if (error) {
        ctx->journal_note = failure_text(ctx, label, error, CA_DIAGNOSE_LIMIT_MS);
        return;
    }
    /* The newest part is the one that explains the problem. */
    if (len > JOURNAL_MAX) {
        const char *from = output + len - JOURNAL_MAX;
        const char *nl = strchr(from, '\n');

        ctx->journal = g_strdup_printf("(older lines cut: the journal part keeps the last %d "
                                       "bytes)\n%s",
                                       JOURNAL_MAX, nl ? nl + 1 : from);
    } else {
        ctx->journal = g_strdup(output ? output : "");
    }
}

/*****************************************************************************/
/* ModemManager and NetworkManager */

static GString *
part_for(GTree *tree, const char *path)
{
    GString *s = g_tree_lookup(tree, path);

    if (!s) {
        s = g_string_new(NULL);
        g_tree_insert(tree, g_strdup(path), s);
    }
    return s;
}

static void
item_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Op *op = user_data;
    Ctx *ctx = g_task_get_task_data(op->task);
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
    gboolean nm = g_str_has_prefix(op->path, "/org/freedesktop/NetworkManager");
    GString *out = part_for(nm ? ctx->nm : ctx->mm, op->path);

    if (!reply) {
        g_autofree char *why = failure_text(ctx, op->label, error, DBUS_ITEM_TIMEOUT_MS);
        g_string_append_printf(out, "%s\n  %s\n", op->path, why);
    } else if (nm) {
        g_autoptr(GVariant) settings = g_variant_get_child_value(reply, 0);
        ca_diag_format_settings(out, op->path, settings, ctx->redactor);
    } else {
        /* Properties.GetAll: a{sv} of one interface; shown like the modem's objects. */
        g_autoptr(GVariant) props = g_variant_get_child_value(reply, 0);
        GVariantBuilder b;
        g_autoptr(GVariant) ifaces = NULL;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sa{sv}}"));
        g_variant_builder_add(&b, "{s@a{sv}}", op->label + strlen("ModemManager "), props);
        ifaces = g_variant_ref_sink(g_variant_builder_end(&b));
        ca_diag_format_object(out, op->path, ifaces, ctx->redactor);
    }
    op_end(op);
}

static void
ask_item(GTask *task, const char *service, const char *path, const char *iface, const char *method,
         GVariant *params, const char *label)
{
    Ctx *ctx = g_task_get_task_data(task);
    Op *op = op_begin(task, label, path);

    g_dbus_connection_call(ctx->bus, service, path, iface, method, params, NULL,
                           G_DBUS_CALL_FLAGS_NO_AUTO_START, DBUS_ITEM_TIMEOUT_MS, ctx->cancellable,
                           item_ready, op);
}

/* The SIM and bearers a modem object points at. */
static void
mm_follow(GTask *task, GVariant *interfaces)
{
    Ctx *ctx = g_task_get_task_data(task);
    g_autoptr(GVariant) modem =
        g_variant_lookup_value(interfaces, MM_NAME ".Modem", G_VARIANT_TYPE_VARDICT);
    const char *sim = NULL, *device = NULL;
    g_autofree const char **bearers = NULL;
    guint asked = 0;

    if (!modem)
        return;
    if (g_variant_lookup(modem, "Sim", "&o", &sim) && !g_str_equal(sim, "/"))
        ask_item(task, MM_NAME, sim, "org.freedesktop.DBus.Properties", "GetAll",
                 g_variant_new("(s)", MM_NAME ".Sim"), "ModemManager " MM_NAME ".Sim");
    if (g_variant_lookup(modem, "Bearers", "^a&o", &bearers)) {
        for (int i = 0; bearers[i] && asked < MAX_ITEMS; i++, asked++)
            ask_item(task, MM_NAME, bearers[i], "org.freedesktop.DBus.Properties", "GetAll",
                     g_variant_new("(s)", MM_NAME ".Bearer"), "ModemManager " MM_NAME ".Bearer");
    }
    if (g_variant_lookup(modem, "Device", "&s", &device) && g_path_is_absolute(device))
        g_ptr_array_add(ctx->usb_devices, g_strdup(device));
}

static gboolean
has_interface(GVariant *interfaces, const char *name)
{
    g_autoptr(GVariant) props = g_variant_lookup_value(interfaces, name, NULL);

    return props != NULL;
}

static void
objects_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Op *op = user_data;
    GTask *task = op->task;
    Ctx *ctx = g_task_get_task_data(task);
    gboolean nm = g_str_equal(op->label, "NetworkManager");
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply =
        g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
    g_autoptr(GVariant) objects = NULL;
    GVariantIter it;
    const char *path;
    GVariant *ifaces;
    guint asked = 0;

    if (!reply) {
        g_autofree char *why = failure_text(ctx, op->label, error, DBUS_TIMEOUT_MS);
        g_string_append_printf(nm ? ctx->nm_note : ctx->mm_note, "%s\n", why);
        op_end(op);
        return;
    }
    objects = g_variant_get_child_value(reply, 0);
    g_variant_iter_init(&it, objects);
    while (g_variant_iter_next(&it, "{&o@a{sa{sv}}}", &path, &ifaces)) {
        ca_diag_format_object(part_for(nm ? ctx->nm : ctx->mm, path), path, ifaces, ctx->redactor);
        if (!nm) {
            mm_follow(task, ifaces);
        } else if (has_interface(ifaces, NM_NAME ".Settings.Connection") && asked++ < MAX_ITEMS) {
            ask_item(task, NM_NAME, path, NM_NAME ".Settings.Connection", "GetSettings", NULL,
                     "NetworkManager GetSettings");
        }
        g_variant_unref(ifaces);
    }
    op_end(op);
}

static void
ask_objects(GTask *task, const char *label, const char *service, const char *path)
{
    Ctx *ctx = g_task_get_task_data(task);

    g_dbus_connection_call(ctx->bus, service, path, "org.freedesktop.DBus.ObjectManager",
                           "GetManagedObjects", NULL, G_VARIANT_TYPE("(a{oa{sa{sv}}})"),
                           G_DBUS_CALL_FLAGS_NO_AUTO_START, DBUS_TIMEOUT_MS, ctx->cancellable,
                           objects_ready, op_begin(task, label, NULL));
}

static void
bus_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Op *op = user_data;
    Ctx *ctx = g_task_get_task_data(op->task);
    g_autoptr(GError) error = NULL;

    ctx->bus = ca_bus_new_finish(result, &error);
    if (!ctx->bus) {
        g_autofree char *why = failure_text(ctx, "the system bus", error, CA_DIAGNOSE_LIMIT_MS);
        g_string_append_printf(ctx->mm_note, "%s\n", why);
        g_string_append_printf(ctx->nm_note, "%s\n", why);
    } else {
        ask_objects(op->task, "ModemManager", MM_NAME, "/org/freedesktop/ModemManager1");
        ask_objects(op->task, "NetworkManager", NM_NAME, "/org/freedesktop");
    }
    op_end(op);
}

/*****************************************************************************/
/* What is read at once: configuration, secrets to mask, system facts */

/* Every secret file the configuration names: its content is masked wherever it shows up
 * (a password echoed into a log, say). Unreadable files cannot leak either. */
static void
learn_secrets(Ctx *ctx)
{
    static const char *const keys[][2] = {{"mqtt", "password-file"},
                                          {"cellular", "password-file"},
                                          {"modem", "pin-file"},
                                          {"sms-commands", "secret-file"}};

    for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
        const char *path = ca_config_get_string(ctx->opts.config, keys[i][0], keys[i][1]);
        g_autofree char *line = NULL;
        g_autofree char *squashed = NULL;

        if (!path || !*path)
            continue;
        line = ca_secret_file_read_line(path, NULL);
        if (!line)
            continue;
        ca_redactor_add_secret(ctx->redactor, line);
        /* A TOTP secret is read case- and space-insensitively. */
        squashed = g_ascii_strup(line, -1);
        g_strdelimit(squashed, " ", '\0');
        ca_redactor_add_secret(ctx->redactor, squashed);
        memset(line, 0, strlen(line));
    }
}

/* The phone numbers the configuration lists (operators, alert recipients, allowed
 * destinations) are personal data too. */
static void
learn_config_numbers(Ctx *ctx)
{
    static const char *const keys[][2] = {{"sms-commands", "allowed-senders"},
                                          {"sms-alerts", "numbers"},
                                          {"sms", "allowed-destinations"}};

    for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
        const char *const *list = ca_config_get_list(ctx->opts.config, keys[i][0], keys[i][1]);

        for (int j = 0; list && list[j]; j++)
            ca_redactor_add_personal(ctx->redactor, list[j]);
    }
}

/* Personal values the status document knows, masked wherever they show up. */
static void
learn_status(Ctx *ctx)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(ctx->opts.status, "modem");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(t, "modem");
    const cJSON *sim = cJSON_GetObjectItemCaseSensitive(t, "sim");

    ca_redactor_add_personal(ctx->redactor,
                             cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "imei")));
    ca_redactor_add_personal(ctx->redactor,
                             cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sim, "iccid")));
    ca_redactor_add_personal(ctx->redactor,
                             cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sim, "imsi")));
}

static void
append_file(GString *out, const char *title, const char *path)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;

    g_string_append_printf(out, "== %s (%s)\n", title, path);
    if (g_file_get_contents(path, &text, NULL, &error))
        g_string_append_printf(out, "%s%s", text, g_str_has_suffix(text, "\n") ? "" : "\n");
    else
        g_string_append_printf(out, "(unreadable: %s)\n", error->message);
}

static char *
sysfs_attr(const char *dir, const char *name)
{
    g_autofree char *path = g_build_filename(dir, name, NULL);
    char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return g_strdup("?");
    return g_strstrip(text);
}

static void
append_usb(GString *out, const char *device)
{
    g_autofree char *vid = sysfs_attr(device, "idVendor");
    g_autofree char *pid = sysfs_attr(device, "idProduct");
    g_autofree char *maker = sysfs_attr(device, "manufacturer");
    g_autofree char *product = sysfs_attr(device, "product");
    g_autofree char *base = g_path_get_basename(device);
    g_autoptr(GDir) dir = g_dir_open(device, 0, NULL);
    const char *name;

    g_string_append_printf(out, "%s\n  usb id %s:%s (%s %s)\n", device, vid, pid, maker, product);
    while (dir && (name = g_dir_read_name(dir))) {
        g_autofree char *iface = NULL, *link = NULL, *drv = NULL, *num = NULL;

        if (!g_str_has_prefix(name, base) || !strchr(name, ':'))
            continue;
        iface = g_build_filename(device, name, NULL);
        link = g_build_filename(iface, "driver", NULL);
        drv = g_file_read_link(link, NULL);
        num = sysfs_attr(iface, "bInterfaceNumber");
        g_string_append_printf(out, "  interface %s (%s): driver %s\n", name, num,
                               drv ? strrchr(drv, '/') ? strrchr(drv, '/') + 1 : drv : "none");
    }
}

static char *
system_text(Ctx *ctx)
{
    GString *out = g_string_new(NULL);
    struct utsname u;
    struct sysinfo si;
    struct statvfs vfs;
    const char *state_dir = ca_config_get_string(ctx->opts.config, "agent", "state-dir");

    if (g_file_test("/etc/os-release", G_FILE_TEST_EXISTS))
        append_file(out, "os-release", "/etc/os-release");
    else
        append_file(out, "os-release", "/usr/lib/os-release");
    g_string_append(out, "== kernel\n");
    if (uname(&u) == 0)
        g_string_append_printf(out, "%s %s %s %s\n", u.sysname, u.release, u.version, u.machine);
    g_string_append(out, "== uptime and memory\n");
    if (sysinfo(&si) == 0)
        g_string_append_printf(out,
                               "uptime %ld s, load %.2f %.2f %.2f, memory %lu kB total, %lu kB "
                               "free, swap %lu kB free, %u processes\n",
                               si.uptime, si.loads[0] / 65536.0, si.loads[1] / 65536.0,
                               si.loads[2] / 65536.0, si.totalram / 1024 * si.mem_unit,
                               si.freeram / 1024 * si.mem_unit, si.freeswap / 1024 * si.mem_unit,
                               si.procs);
    g_string_append_printf(out, "== state-dir %s\n", state_dir);
    if (statvfs(state_dir, &vfs) == 0)
        g_string_append_printf(out, "%llu kB free of %llu kB, %llu inodes free\n",
                               (unsigned long long) vfs.f_bavail * vfs.f_frsize / 1024,
                               (unsigned long long) vfs.f_blocks * vfs.f_frsize / 1024,
                               (unsigned long long) vfs.f_favail);
    else
        g_string_append_printf(out, "(statvfs: %s)\n", g_strerror(errno));
    g_string_append(out, "== modem USB devices (from ModemManager's Device)\n");
    if (ctx->usb_devices->len == 0)
        g_string_append(out, "(none known)\n");
    for (guint i = 0; i < ctx->usb_devices->len; i++)
        append_usb(out, g_ptr_array_index(ctx->usb_devices, i));
    g_string_append(out, "== routes\n");
    g_string_append_len(out, ctx->routes->str, (gssize) ctx->routes->len);
    return g_string_free(out, FALSE);
}

/*****************************************************************************/
/* Assembly */

static gboolean
append_part_cb(gpointer key, gpointer value, gpointer user_data)
{
    GString *s = value;

    g_string_append_len(user_data, s->str, (gssize) s->len);
    g_string_append_c(user_data, '\n');
    return FALSE;
}

static char *
daemon_text(const char *title, GString *note, GTree *parts)
{
    GString *out = g_string_new(NULL);

    g_string_append_printf(out, "# %s\n", title);
    g_string_append_len(out, note->str, (gssize) note->len);
    g_tree_foreach(parts, append_part_cb, out);
    return g_string_free(out, FALSE);
}

static void
add_text(CaTar *tar, Ctx *ctx, const char *top, const char *name, const char *text)
{
    g_autofree char *path = g_strconcat(top, "/", name, NULL);
    g_autofree char *clean = ca_redactor_apply(ctx->redactor, text);
    gsize len = strlen(clean);

    if (len > PART_MAX && !g_str_equal(name, "journal.txt")) {
        clean[PART_MAX] = '\0';
        len = PART_MAX;
    }
    ca_tar_add(tar, path, clean, len, ctx->now / G_USEC_PER_SEC);
}

static char *
bundle_name(Ctx *ctx)
{
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(ctx->now / G_USEC_PER_SEC);
    g_autofree char *stamp = g_date_time_format(t, "%Y%m%dT%H%M%SZ");

    return g_strdup_printf("cellagent-diagnose-%s-%s",
                           ca_config_get_string(ctx->opts.config, "agent", "device-id"), stamp);
}

static char *
readme_text(Ctx *ctx, const char *timed_out)
{
    g_autofree char *ts = ca_timestamp_format(ctx->now);
    GString *out = g_string_new(NULL);

    g_string_append_printf(out,
                           "cellagent %s support bundle\n"
                           "made:            %s (%s)\n"
                           "device id:       %s\n"
                           "personal data:   %s\n",
                           CA_VERSION, ts, ctx->opts.origin,
                           ca_config_get_string(ctx->opts.config, "agent", "device-id"),
                           ctx->opts.personal ? "kept (--log-personal-info)"
                                              : "redacted as in the logs (###); secrets ********");
    if (ctx->opts.journal)
        g_string_append_printf(out, "journal:         the last %" G_GINT64_FORMAT " s%s%s\n",
                               ctx->opts.since_s, ctx->journal_note ? ": " : "",
                               ctx->journal_note ? ctx->journal_note : "");
    else
        g_string_append(out, "journal:         not included (root on the command line only)\n");
    g_string_append_printf(out, "timed out:       %s\n", timed_out ? timed_out : "nothing");
    g_string_append(out,
                    "\nconfig.txt          effective configuration, file:line of each value\n"
                    "status.json/.txt    the agent's status and last events (--status)\n"
                    "modemmanager.txt    ModemManager's modem, SIM and bearer objects\n"
                    "networkmanager.txt  NetworkManager's devices, active connections, profiles\n"
                    "system.txt          os-release, kernel, uptime, memory, state-dir space, "
                    "modem USB ids and drivers, routes\n");
    if (ctx->opts.journal)
        g_string_append(out, "journal.txt         cellagent, ModemManager, NetworkManager\n");
    return g_string_free(out, FALSE);
}

static void
assemble(GTask *task)
{
    Ctx *ctx = g_task_get_task_data(task);
    g_autoptr(CaTar) tar = ca_tar_new();
    g_autofree char *top = bundle_name(ctx);
    g_autofree char *timed_out = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *config = NULL, *readme = NULL, *mm = NULL, *nm = NULL, *sys = NULL;
    g_autoptr(cJSON) status = NULL;
    GBytes *bytes;
    CaDiagnoseResult *res;

    ca_clear_source(&ctx->deadline);
    if (ctx->timed_out->len) {
        g_ptr_array_add(ctx->timed_out, NULL);
        timed_out = g_strjoinv(", ", (char **) ctx->timed_out->pdata);
        g_ptr_array_remove_index(ctx->timed_out, ctx->timed_out->len - 1);
    }
    ca_tar_add_dir(tar, top, ctx->now / G_USEC_PER_SEC);
    readme = readme_text(ctx, timed_out);
    add_text(tar, ctx, top, "README.txt", readme);
    {
        g_autofree char *dump = ca_config_dump(ctx->opts.config);
        const char *const *files = ca_config_get_files(ctx->opts.config);
        const char *const *warnings = ca_config_get_warnings(ctx->opts.config);
        GString *c = g_string_new(NULL);

        if (ctx->opts.config_error)
            g_string_append_printf(c, "# THE CONFIGURATION DOES NOT LOAD; defaults below\n%s\n\n",
                                   ctx->opts.config_error);
        g_string_append(c, "# files read, in order:\n");

        for (int i = 0; files[i]; i++)
            g_string_append_printf(c, "#   %s\n", files[i]);
        for (int i = 0; warnings[i]; i++)
            g_string_append_printf(c, "# warning: %s\n", warnings[i]);
        g_string_append_printf(c, "\n%s", dump);
        config = g_string_free(c, FALSE);
    }
    add_text(tar, ctx, top, "config.txt", config);
    if (ctx->opts.status) {
        g_autofree char *json = NULL, *text = NULL;
        gint64 age = -1;
        CaStatusFreshness f;

        status = cJSON_Duplicate(ctx->opts.status, TRUE);
        if (!ctx->opts.personal)
            ca_status_redact(status);
        json = cJSON_Print(status);
        add_text(tar, ctx, top, "status.json", json);
        f = ca_status_check_freshness(status, ctx->now, &age);
        text = ca_status_format_text(status, f, age, ctx->now);
        if (ctx->opts.status_note) {
            g_autofree char *noted = g_strconcat(ctx->opts.status_note, "\n", text, NULL);
            add_text(tar, ctx, top, "status.txt", noted);
        } else {
            add_text(tar, ctx, top, "status.txt", text);
        }
    } else {
        add_text(tar, ctx, top, "status.txt",
                 ctx->opts.status_note ? ctx->opts.status_note : "no status");
    }
    mm = daemon_text("ModemManager (GetManagedObjects; SIM and bearers by GetAll)", ctx->mm_note,
                     ctx->mm);
    add_text(tar, ctx, top, "modemmanager.txt", mm);
    nm = daemon_text("NetworkManager (GetManagedObjects; profiles by GetSettings, no secrets)",
                     ctx->nm_note, ctx->nm);
    add_text(tar, ctx, top, "networkmanager.txt", nm);
    sys = system_text(ctx);
    add_text(tar, ctx, top, "system.txt", sys);
    if (ctx->opts.journal)
        add_text(tar, ctx, top, "journal.txt",
                 ctx->journal        ? ctx->journal
                 : ctx->journal_note ? ctx->journal_note
                                     : "");
    bytes = ca_tar_finish_gzip(tar, &error);
    if (!bytes) {
        g_task_return_error(task, g_steal_pointer(&error));
        return;
    }
    res = g_new0(CaDiagnoseResult, 1);
    res->bytes = bytes;
    res->name = g_steal_pointer(&top);
    res->timed_out = g_steal_pointer(&timed_out);
    g_task_return_pointer(task, res, result_free);
}

/*****************************************************************************/

void
ca_diagnose_async(const CaDiagnoseOptions *opts, GCancellable *cancellable,
                  GAsyncReadyCallback callback, gpointer user_data)
{
    g_autoptr(GTask) task = g_task_new(NULL, cancellable, callback, user_data);
    Ctx *ctx = g_new0(Ctx, 1);
    Op *start;

    g_task_set_source_tag(task, ca_diagnose_async);
    ctx->opts = *opts;
    ctx->now = g_get_real_time();
    ctx->redactor = ca_redactor_new(opts->personal);
    ctx->cancellable = g_cancellable_new();
    ctx->outstanding = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    ctx->timed_out = g_ptr_array_new_with_free_func(g_free);
    ctx->mm = g_tree_new_full((GCompareDataFunc) g_strcmp0, NULL, g_free,
                              (GDestroyNotify) string_free_all);
    ctx->nm = g_tree_new_full((GCompareDataFunc) g_strcmp0, NULL, g_free,
                              (GDestroyNotify) string_free_all);
    ctx->mm_note = g_string_new(NULL);
    ctx->nm_note = g_string_new(NULL);
    ctx->usb_devices = g_ptr_array_new_with_free_func(g_free);
    ctx->routes = g_string_new(NULL);
    g_task_set_task_data(task, ctx, ctx_free);
    if (cancellable) {
        ctx->caller = g_object_ref(cancellable);
        ctx->caller_handler = g_cancellable_connect(cancellable, G_CALLBACK(caller_cancelled_cb),
                                                    ctx->cancellable, NULL);
    }
    ctx->deadline = g_timeout_source_new(CA_DIAGNOSE_LIMIT_MS);
    g_source_set_callback(ctx->deadline, deadline_cb, ctx, NULL);
    g_source_attach(ctx->deadline, NULL);

    learn_secrets(ctx);
    learn_config_numbers(ctx);
    learn_status(ctx);
    /* One operation for the start itself: nothing completes before everything is asked. */
    start = op_begin(task, "start", NULL);
    ca_bus_new_async(ctx->cancellable, bus_ready, op_begin(task, "the system bus", NULL));
    {
        /* Both families, every table (policy routing included), and the rules. */
        const char *const routes[] = {"ip", "route", "show", "table", "all", NULL};
        const char *const rules[] = {"ip", "rule", "show", NULL};

        run_child(task, "ip route show table all", routes, routes_done);
        run_child(task, "ip rule show", rules, routes_done);
    }
    if (opts->journal) {
        g_autofree char *since = g_strdup_printf("--since=@%" G_GINT64_FORMAT,
                                                 ctx->now / G_USEC_PER_SEC - opts->since_s);
        const char *const argv[] = {"journalctl",
                                    "--no-pager",
                                    "-q",
                                    "-o",
                                    "short-iso-precise",
                                    "-n", /* bounds what is read into memory */
                                    "30000",
                                    since,
                                    "-u",
                                    "cellagent.service",
                                    "-u",
                                    "ModemManager.service",
                                    "-u",
                                    "NetworkManager.service",
                                    NULL};

        run_child(task, "journalctl", argv, journal_done);
    }
    op_end(start);
}

GBytes *
ca_diagnose_finish(GAsyncResult *result, char **out_name, char **out_timed_out, GError **error)
{
    CaDiagnoseResult *res = g_task_propagate_pointer(G_TASK(result), error);
    GBytes *bytes;

    if (!res)
        return NULL;
    bytes = g_bytes_ref(res->bytes);
    if (out_name)
        *out_name = g_strdup(res->name);
    if (out_timed_out)
        *out_timed_out = g_strdup(res->timed_out);
    result_free(res);
    return bytes;
}
