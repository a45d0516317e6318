/* fuzz-status: the status file reader (ca_status_parse) on arbitrary bytes, then what
 * `cellagent --status` does with a document: judge its freshness, redact it, render it. The
 * file is written by the agent, but anyone in the service group could have replaced it, so
 * the reader must survive anything. Every input gives a document or an error, never both;
 * rendering a parsed document always gives text; redaction leaves no value of a personal
 * key but "###" (or null) and is idempotent. */
#include "autocleanups.h"
#include "fuzz.h"
#include "status-file.h"

#include <string.h>

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ca_fuzz_init();
    return 0;
}

static void
check_redacted(const cJSON *node)
{
    const cJSON *child;

    cJSON_ArrayForEach(child, node)
    {
        if (child->string && (!strcmp(child->string, "imei") || !strcmp(child->string, "imsi") ||
                              !strcmp(child->string, "iccid") || !strcmp(child->string, "text")))
            ca_fuzz_assert(cJSON_IsNull(child) ||
                           g_strcmp0(cJSON_GetStringValue(child), "###") == 0);
        else if (cJSON_IsObject(child) || cJSON_IsArray(child))
            check_redacted(child);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(cJSON) doc = ca_status_parse((const char *) data, size, &error);
    g_autofree char *text = NULL, *once = NULL, *twice = NULL;
    CaStatusFreshness f;
    gint64 age = -1;

    ca_fuzz_assert((doc == NULL) != (error == NULL));
    if (!doc)
        return 0;
    f = ca_status_check_freshness(doc, G_GINT64_CONSTANT(1796551200) * G_USEC_PER_SEC, &age);
    text = ca_status_format_text(doc, f, age, G_GINT64_CONSTANT(1796551200) * G_USEC_PER_SEC);
    ca_fuzz_assert(text != NULL && strstr(text, "Agent") != NULL);
    ca_status_redact(doc);
    check_redacted(doc);
    once = cJSON_PrintUnformatted(doc);
    ca_status_redact(doc);
    twice = cJSON_PrintUnformatted(doc);
    ca_fuzz_assert(g_strcmp0(once, twice) == 0);
    return 0;
}
