/* mqtt-frame: follows the packet boundaries of an MQTT byte stream as it is received, to
 * tell how large each packet says it is before its body arrives. MQTT's fixed header is one
 * byte (type and flags) and a Remaining Length of 1-4 bytes, 7 bits each, least significant
 * first; the packet is 1 + those bytes + Remaining Length long. Any chunking of the stream
 * gives the same result. Pure: no I/O, no allocation.
 * Owns: nothing. Used by the MQTT adapter to bound what libmosquitto may allocate. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

typedef enum {
    CA_MQTT_FRAME_OK,        /* within the limit so far */
    CA_MQTT_FRAME_TOO_LARGE, /* a packet announced more than max_packet bytes */
    CA_MQTT_FRAME_MALFORMED, /* a Remaining Length longer than 4 bytes */
} CaMqttFrameResult;

typedef struct {
    guint32 max_packet;       /* largest whole packet accepted, bytes */
    guint8 state;             /* private: which part of a packet comes next */
    guint8 len_bytes;         /* private: Remaining Length bytes read so far */
    guint32 remaining;        /* private: Remaining Length so far, then body bytes left */
    guint32 mult;             /* private */
    CaMqttFrameResult result; /* OK until the stream broke a rule, then why */
    guint64 announced;        /* the size of the packet that broke the limit */
    guint64 packets;          /* whole packets seen */
} CaMqttFramer;

/* A framer at the start of a stream (a new connection). */
void ca_mqtt_framer_init(CaMqttFramer *f, guint32 max_packet);
/* Follow len more received bytes. Once it returned anything but OK it keeps returning it:
 * the stream cannot be followed any further (the connection must be closed). */
CaMqttFrameResult ca_mqtt_framer_feed(CaMqttFramer *f, const guint8 *buf, gsize len);

G_END_DECLS
