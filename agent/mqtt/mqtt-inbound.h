/* mqtt-inbound: bounds the size of the packets libmosquitto reads from the broker.
 * libmosquitto 2.0 checks an incoming packet's size only when built as the broker: the
 * client allocates whatever Remaining Length the broker announces, and MQTT 3.1.1 has no
 * Maximum Packet Size to announce. So the bytes libmosquitto receives on the broker
 * connection (its read() of the socket, or SSL_read() under TLS) pass through a framer
 * (core/mqtt-frame.h) while the agent runs mosquitto_loop_read(); a packet announcing more
 * than the limit fails that read (EMSGSIZE) before libmosquitto reads its body, and
 * libmosquitto closes the connection. docs/mqtt.md explains how the calls are reached
 * (libmosquitto's own import slots, patched once at start).
 * Owns: the two import slots of libmosquitto it patches. */
#pragma once
#include "mqtt-frame.h"

#include <glib.h>

G_BEGIN_DECLS

/* Patch libmosquitto's imports of read() and SSL_read() (once per process; later calls
 * return the first result). FALSE when either could not be reached (then nothing bounds
 * some packets: the caller says so); *detail names what was found or missing. */
gboolean ca_mqtt_inbound_install(const char **detail);
/* While a loop_read runs: what libmosquitto reads from fd (ssl, when not NULL) goes
 * through framer. */
void ca_mqtt_inbound_watch(CaMqttFramer *framer, int fd, void *ssl);
void ca_mqtt_inbound_unwatch(void);

G_END_DECLS
