/* The core's names for ModemManager's enum values (modem-facts.c) against the installed
 * libmm-glib: for every value libmm-glib knows, the core's name is the same, or NULL for a
 * value added after the core's table (reported, so the table can be brought up to date,
 * but not fatal: telemetry then leaves that field out). */
#include "modem-facts.h"

#include <libmm-glib.h>

typedef const char *(*NameFunc)(int value);

static const char *
state_name(int v)
{
    return ca_mm_modem_state_to_string((MMModemState) v);
}

static const char *
failed_name(int v)
{
    return ca_mm_failed_reason_to_string((MMModemStateFailedReason) v);
}

static const char *
lock_name(int v)
{
    return ca_mm_lock_to_string((MMModemLock) v);
}

static const char *
registration_name(int v)
{
    return ca_mm_registration_to_string((MMModem3gppRegistrationState) v);
}

static void
check_enum(GType type, NameFunc ours)
{
    GEnumClass *klass = g_type_class_ref(type);
    guint known = 0;

    for (guint i = 0; i < klass->n_values; i++) {
        const GEnumValue *v = &klass->values[i];
        const char *name = ours(v->value);

        if (name) {
            g_assert_cmpstr(name, ==, v->value_nick);
            known++;
        } else {
            g_test_message("%s: %s (%s) is newer than the core's table", g_type_name(type),
                           v->value_name, v->value_nick);
        }
    }
    /* The table was made from ModemManager 1.20: there, every value is in it. */
    if (!MM_CHECK_VERSION(1, 21, 0))
        g_assert_cmpuint(known, ==, klass->n_values);
    g_type_class_unref(klass);
}

static void
test_enums(void)
{
    check_enum(MM_TYPE_MODEM_STATE, state_name);
    check_enum(MM_TYPE_MODEM_STATE_FAILED_REASON, failed_name);
    check_enum(MM_TYPE_MODEM_LOCK, lock_name);
    check_enum(MM_TYPE_MODEM_3GPP_REGISTRATION_STATE, registration_name);
    /* Values no ModemManager has: NULL, not a crash. */
    g_assert_null(ca_mm_modem_state_to_string((MMModemState) 1000));
    g_assert_null(ca_mm_lock_to_string((MMModemLock) 1000));
}

static void
test_access_tech(void)
{
    GFlagsClass *klass = g_type_class_ref(MM_TYPE_MODEM_ACCESS_TECHNOLOGY);

    for (guint i = 0; i < klass->n_values; i++) {
        const GFlagsValue *v = &klass->values[i];
        g_autofree char *theirs = NULL;
        const char *name;

        /* Single flags only: UNKNOWN (0) and ANY (all bits) are not technologies. */
        if (v->value == 0 || (v->value & (v->value - 1)) != 0)
            continue;
        theirs = mm_modem_access_technology_build_string_from_mask(v->value);
        name = ca_mm_access_tech_flag_to_string(v->value);
        if (name)
            g_assert_cmpstr(name, ==, theirs);
        else
            g_test_message("access technology %s is newer than the core's table", theirs);
    }
    g_assert_cmpstr(ca_mm_access_tech_flag_to_string(MM_MODEM_ACCESS_TECHNOLOGY_LTE), ==, "lte");
    g_assert_null(ca_mm_access_tech_flag_to_string(MM_MODEM_ACCESS_TECHNOLOGY_UNKNOWN));
    g_type_class_unref(klass);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/mm-names/enums", test_enums);
    g_test_add_func("/mm-names/access-tech", test_access_tech);
    return g_test_run();
}
