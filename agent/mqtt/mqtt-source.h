/* mqtt-source: a GSource that drives one libmosquitto handle from the GLib main loop
 * (HACKING.md C17; libmosquitto's external-loop rules in docs/mqtt.md, "libmosquitto facts").
 * It follows mosquitto_socket() as the library replaces or closes it, asks for G_IO_OUT
 * only while mosquitto_want_write(), calls mosquitto_loop_read/_write and hands every
 * result code to its callback.
 * Owns: the fd watch. Does not own: the handle, keepalive (loop_misc), reconnects. */
#pragma once
#include "mqtt-frame.h"

#include <glib.h>
#include <mosquitto.h>

typedef struct mosquitto CaMosquitto;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CaMosquitto, mosquitto_destroy)

/* Called after each dispatch with the loop_* result: MOSQ_ERR_SUCCESS, the library's
 * error, or MOSQ_ERR_CONN_LOST when the socket reported HUP/ERR/NVAL and the library did
 * not notice (it then stays unwatched until ca_mqtt_source_set_watching(TRUE)).
 * Return G_SOURCE_CONTINUE; G_SOURCE_REMOVE destroys the source. */
typedef gboolean (*CaMqttSourceFunc)(int rc, gpointer user_data);

/* A new source for mosq (borrowed: it must outlive the source); set the callback with
 * g_source_set_callback(source, (GSourceFunc) func, data, destroy). Starts watching.
 * What libmosquitto reads from the broker goes through a framer (mqtt-inbound.h): a packet
 * larger than max_packet bytes fails the read, and libmosquitto closes the connection. */
GSource *ca_mqtt_source_new(struct mosquitto *mosq, guint32 max_packet);
/* Watch the socket (TRUE) or leave it alone (FALSE: between a failure and the next
 * connect, so a dead socket the library has not closed cannot spin the loop). */
void ca_mqtt_source_set_watching(GSource *source, gboolean watching);
/* The fd currently watched, -1 when none (tests, logs). */
int ca_mqtt_source_get_fd(GSource *source);
/* The framer of the current socket: after a failed read, whether a packet was too large
 * (result) and how large it said it was (announced). */
const CaMqttFramer *ca_mqtt_source_get_framer(GSource *source);
/* Successful reads of incoming data so far (the broker's packets arrived). */
guint64 ca_mqtt_source_get_reads(GSource *source);
