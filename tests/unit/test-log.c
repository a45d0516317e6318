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

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/log/redaction", test_redaction);
    g_test_add_func("/log/levels", test_levels);
    return g_test_run();
}
