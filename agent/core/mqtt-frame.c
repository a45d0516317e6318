/* mqtt-frame: packet sizes of a received MQTT stream (see mqtt-frame.h). */
#include "mqtt-frame.h"

enum {
    STATE_TYPE,   /* the first byte of a packet */
    STATE_LENGTH, /* a Remaining Length byte */
    STATE_BODY,   /* remaining body bytes */
    STATE_FAILED, /* too large or malformed: stays */
};

void
ca_mqtt_framer_init(CaMqttFramer *f, guint32 max_packet)
{
    *f = (CaMqttFramer){.max_packet = max_packet, .state = STATE_TYPE, .result = CA_MQTT_FRAME_OK};
}

static CaMqttFrameResult
fail(CaMqttFramer *f, CaMqttFrameResult result)
{
    f->state = STATE_FAILED;
    f->result = result;
    return result;
}

CaMqttFrameResult
ca_mqtt_framer_feed(CaMqttFramer *f, const guint8 *buf, gsize len)
{
    gsize i = 0;

    if (f->state == STATE_FAILED)
        return f->result;
    while (i < len) {
        switch (f->state) {
        case STATE_TYPE:
            f->state = STATE_LENGTH;
            f->len_bytes = 0;
            f->remaining = 0;
            f->mult = 1;
            i++;
            break;
        case STATE_LENGTH: {
            guint8 b = buf[i++];
            guint64 size;

            f->remaining += (guint32) (b & 127) * f->mult;
            f->mult *= 128;
            f->len_bytes++;
            if (b & 128) {
                if (f->len_bytes == 4)
                    return fail(f, CA_MQTT_FRAME_MALFORMED);
                break;
            }
            size = 1 + (guint64) f->len_bytes + f->remaining;
            if (size > f->max_packet) {
                f->announced = size;
                return fail(f, CA_MQTT_FRAME_TOO_LARGE);
            }
            if (f->remaining == 0) {
                f->packets++;
                f->state = STATE_TYPE;
            } else {
                f->state = STATE_BODY;
            }
            break;
        }
        case STATE_BODY: {
            gsize take = MIN((gsize) f->remaining, len - i);

            i += take;
            f->remaining -= (guint32) take;
            if (f->remaining == 0) {
                f->packets++;
                f->state = STATE_TYPE;
            }
            break;
        }
        case STATE_FAILED:
            return f->result;
        }
    }
    return CA_MQTT_FRAME_OK;
}
