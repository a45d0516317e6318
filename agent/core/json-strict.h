/* json-strict: the one parser for JSON that a remote party sends (cmd/<name> requests,
 * sms/out requests). cJSON alone accepts what we must refuse: a "\u0000" escape silently
 * cuts a string (an id or an argument would mean something else than was sent), a key given
 * twice is resolved by taking the first, trailing data after the value is ignored, and
 * nesting is bounded only by cJSON's own (deep, recursive) limit. */
#pragma once
#include <cjson/cJSON.h>
#include <glib.h>

/* Deepest nesting of objects and arrays accepted. */
#define CA_JSON_MAX_DEPTH 16

/* Parse payload (len bytes, not necessarily NUL-terminated) as one JSON value. Refused with
 * CA_ERROR_INVALID_INPUT and a reason for the requester ("payload: ..."): a NUL byte,
 * invalid UTF-8, nesting deeper than CA_JSON_MAX_DEPTH, invalid JSON ("payload: not valid
 * JSON"), anything but white space after the value. */
cJSON *ca_json_parse_strict(const char *payload, gsize len, GError **error);

/* The checks of content, run on what ca_json_parse_strict returned for the same payload once
 * the caller has read the request's id (so the refusal can name the request): a \u0000
 * escape in any string or key, a key given twice in any object. */
gboolean ca_json_check_strict(const cJSON *root, const char *payload, gsize len, GError **error);
