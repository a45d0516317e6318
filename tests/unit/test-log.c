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

/* One owner of the effective level: cmd/log-level, then --log-level, then the config; a
 * reload (the config's level set again) ends cmd/log-level but not --log-level. */
static void
test_level_sources(void)
{
    ca_log_init(CA_LOG_INFO, FALSE);
    g_assert_cmpint(ca_log_get_level_source(), ==, CA_LOG_LEVEL_FROM_DEFAULT);
    ca_log_set_level_from(CA_LOG_LEVEL_FROM_CONFIG, CA_LOG_WARNING);
    g_assert_cmpint(ca_log_get_level(), ==, CA_LOG_WARNING);
    g_assert_cmpstr(ca_log_level_source_to_string(ca_log_get_level_source()), ==,
                    "[agent] log-level");

    /* --log-level debug wins over the file, at start and after every reload. */
    ca_log_set_level_from(CA_LOG_LEVEL_FROM_COMMAND_LINE, CA_LOG_DEBUG);
    g_assert_cmpint(ca_log_get_level(), ==, CA_LOG_DEBUG);
    ca_log_set_level_from(CA_LOG_LEVEL_FROM_CONFIG, CA_LOG_ERROR);
    g_assert_cmpint(ca_log_get_level(), ==, CA_LOG_DEBUG);
    g_assert_cmpint(ca_log_get_level_source(), ==, CA_LOG_LEVEL_FROM_COMMAND_LINE);

    /* cmd/log-level wins over both, until the next reload. */
    ca_log_set_level_from(CA_LOG_LEVEL_FROM_COMMAND, CA_LOG_WARNING);
    g_assert_cmpint(ca_log_get_level(), ==, CA_LOG_WARNING);
    g_assert_cmpint(ca_log_get_level_source(), ==, CA_LOG_LEVEL_FROM_COMMAND);
    ca_log_set_level_from(CA_LOG_LEVEL_FROM_CONFIG, CA_LOG_ERROR);
    g_assert_cmpint(ca_log_get_level(), ==, CA_LOG_DEBUG);
    g_assert_cmpint(ca_log_get_level_source(), ==, CA_LOG_LEVEL_FROM_COMMAND_LINE);

    /* Without a command line the reload's level is the file's. */
    ca_log_init(CA_LOG_INFO, FALSE);
    ca_log_set_level_from(CA_LOG_LEVEL_FROM_CONFIG, CA_LOG_INFO);
    ca_log_set_level_from(CA_LOG_LEVEL_FROM_COMMAND, CA_LOG_DEBUG);
    g_assert_cmpint(ca_log_get_level(), ==, CA_LOG_DEBUG);
    ca_log_set_level_from(CA_LOG_LEVEL_FROM_CONFIG, CA_LOG_WARNING);
    g_assert_cmpint(ca_log_get_level(), ==, CA_LOG_WARNING);
    g_assert_cmpint(ca_log_get_level_source(), ==, CA_LOG_LEVEL_FROM_CONFIG);
    ca_log_init(CA_LOG_DEBUG, FALSE);
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
    g_test_add_func("/log/level-sources", test_level_sources);
    g_test_add_func("/log/fatal-criticals", test_fatal_criticals);
    g_test_add_func("/log/nonfatal-criticals", test_nonfatal_criticals);
    return g_test_run();
}
