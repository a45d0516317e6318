/* route-watch: tells when the kernel's routing table changes, from rtnetlink's route
 * multicast groups (RTMGRP_IPV4_ROUTE, RTMGRP_IPV6_ROUTE) on a non-blocking NETLINK_ROUTE
 * socket watched by the main loop. Reading them needs no capability. Used only while the
 * uplink module waits for the kernel to follow a switch, so a steady device wakes for none.
 * Owns: the socket and its GSource. Does not own: what a change means (the caller asks the
 * kernel again). */
#pragma once
#include <glib.h>

typedef struct _CaRouteWatch CaRouteWatch;

/* Called once per batch of route messages (or when messages were lost). */
typedef void (*CaRouteWatchFunc)(gpointer user_data);

/* Start watching; NULL with error when the socket cannot be had (e.g. a sandbox without
 * AF_NETLINK). */
CaRouteWatch *ca_route_watch_new(CaRouteWatchFunc func, gpointer user_data, GError **error);
void ca_route_watch_free(CaRouteWatch *self);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaRouteWatch, ca_route_watch_free)
