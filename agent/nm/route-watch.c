/* route-watch: rtnetlink route events on the main loop (see route-watch.h). */
#include "route-watch.h"

#include "autocleanups.h"

#include <errno.h>
#include <gio/gio.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct _CaRouteWatch {
    GSocket *socket;
    GSource *source; /* owned: G_IO_IN on the socket */
    CaRouteWatchFunc func;
    gpointer user_data;
};

/* Read every pending datagram; TRUE when one of them was about a route (or some were
 * lost: then anything may have changed). */
static gboolean
drain(CaRouteWatch *self)
{
    gboolean changed = FALSE;
    char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));

    for (;;) {
        ssize_t n = recv(g_socket_get_fd(self->socket), buf, sizeof buf, MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == ENOBUFS) { /* the socket overflowed: messages were lost */
                changed = TRUE;
                continue;
            }
            return changed; /* EAGAIN: all read */
        }
        if (n == 0)
            return changed;
        /* NLMSG_NEXT casts from char *, which clang's -Wcast-align refuses; the buffer and
         * every message in it are NLMSG_ALIGNTO-aligned, so walk it by offset instead. */
        for (size_t off = 0; off + NLMSG_HDRLEN <= (size_t) n;) {
            const struct nlmsghdr *h = (const struct nlmsghdr *) (void *) (buf + off);

            if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > (size_t) n - off)
                break;
            if (h->nlmsg_type == RTM_NEWROUTE || h->nlmsg_type == RTM_DELROUTE)
                changed = TRUE;
            off += NLMSG_ALIGN(h->nlmsg_len);
        }
    }
}

static gboolean
readable_cb(GSocket *socket, GIOCondition condition, gpointer user_data)
{
    CaRouteWatch *self = user_data;

    if (drain(self))
        self->func(self->user_data);
    return G_SOURCE_CONTINUE;
}

CaRouteWatch *
ca_route_watch_new(CaRouteWatchFunc func, gpointer user_data, GError **error)
{
    struct sockaddr_nl addr = {
        .nl_family = AF_NETLINK,
        .nl_groups = RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE,
    };
    CaRouteWatch *self;
    GSocket *sock;
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_ROUTE);

    if (fd < 0 || bind(fd, (struct sockaddr *) &addr, sizeof addr) < 0) {
        int e = errno;

        if (fd >= 0)
            close(fd);
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "rtnetlink: %s", g_strerror(e));
        return NULL;
    }
    sock = g_socket_new_from_fd(fd, error); /* owns fd on success */
    if (!sock) {
        close(fd);
        return NULL;
    }
    self = g_new0(CaRouteWatch, 1);
    self->socket = sock;
    self->func = func;
    self->user_data = user_data;
    self->source = g_socket_create_source(sock, G_IO_IN, NULL);
    g_source_set_callback(self->source, G_SOURCE_FUNC(readable_cb), self, NULL);
    g_source_attach(self->source, NULL);
    return self;
}

void
ca_route_watch_free(CaRouteWatch *self)
{
    if (!self)
        return;
    ca_clear_source(&self->source);
    g_clear_object(&self->socket);
    g_free(self);
}
