/* configdoc: keeps README.md's config table and config/cellagent.conf in step with the
 * key table in agent/core/config-keys.c. --check fails on drift; --write regenerates. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#define BEGIN "<!-- config-table:begin -->\n"
#define END   "<!-- config-table:end -->"

static int
handle(const char *path, const char *expected, gboolean write, const char *begin, const char *end)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *updated = NULL;

    if (!g_file_get_contents(path, &text, NULL, &error)) {
        fprintf(stderr, "%s: %s\n", path, error->message);
        return 1;
    }
    if (begin) {
        char *b = strstr(text, begin), *e = b ? strstr(b, end) : NULL;
        if (!b || !e) {
            fprintf(stderr, "%s: markers %s...%s not found\n", path, begin, end);
            return 1;
        }
        updated = g_strdup_printf("%.*s%s%s%s", (int) (b - text), text, begin, expected, e);
    } else {
        updated = g_strdup(expected);
    }
    if (strcmp(updated, text) == 0)
        return 0;
    if (write) {
        if (!g_file_set_contents(path, updated, -1, &error)) {
            fprintf(stderr, "%s: %s\n", path, error->message);
            return 1;
        }
        printf("updated %s\n", path);
        return 0;
    }
    fprintf(stderr,
            "%s drifted from the key table in agent/core/config-keys.c; "
            "run scripts/update-config-docs\n",
            path);
    return 1;
}

int
main(int argc, char **argv)
{
    g_autofree char *md = ca_config_reference_markdown();
    g_autofree char *ini = ca_config_reference_ini();
    g_autofree char *readme = NULL, *example = NULL;
    gboolean write;
    int rc = 0;

    if (argc != 3 || (strcmp(argv[1], "--check") != 0 && strcmp(argv[1], "--write") != 0)) {
        fprintf(stderr, "usage: %s --check|--write SOURCE_DIR\n", argv[0]);
        return 2;
    }
    write = strcmp(argv[1], "--write") == 0;
    readme = g_build_filename(argv[2], "README.md", NULL);
    example = g_build_filename(argv[2], "config", "cellagent.conf", NULL);
    rc |= handle(readme, md, write, BEGIN, END);
    rc |= handle(example, ini, write, NULL, NULL);
    return rc;
}
