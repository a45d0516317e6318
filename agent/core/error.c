/* error: the CA_ERROR quark. Written out rather than with G_DEFINE_QUARK, whose argument
 * clang-format would space into "cellagent - error - quark". */
#include "error.h"

GQuark
ca_error_quark(void)
{
    return g_quark_from_static_string("cellagent-error-quark");
}
