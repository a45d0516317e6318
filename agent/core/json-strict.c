/* json-strict: strict parsing of remote JSON (json-strict.h). */
#include "json-strict.h"

#include "autocleanups.h"
#include "error.h"

#include <string.h>

/* A \u0000 escape anywhere in well-formed JSON text. Every escape is a backslash and one
 * character (or uXXXX), and backslashes occur only inside strings, so skipping two bytes
 * after each backslash never misreads an escaped backslash. */
static gboolean
has_escaped_nul(const char *text, gsize len)
{
    gsize i = 0;

    while (i < len) {
        if (text[i] != '\\') {
            i++;
            continue;
        }
        if (i + 5 < len && text[i + 1] == 'u' && strncmp(text + i + 2, "0000", 4) == 0)
            return TRUE;
        i += 2;
    }
    return FALSE;
}

/* Duplicate keys and depth, recursively (depth is bounded, so is the recursion). */
static gboolean
check_tree(const cJSON *item, guint depth, GError **error)
{
    if (!cJSON_IsObject(item) && !cJSON_IsArray(item))
        return TRUE;
    if (depth > CA_JSON_MAX_DEPTH) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                    "payload: nested deeper than %d levels", CA_JSON_MAX_DEPTH);
        return FALSE;
    }
    for (const cJSON *a = item->child; a; a = a->next) {
        if (cJSON_IsObject(item)) {
            for (const cJSON *b = a->next; b; b = b->next) {
                if (a->string && b->string && strcmp(a->string, b->string) == 0) {
                    g_autofree char *name =
                        g_utf8_substring(a->string, 0, MIN(g_utf8_strlen(a->string, -1), 64));

                    g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                                "payload: key \"%s\" given more than once", name);
                    return FALSE;
                }
            }
        }
        if (!check_tree(a, depth + 1, error))
            return FALSE;
    }
    return TRUE;
}

/* Nesting depth of the text itself, before cJSON recurses into it. */
static gboolean
text_depth_ok(const char *text, gsize len)
{
    guint depth = 0;
    gboolean in_string = FALSE;

    for (gsize i = 0; i < len; i++) {
        char c = text[i];

        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = FALSE;
        } else if (c == '"') {
            in_string = TRUE;
        } else if (c == '{' || c == '[') {
            if (++depth > CA_JSON_MAX_DEPTH + 1)
                return FALSE;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return TRUE;
}

cJSON *
ca_json_parse_strict(const char *payload, gsize len, GError **error)
{
    g_autoptr(cJSON) root = NULL;
    const char *end = NULL;

    if (memchr(payload, '\0', len)) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                            "payload: contains a NUL byte");
        return NULL;
    }
    if (!g_utf8_validate(payload, len, NULL)) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "payload: not valid UTF-8");
        return NULL;
    }
    if (!text_depth_ok(payload, len)) {
        g_set_error(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                    "payload: nested deeper than %d levels", CA_JSON_MAX_DEPTH);
        return NULL;
    }
    root = cJSON_ParseWithLengthOpts(payload, len, &end, FALSE);
    if (!root) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT, "payload: not valid JSON");
        return NULL;
    }
    for (; end && end < payload + len; end++) {
        if (!(*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')) {
            g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                                "payload: data after the JSON value");
            return NULL;
        }
    }
    return g_steal_pointer(&root);
}

gboolean
ca_json_check_strict(const cJSON *root, const char *payload, gsize len, GError **error)
{
    if (has_escaped_nul(payload, len)) {
        g_set_error_literal(error, CA_ERROR, CA_ERROR_INVALID_INPUT,
                            "payload: a string contains a NUL character (\\u0000)");
        return FALSE;
    }
    return check_tree(root, 1, error);
}
