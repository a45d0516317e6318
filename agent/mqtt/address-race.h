/* address-race: which address of a broker host answers first (RFC 8305, Happy Eyeballs v2).
 * The resolver's list (getaddrinfo order, RFC 6724) is reordered so the address families
 * alternate, starting with the family the resolver put first; a TCP connect is started to
 * the first address, and to the next one each CA_ADDRESS_RACE_DELAY_MS later, or at once
 * when an attempt fails. The first connect that completes wins: every other attempt is
 * cancelled and the winning connection is closed (its owner, libmosquitto, then connects to
 * the winner itself). Owns: the attempts' sockets while the race runs. Does not own: the
 * MQTT connection, name resolution. */
#pragma once
#include <gio/gio.h>

G_BEGIN_DECLS

#define CA_ADDRESS_RACE_DELAY_MS 250 /* RFC 8305's recommended Connection Attempt Delay */

/* The addresses (GInetAddress, not consumed) in the order they are tried: families
 * interleaved, the first address's family first, each family in the resolver's order. A new
 * list of new references. */
GList *ca_address_race_order(GList *addresses);

/* Race connects to addresses (GInetAddress, at least one) on port; each attempt gives up
 * after timeout_ms. Completes with the first address that accepted a TCP connection. */
void ca_address_race_async(GList *addresses, guint16 port, guint timeout_ms,
                           GCancellable *cancellable, GAsyncReadyCallback callback,
                           gpointer user_data);
/* The winning address, or NULL with the error of the first attempt (each attempt's
 * address and error are in the message) when none connected. */
GInetAddress *ca_address_race_finish(GAsyncResult *result, GError **error);

G_END_DECLS
