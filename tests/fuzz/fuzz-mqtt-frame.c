/* fuzz-mqtt-frame: the framer that bounds what libmosquitto reads from the broker, on any
 * byte stream. The first byte picks the limit and the chunk size; the rest is the stream.
 * Fed in chunks or at once, the result, the packet count and the announced size agree; a
 * TOO_LARGE result always announced more than the limit; a failed framer stays failed. */
#include "fuzz.h"
#include "mqtt-frame.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CaMqttFramer whole, chunked;
    CaMqttFrameResult a, b = CA_MQTT_FRAME_OK;
    guint32 limit;
    gsize chunk;

    if (size < 1)
        return 0;
    limit = 1u << (data[0] & 31);
    chunk = 1 + (data[0] >> 5) * 3;
    data++;
    size--;
    ca_mqtt_framer_init(&whole, limit);
    a = ca_mqtt_framer_feed(&whole, data, size);
    ca_mqtt_framer_init(&chunked, limit);
    for (gsize at = 0; at < size && b == CA_MQTT_FRAME_OK; at += chunk)
        b = ca_mqtt_framer_feed(&chunked, data + at, MIN(chunk, size - at));
    ca_fuzz_assert(a == b);
    ca_fuzz_assert(whole.packets == chunked.packets);
    if (a == CA_MQTT_FRAME_TOO_LARGE) {
        ca_fuzz_assert(whole.announced > limit && whole.announced == chunked.announced);
    }
    if (a != CA_MQTT_FRAME_OK)
        ca_fuzz_assert(ca_mqtt_framer_feed(&whole, data, size) == a);
    return 0;
}
