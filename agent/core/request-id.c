/* request-id: the contract's request id rule (see request-id.h). */
#include "request-id.h"

#include <string.h>

gboolean
ca_request_id_is_valid(const char *id)
{
    gsize n = 0;

    if (!id)
        return FALSE;
    for (const char *p = id; *p; p++, n++) {
        if (!g_ascii_isalnum(*p) && !strchr("._:-", *p))
            return FALSE;
    }
    return n >= 1 && n <= CA_REQUEST_ID_MAX;
}
