/* The error domain's registered name, as GError users (and g_dbus_error mappings) see it. */
#include "error.h"

static void
test_quark_name(void)
{
    g_autoptr(GError) error = g_error_new(CA_ERROR, CA_ERROR_INVALID_CONFIG, "x");

    g_assert_cmpstr(g_quark_to_string(CA_ERROR), ==, "cellagent-error-quark");
    g_assert_true(g_error_matches(error, CA_ERROR, CA_ERROR_INVALID_CONFIG));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/error/quark-name", test_quark_name);
    return g_test_run();
}
