/* Unit tests for address-race: the RFC 8305 order, and races on loopback (a listener on
 * 127.0.0.1 only, with ::1 and another refusing port first). Only loopback addresses. */
#define CA_LOG_MODULE "test"
#include "address-race.h"
#include "autocleanups.h"
#include "log.h"

#include <string.h>

static GList *
addresses(const char *const *texts)
{
    GList *out = NULL;

    for (; *texts; texts++)
        out = g_list_append(out, g_inet_address_new_from_string(*texts));
    return out;
}

static char *
joined(GList *list)
{
    GString *s = g_string_new(NULL);

    for (GList *l = list; l; l = l->next) {
        g_autofree char *t = g_inet_address_to_string(l->data);
        g_string_append_printf(s, "%s%s", s->len ? " " : "", t);
    }
    return g_string_free(s, FALSE);
}

static void
check_order(const char *const *in, const char *want)
{
    GList *list = addresses(in);
    GList *order = ca_address_race_order(list);
    g_autofree char *got = joined(order);

    g_assert_cmpstr(got, ==, want);
    g_list_free_full(order, g_object_unref);
    g_list_free_full(list, g_object_unref);
}

static void
test_order(void)
{
    static const char *const a[] = {"2001:db8::1", "2001:db8::2", "192.0.2.1",
                                    "192.0.2.2",   "192.0.2.3",   NULL};
    static const char *const b[] = {"192.0.2.1", "2001:db8::1", "2001:db8::2", NULL};
    static const char *const c[] = {"192.0.2.1", "192.0.2.2", NULL};
    static const char *const d[] = {"::1", NULL};

    /* Families alternate, the resolver's first family first, each in the resolver's order. */
    check_order(a, "2001:db8::1 192.0.2.1 2001:db8::2 192.0.2.2 192.0.2.3");
    check_order(b, "192.0.2.1 2001:db8::1 2001:db8::2");
    check_order(c, "192.0.2.1 192.0.2.2");
    check_order(d, "::1");
    g_assert_null(ca_address_race_order(NULL));
}

typedef struct {
    GMainLoop *loop;
    GInetAddress *winner;
    GError *error;
} Result;

static void
race_done(GObject *source, GAsyncResult *result, gpointer user_data)
{
    Result *r = user_data;

    r->winner = ca_address_race_finish(result, &r->error);
    g_main_loop_quit(r->loop);
}

static gboolean
deadline_cb(gpointer user_data)
{
    g_error("the race did not finish within 10 s");
    return G_SOURCE_REMOVE;
}

static void
run_race(GList *list, guint16 port, GCancellable *cancellable, Result *r)
{
    g_autoptr(GSource) deadline = g_timeout_source_new_seconds(10);

    r->loop = g_main_loop_new(NULL, FALSE);
    g_source_set_callback(deadline, deadline_cb, NULL, NULL);
    g_source_attach(deadline, NULL);
    ca_address_race_async(list, port, 5000, cancellable, race_done, r);
    g_main_loop_run(r->loop);
    g_source_destroy(deadline);
    g_main_loop_unref(r->loop);
}

/* A port with a listener on 127.0.0.1 only; *refused: a port nothing listens on. */
static GSocketListener *
listen_v4(guint16 *port, guint16 *refused)
{
    GSocketListener *l = g_socket_listener_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) any = g_inet_socket_address_new(lo, 0);
    g_autoptr(GSocketAddress) effective = NULL;
    g_autoptr(GSocket) probe = NULL;
    g_autoptr(GSocketAddress) probe_addr = NULL;

    g_assert_true(g_socket_listener_add_address(l, any, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP,
                                                NULL, &effective, &error));
    g_assert_no_error(error);
    *port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(effective));
    /* A port bound but not listening refuses connects, and stays ours meanwhile. */
    probe = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
    g_assert_no_error(error);
    g_assert_true(g_socket_bind(probe, any, FALSE, &error));
    probe_addr = g_socket_get_local_address(probe, &error);
    *refused = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(probe_addr));
    g_object_set_data_full(G_OBJECT(l), "refused", g_steal_pointer(&probe), g_object_unref);
    return l;
}

static void
test_race_loopback(void)
{
    static const char *const v6_first[] = {"::1", "127.0.0.1", NULL};
    g_autoptr(GSocketListener) listener = NULL;
    GList *list = addresses(v6_first);
    Result r = {0};
    guint16 port, refused;
    g_autofree char *text = NULL;

    listener = listen_v4(&port, &refused);
    /* ::1 refuses (nothing listens there, or no IPv6 at all): 127.0.0.1 wins. */
    run_race(list, port, NULL, &r);
    g_assert_no_error(r.error);
    text = g_inet_address_to_string(r.winner);
    g_assert_cmpstr(text, ==, "127.0.0.1");
    g_clear_object(&r.winner);

    /* Nothing listens anywhere: the error names every address tried. */
    memset(&r, 0, sizeof r);
    run_race(list, refused, NULL, &r);
    g_assert_null(r.winner);
    g_assert_nonnull(r.error);
    g_assert_nonnull(strstr(r.error->message, "::1: "));
    g_assert_nonnull(strstr(r.error->message, "127.0.0.1: "));
    g_clear_error(&r.error);

    /* Cancelled by the caller: cancelled, never a winner. */
    {
        g_autoptr(GCancellable) c = g_cancellable_new();

        memset(&r, 0, sizeof r);
        g_cancellable_cancel(c);
        run_race(list, port, c, &r);
        g_assert_null(r.winner);
        g_assert_error(r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
        g_clear_error(&r.error);
    }
    g_list_free_full(list, g_object_unref);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ca_log_init(CA_LOG_ERROR, FALSE);
    g_test_add_func("/address-race/order", test_order);
    g_test_add_func("/address-race/loopback", test_race_loopback);
    return g_test_run();
}
