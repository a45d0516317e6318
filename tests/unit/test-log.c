/* Unit tests for log: redaction of personal data and level names. */
#define CA_LOG_MODULE "test"
#include "log.h"

static void
test_redaction(void)
{
    ca_log_init(CA_LOG_DEBUG, FALSE);
    g_assert_cmpstr(ca_log_personal("+254712345678"), ==, "###");
    g_assert_cmpstr(ca_log_personal(NULL), ==, "(null)");
    ca_log_init(CA_LOG_DEBUG, TRUE);
    g_assert_cmpstr(ca_log_personal("+254712345678"), ==, "+254712345678");
    ca_log_init(CA_LOG_DEBUG, FALSE);
}

static void
test_levels(void)
{
    CaLogLevel l = CA_LOG_ERROR;

    g_assert_true(ca_log_level_from_string("debug", &l));
    g_assert_cmpint(l, ==, CA_LOG_DEBUG);
    g_assert_true(ca_log_level_from_string("warning", &l));
    g_assert_cmpint(l, ==, CA_LOG_WARNING);
    g_assert_false(ca_log_level_from_string("verbose", &l));
    g_assert_cmpint(l, ==, CA_LOG_WARNING);
    g_assert_cmpstr(ca_log_level_to_string(CA_LOG_INFO), ==, "info");
}

/* With the agent's writer installed, criticals stay fatal when GLib was told so
 * (G_DEBUG=fatal-criticals in every test; g_test_init() does the same), and are not
 * when it was not. */
static void
test_fatal_criticals(void)
{
    if (g_test_subprocess()) {
        ca_log_init(CA_LOG_DEBUG, FALSE);
        g_critical("critical from the test");
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*critical from the test*");
}

static void
test_nonfatal_criticals(void)
{
    if (g_test_subprocess()) {
        g_log_set_always_fatal(G_LOG_FATAL_MASK);
        ca_log_init(CA_LOG_DEBUG, FALSE);
        g_critical("critical from the test");
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_passed();
    g_test_trap_assert_stderr("*critical from the test*");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/log/redaction", test_redaction);
    g_test_add_func("/log/levels", test_levels);
    g_test_add_func("/log/fatal-criticals", test_fatal_criticals);
    g_test_add_func("/log/nonfatal-criticals", test_nonfatal_criticals);
    return g_test_run();
}
