/* Unit tests for mqtt-frame: packet sizes of a received MQTT stream, whatever its chunking;
 * the limit counts the whole packet (fixed header included); a too long Remaining Length. */
#include "mqtt-frame.h"

#include <string.h>

/* A packet of type byte t with a body of n bytes (Remaining Length encoded), appended. */
static void
append_packet(GByteArray *a, guint8 t, guint32 n)
{
    guint8 b;

    g_byte_array_append(a, &t, 1);
    do {
        b = n % 128;
        n /= 128;
        if (n)
            b |= 128;
        g_byte_array_append(a, &b, 1);
    } while (n);
}

static void
append_body(GByteArray *a, guint32 n)
{
    guint8 zero = 0;

    for (guint32 i = 0; i < n; i++)
        g_byte_array_append(a, &zero, 1);
}

/* Every chunk size gives the same packet count and no failure. */
static void
test_chunking(void)
{
    g_autoptr(GByteArray) a = g_byte_array_new();
    static const guint32 sizes[] = {0, 1, 2, 127, 128, 300, 16383, 16384, 1000};

    for (gsize i = 0; i < G_N_ELEMENTS(sizes); i++) {
        append_packet(a, 0x30, sizes[i]);
        append_body(a, sizes[i]);
    }
    append_packet(a, 0xd0, 0); /* PINGRESP */
    for (gsize chunk = 1; chunk <= a->len; chunk = chunk < 8 ? chunk + 1 : chunk * 3) {
        CaMqttFramer f;

        ca_mqtt_framer_init(&f, 20000);
        for (gsize at = 0; at < a->len; at += chunk)
            g_assert_cmpint(ca_mqtt_framer_feed(&f, a->data + at, MIN(chunk, a->len - at)), ==,
                            CA_MQTT_FRAME_OK);
        g_assert_cmpuint(f.packets, ==, G_N_ELEMENTS(sizes) + 1);
    }
}

/* The limit is the whole packet: 1 + length bytes + body. Exactly the limit passes. */
static void
test_limit(void)
{
    CaMqttFramer f;
    g_autoptr(GByteArray) ok = g_byte_array_new();
    g_autoptr(GByteArray) big = g_byte_array_new();

    append_packet(ok, 0x30, 1024 * 1024 - 4); /* 1 + 3 + body = 1 MiB */
    ca_mqtt_framer_init(&f, 1024 * 1024);
    g_assert_cmpint(ca_mqtt_framer_feed(&f, ok->data, ok->len), ==, CA_MQTT_FRAME_OK);

    append_packet(big, 0x30, 1024 * 1024 - 3);
    ca_mqtt_framer_init(&f, 1024 * 1024);
    g_assert_cmpint(ca_mqtt_framer_feed(&f, big->data, big->len), ==, CA_MQTT_FRAME_TOO_LARGE);
    g_assert_cmpuint(f.announced, ==, 1024 * 1024 + 1);

    /* 40 MiB announced one byte at a time, after a good packet: refused on the last length
     * byte, before any of its body; and it stays refused. */
    g_byte_array_set_size(big, 0);
    append_packet(big, 0x20, 2); /* CONNACK */
    append_body(big, 2);
    append_packet(big, 0x30, 40 * 1024 * 1024);
    ca_mqtt_framer_init(&f, 1024 * 1024);
    for (guint i = 0; i < big->len - 1; i++)
        g_assert_cmpint(ca_mqtt_framer_feed(&f, big->data + i, 1), ==, CA_MQTT_FRAME_OK);
    g_assert_cmpint(ca_mqtt_framer_feed(&f, big->data + big->len - 1, 1), ==,
                    CA_MQTT_FRAME_TOO_LARGE);
    g_assert_cmpuint(f.announced, ==, 1 + 4 + 40 * 1024 * 1024);
    g_assert_cmpuint(f.packets, ==, 1);
    g_assert_cmpint(ca_mqtt_framer_feed(&f, (const guint8 *) "\0", 1), ==, CA_MQTT_FRAME_TOO_LARGE);
}

/* A Remaining Length with a continuation bit on its 4th byte is malformed. */
static void
test_malformed(void)
{
    static const guint8 bad[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};
    static const guint8 max[] = {0x30, 0xff, 0xff, 0xff, 0x7f}; /* 268435455: legal, large */
    CaMqttFramer f;

    ca_mqtt_framer_init(&f, G_MAXUINT32);
    g_assert_cmpint(ca_mqtt_framer_feed(&f, bad, sizeof bad), ==, CA_MQTT_FRAME_MALFORMED);
    g_assert_cmpint(ca_mqtt_framer_feed(&f, bad, 1), ==, CA_MQTT_FRAME_MALFORMED);
    ca_mqtt_framer_init(&f, G_MAXUINT32);
    g_assert_cmpint(ca_mqtt_framer_feed(&f, max, sizeof max), ==, CA_MQTT_FRAME_OK);
    ca_mqtt_framer_init(&f, 1024);
    g_assert_cmpint(ca_mqtt_framer_feed(&f, max, sizeof max), ==, CA_MQTT_FRAME_TOO_LARGE);
    g_assert_cmpuint(f.announced, ==, 1 + 4 + 268435455ull);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/mqtt-frame/chunking", test_chunking);
    g_test_add_func("/mqtt-frame/limit", test_limit);
    g_test_add_func("/mqtt-frame/malformed", test_malformed);
    return g_test_run();
}
