/* error: the CA_ERROR quark. */
#include "error.h"

G_DEFINE_QUARK(cellagent - error - quark, ca_error)
