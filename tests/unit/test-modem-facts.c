/* Unit tests for modem-facts.c: [modem] match, the pin-file reader, hex formatting
 * as mmcli prints it, and the facts snapshot (copy, equality, NAN handling). */
#include "modem-facts.h"

#include "error.h"

#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

typedef struct {
    const char *match, *equipment_id, *device;
    gboolean want;
} MatchCase;

static const MatchCase match_cases[] = {
    {"", "861234567890124", "/sys/devices/usb1/1-1", TRUE},
    {NULL, NULL, NULL, TRUE},
    {"861234567890124", "861234567890124", "/sys/devices/usb1/1-1", TRUE},
    {"861234567890125", "861234567890124", "/sys/devices/usb1/1-1", FALSE},
    {"/sys/devices/usb1/1-1", "861234567890124", "/sys/devices/usb1/1-1", TRUE},
    {"/sys/devices/usb1/1-1/", "861234567890124", "/sys/devices/usb1/1-1", TRUE},
    {"/sys/devices/usb1/1-1", "861234567890124", "/sys/devices/usb1/1-10", FALSE},
    {"/sys/devices/usb1/1", "861234567890124", "/sys/devices/usb1/1-1", FALSE},
    {"861234567890124", NULL, NULL, FALSE},
    {"/", NULL, "/", TRUE},
};

static void
test_match(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(match_cases); i++) {
        const MatchCase *c = &match_cases[i];

        g_assert_cmpint(ca_modem_match(c->match, c->equipment_id, c->device), ==, c->want);
    }
}

typedef struct {
    const char *content; /* NULL: no file */
    const char *want;    /* NULL: error */
    gint code;
} PinCase;

static const PinCase pin_cases[] = {
    {"1234\n", "1234", 0},
    {"1234", "1234", 0},
    {"  87654321  \r\nignored\n", "87654321", 0},
    {"123\n", NULL, CA_ERROR_INVALID_CONFIG},
    {"123456789\n", NULL, CA_ERROR_INVALID_CONFIG},
    {"12a4\n", NULL, CA_ERROR_INVALID_CONFIG},
    {"\n1234\n", NULL, CA_ERROR_INVALID_CONFIG},
    {"", NULL, CA_ERROR_INVALID_CONFIG},
    {NULL, NULL, CA_ERROR_IO},
};

static void
test_pin_file(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-modem-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "pin", NULL);

    for (gsize i = 0; i < G_N_ELEMENTS(pin_cases); i++) {
        const PinCase *c = &pin_cases[i];
        g_autoptr(GError) error = NULL;
        g_autofree char *pin = NULL;

        g_unlink(path);
        if (c->content) {
            g_assert_true(g_file_set_contents(path, c->content, -1, NULL));
            g_assert_cmpint(g_chmod(path, 0600), ==, 0);
        }
        pin = ca_modem_read_pin_file(path, &error);
        if (c->want) {
            g_assert_no_error(error);
            g_assert_cmpstr(pin, ==, c->want);
        } else {
            g_assert_null(pin);
            g_assert_error(error, CA_ERROR, c->code);
            /* The message names the file, never the PIN. */
            g_assert_nonnull(strstr(error->message, path));
            if (c->content && c->content[0])
                g_assert_null(strstr(error->message, "123"));
        }
    }
    g_unlink(path);
    g_rmdir(dir);
}

static void
test_format_hex(void)
{
    g_autofree char *lac = ca_modem_format_hex(0x1a2b, 4);
    g_autofree char *tac = ca_modem_format_hex(0x1a2b, 6);
    g_autofree char *ci = ca_modem_format_hex(0x1a2b3c4, 8);
    g_autofree char *wide = ca_modem_format_hex(0x123456789UL, 8);

    g_assert_cmpstr(lac, ==, "1A2B");
    g_assert_cmpstr(tac, ==, "001A2B");
    g_assert_cmpstr(ci, ==, "01A2B3C4");
    g_assert_cmpstr(wide, ==, "123456789");
    g_assert_null(ca_modem_format_hex(0, 4));
}

static void
test_facts(void)
{
    CaModemFacts a, b;
    g_autoptr(CaModemFacts) c = NULL;

    ca_modem_facts_init(&a);
    ca_modem_facts_init(&b);
    g_assert_true(isnan(a.rsrp));
    g_assert_false(a.present);
    g_assert_true(ca_modem_facts_equal(&a, &b));
    a.present = TRUE;
    a.path = g_strdup("/org/freedesktop/ModemManager1/Modem/0");
    a.operator_name = g_strdup("Safaricom");
    a.rsrp = -95;
    g_assert_false(ca_modem_facts_equal(&a, &b));
    ca_modem_facts_copy(&b, &a);
    g_assert_true(ca_modem_facts_equal(&a, &b));
    g_assert_true(a.operator_name != b.operator_name); /* a deep copy */
    c = ca_modem_facts_dup(&b);
    ca_modem_facts_clear(&a);
    ca_modem_facts_clear(&b);
    g_assert_cmpstr(c->operator_name, ==, "Safaricom");
    g_assert_cmpfloat(c->rsrp, ==, -95);
    c->rsrp = NAN;
    ca_modem_facts_copy(&a, c);
    g_assert_true(ca_modem_facts_equal(&a, c));
    c->rsrp = -95;
    g_assert_false(ca_modem_facts_equal(&a, c));
    ca_modem_facts_copy(&a, &a); /* self-copy is harmless */
    g_assert_cmpstr(a.operator_name, ==, "Safaricom");
    ca_modem_facts_clear(&a);
    g_assert_null(a.path);
}

static void
test_pin_status_strings(void)
{
    for (int s = CA_MODEM_PIN_NONE; s <= CA_MODEM_PIN_FAILED; s++)
        g_assert_nonnull(ca_modem_pin_status_to_string(s));
    g_assert_cmpstr(ca_modem_pin_status_to_string(CA_MODEM_PIN_WRONG), ==, "wrong");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/modem/match", test_match);
    g_test_add_func("/modem/pin-file", test_pin_file);
    g_test_add_func("/modem/format-hex", test_format_hex);
    g_test_add_func("/modem/facts", test_facts);
    g_test_add_func("/modem/pin-status-strings", test_pin_status_strings);
    return g_test_run();
}
