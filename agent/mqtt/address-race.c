/* address-race: RFC 8305 connection attempts over a resolved address list; the first TCP
 * connect to complete names the address. */
#define CA_LOG_MODULE "mqtt"
#include "address-race.h"

#include "autocleanups.h"
#include "log.h"

typedef struct {
    GPtrArray *order; /* GInetAddress*, in the order tried */
    guint next;       /* index of the next attempt */
    guint pending;    /* attempts in flight */
    guint16 port;
    GSocketClient *client;
    GCancellable *attempts; /* cancels every attempt (the race is decided, or the caller
                             * cancelled) */
    GCancellable *caller;
    gulong caller_id;
    GSource *delay;      /* owned: the next attempt's start */
    GError *first_error; /* of the first attempt that failed */
    GString *failures;   /* "ADDRESS: message; ..." */
    gboolean done;
} Race;

static void
race_free(gpointer data)
{
    Race *r = data;

    ca_clear_source(&r->delay);
    g_ptr_array_unref(r->order);
    g_object_unref(r->client);
    g_object_unref(r->attempts);
    g_clear_object(&r->caller);
    g_clear_error(&r->first_error);
    g_string_free(r->failures, TRUE);
    g_free(r);
}

GList *
ca_address_race_order(GList *addresses)
{
    GQueue first = G_QUEUE_INIT, other = G_QUEUE_INIT;
    GList *out = NULL;
    GSocketFamily lead;

    if (!addresses)
        return NULL;
    lead = g_inet_address_get_family(addresses->data);
    for (GList *l = addresses; l; l = l->next)
        g_queue_push_tail(g_inet_address_get_family(l->data) == lead ? &first : &other,
                          g_object_ref(l->data));
    while (first.length || other.length) {
        if (first.length)
            out = g_list_prepend(out, g_queue_pop_head(&first));
        if (other.length)
            out = g_list_prepend(out, g_queue_pop_head(&other));
    }
    return g_list_reverse(out);
}

/* One connect attempt: the race and the address it tries. */
typedef struct {
    GTask *task;
    GInetAddress *addr;
} Attempt;

static void start_attempt(GTask *task);

/* Decide the race: winner (consumed) or the collected error. */
static void
race_finish(GTask *task, GInetAddress *winner)
{
    Race *r = g_task_get_task_data(task);

    r->done = TRUE;
    ca_clear_source(&r->delay);
    g_cancellable_cancel(r->attempts);
    if (r->caller_id) {
        g_cancellable_disconnect(r->caller, r->caller_id);
        r->caller_id = 0;
    }
    if (winner) {
        g_task_return_pointer(task, winner, g_object_unref);
    } else if (g_cancellable_is_cancelled(r->caller)) {
        g_task_return_new_error(task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled");
    } else {
        g_task_return_new_error(task, r->first_error->domain, r->first_error->code, "%s",
                                r->failures->str);
    }
}

static void
attempt_ready(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Attempt *a = user_data;
    g_autoptr(GTask) task = a->task;
    g_autoptr(GInetAddress) addr = a->addr;
    Race *r = g_task_get_task_data(task);
    g_autoptr(GError) error = NULL;
    g_autoptr(GSocketConnection) conn =
        g_socket_client_connect_finish(G_SOCKET_CLIENT(source), result, &error);
    g_autofree char *text = g_inet_address_to_string(addr);

    g_free(a);

    r->pending--;
    if (r->done) {
        if (conn)
            g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
        return;
    }
    if (conn) {
        ca_debug("%s port %u answered first", text, (unsigned) r->port);
        g_io_stream_close(G_IO_STREAM(conn), NULL, NULL);
        race_finish(task, g_steal_pointer(&addr));
        return;
    }
    if (g_cancellable_is_cancelled(r->caller)) {
        race_finish(task, NULL);
        return;
    }
    if (!r->first_error)
        r->first_error = g_error_copy(error);
    g_string_append_printf(r->failures, "%s%s: %s", r->failures->len ? "; " : "", text,
                           error->message);
    if (r->next < r->order->len) {
        /* A failed attempt starts the next one at once (RFC 8305, section 5). */
        ca_clear_source(&r->delay);
        start_attempt(task);
    } else if (r->pending == 0) {
        race_finish(task, NULL);
    }
}

static gboolean
delay_cb(gpointer user_data)
{
    GTask *task = user_data;
    Race *r = g_task_get_task_data(task);

    ca_clear_source(&r->delay);
    start_attempt(task);
    return G_SOURCE_REMOVE;
}

static void
start_attempt(GTask *task)
{
    Race *r = g_task_get_task_data(task);
    GInetAddress *addr = g_ptr_array_index(r->order, r->next);
    g_autoptr(GSocketAddress) sa = g_inet_socket_address_new(addr, r->port);
    g_autofree char *text = g_inet_address_to_string(addr);
    Attempt *a = g_new0(Attempt, 1);

    r->next++;
    r->pending++;
    ca_debug("connect attempt %u of %u: %s port %u", r->next, r->order->len, text,
             (unsigned) r->port);
    a->task = g_object_ref(task);
    a->addr = g_object_ref(addr);
    g_socket_client_connect_async(r->client, G_SOCKET_CONNECTABLE(sa), r->attempts, attempt_ready,
                                  a);
    if (r->next < r->order->len) {
        /* The task outlives the timer: race_free, run when the task goes, destroys it. */
        r->delay = g_timeout_source_new(CA_ADDRESS_RACE_DELAY_MS);
        g_source_set_callback(r->delay, delay_cb, task, NULL);
        g_source_attach(r->delay, NULL);
    }
}

static void
caller_cancelled_cb(GCancellable *cancellable, gpointer user_data)
{
    g_cancellable_cancel(user_data);
}

void
ca_address_race_async(GList *addresses, guint16 port, guint timeout_ms, GCancellable *cancellable,
                      GAsyncReadyCallback callback, gpointer user_data)
{
    g_autoptr(GTask) task = NULL;
    Race *r;
    GList *order;

    g_return_if_fail(addresses != NULL);
    task = g_task_new(NULL, cancellable, callback, user_data);
    r = g_new0(Race, 1);
    order = ca_address_race_order(addresses);
    g_task_set_source_tag(task, ca_address_race_async);
    r->order = g_ptr_array_new_with_free_func(g_object_unref);
    for (GList *l = order; l; l = l->next)
        g_ptr_array_add(r->order, l->data); /* takes the list's references */
    g_list_free(order);
    r->port = port;
    r->client = g_socket_client_new();
    g_socket_client_set_enable_proxy(r->client, FALSE);
    g_socket_client_set_timeout(r->client, MAX(timeout_ms / 1000, 1));
    r->attempts = g_cancellable_new();
    r->failures = g_string_new(NULL);
    g_task_set_task_data(task, r, race_free);
    if (cancellable) {
        r->caller = g_object_ref(cancellable);
        /* Runs at once when already cancelled: the first attempt then fails at once. */
        r->caller_id = g_cancellable_connect(cancellable, G_CALLBACK(caller_cancelled_cb),
                                             g_object_ref(r->attempts), g_object_unref);
    }
    start_attempt(task);
}

GInetAddress *
ca_address_race_finish(GAsyncResult *result, GError **error)
{
    g_return_val_if_fail(g_task_is_valid(result, NULL), NULL);
    return g_task_propagate_pointer(G_TASK(result), error);
}
