/* request-id: the id of a request (docs/commands.md, docs/sms.md), one rule for sms/out and cmd/<name>:
 * 1-64 characters of A-Z a-z 0-9 . _ : - (so never an MQTT separator or wildcard). */
#pragma once
#include <glib.h>

#define CA_REQUEST_ID_MAX 64

gboolean ca_request_id_is_valid(const char *id);
