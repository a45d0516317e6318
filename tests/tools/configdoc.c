/* configdoc: keeps README.md's config table, config/cellagent.conf and the man page
 * docs/cellagent.8 in step with the key table in agent/core/config-keys.c. --check fails
 * on drift; --write regenerates; --man prints the man page. */
#include "config.h"
#include "version.h"

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

/* Text for roff: backslashes and minus signs escaped (so that keys and options copy as
 * typed), and a control character at the start of a line made literal. */
static void
roff_append(GString *out, const char *text)
{
    if (*text == '.' || *text == '\'')
        g_string_append(out, "\\&");
    for (const char *p = text; *p; p++) {
        if (*p == '\\')
            g_string_append(out, "\\e");
        else if (*p == '-')
            g_string_append(out, "\\-");
        else
            g_string_append_c(out, *p);
    }
}

static void
roff_line(GString *out, const char *macro, const char *text)
{
    if (macro)
        g_string_append_printf(out, "%s ", macro);
    roff_append(out, text);
    g_string_append_c(out, '\n');
}

/* The fixed part of the man page: what main.c's options and signals do. */
static const char *const man_head[] = {
    ".SH NAME",
    "cellagent \\- cellular edge agent: MQTT telemetry, SMS bridge, uplink failover",
    ".SH SYNOPSIS",
    ".B cellagent",
    ".RB [ \\-\\-config",
    ".IR PATH ]",
    ".RB [ \\-\\-check\\-config ]",
    ".RB [ \\-\\-version ]",
    ".RB [ \\-\\-log\\-level",
    ".IR LEVEL ]",
    ".RB [ \\-\\-log\\-personal\\-info ]",
    ".br",
    ".B cellagent",
    ".RB [ \\-\\-config",
    ".IR PATH ]",
    ".B \\-\\-status",
    ".RB [ \\-\\-json ]",
    ".br",
    ".B cellagent",
    ".RB [ \\-\\-config",
    ".IR PATH ]",
    ".B \\-\\-diagnose",
    ".RB [ \\-\\-output",
    ".IR FILE ]",
    ".RB [ \\-\\-since",
    ".IR PERIOD ]",
    ".SH DESCRIPTION",
    ".B cellagent",
    "keeps an LTE edge device online and reachable: it brings up the cellular data link",
    "through NetworkManager from the configured APN and fails over between ethernet, Wi\\-Fi",
    "and cellular uplinks, publishes the modem's telemetry (state, signal, operator,",
    "registration, cell, SIM, bearer traffic) to an MQTT broker, bridges SMS to and from MQTT",
    "through ModemManager, and takes remote commands over MQTT and authenticated SMS.",
    ".PP",
    "It runs in the foreground under systemd",
    ".RB ( cellagent.service ,",
    "as the unprivileged user",
    ".BR cellagent ),",
    "logs to stderr and notifies systemd (READY, STATUS, WATCHDOG, STOPPING).",
    "It keeps running while ModemManager, NetworkManager, the system bus or the broker are",
    "absent, and picks them up when they appear.",
    ".SH OPTIONS",
    ".TP",
    ".BR \\-c \", \" \\-\\-config \" \" \\fIPATH\\fR",
    "The config file; default",
    ".IR /etc/cellagent/cellagent.conf .",
    "Drop\\-ins are read from",
    ".IB PATH .d/*.conf",
    "in name order, a later file winning.",
    "A missing default file means all defaults; a missing explicit file is an error.",
    ".TP",
    ".B \\-\\-check\\-config",
    "Parse and validate the config, print the effective settings (each with the file and line",
    "it came from, secrets masked) and exit 0; when it is invalid, print one line per problem",
    "on stderr,",
    ".IR FILE : LINE \": [\" group \"] \" key \": \" problem ,",
    "and exit 1.",
    "Unknown keys are warnings, not errors.",
    ".TP",
    ".B \\-\\-version",
    "Print the version and exit.",
    ".TP",
    ".BI \\-\\-log\\-level \" LEVEL\"",
    ".BR error ,",
    ".BR warning ,",
    ".B info",
    "or",
    ".BR debug ;",
    "overrides",
    ".BR \"[agent] log\\-level\" .",
    ".TP",
    ".B \\-\\-log\\-personal\\-info",
    "Log IMSI, ICCID, IMEI, phone numbers and SMS text, which are otherwise replaced by ###;",
    "with --status and --diagnose, show them.",
    ".TP",
    ".BR \\-\\-status \" [\" \\-\\-json ]",
    "Summarise the running agent (broker, uplinks, modem, SMS, watchdog) from the status file",
    "it keeps in",
    ".BR \"[agent] runtime\\-dir\" ,",
    "as text or JSON, and exit 0 when it runs, 2 when the file is stale (hung), 3 when it is",
    "not running, 1 when the file cannot be read.",
    ".TP",
    ".BR \\-\\-diagnose \" [\" \\-\\-output \" \" \\fIFILE\\fR \"] [\" \\-\\-since \" \" "
    "\\fIPERIOD\\fR ]",
    "Write a support bundle (tar.gz; default ./cellagent\\-diagnose\\-ID\\-TIME.tar.gz): the",
    "configuration, the status, ModemManager's and NetworkManager's objects without secrets,",
    "system facts and, as root, the journal of the last",
    ".I PERIOD",
    "(default 6h). Personal data is redacted; a daemon that does not answer is marked as",
    "timed out and the bundle is still written within seconds.",
    ".SH SIGNALS",
    ".TP",
    ".BR SIGTERM \", \" SIGINT",
    "Stop cleanly within 3 seconds, publishing the offline status.",
    ".TP",
    ".B SIGHUP",
    "Re\\-read the config",
    ".RB ( \"systemctl reload cellagent\" );",
    "an invalid new config is logged and the running one kept.",
    "With",
    ".B [remote\\-config]",
    "enabled, the remote configuration layer is read after the files.",
    ".SH EXIT STATUS",
    "0 on a clean stop or a valid config; 1 on an invalid config or a failed start;",
    "2 on a usage error.",
    ".SH CONFIGURATION",
    "The file is INI (GKeyFile).",
    "Every key is optional; below, each with its type, range and default.",
    "Groups",
    ".BI [uplink\\- NAME ]",
    "may appear any number of times, one per uplink.",
    "The example file",
    ".I /etc/cellagent/cellagent.conf",
    "lists the same keys with their defaults.",
    NULL,
};

static const char *const man_tail[] = {
    ".SH FILES",
    ".TP",
    ".I /etc/cellagent/cellagent.conf",
    "The config file.",
    ".TP",
    ".I /etc/cellagent/cellagent.conf.d/*.conf",
    "Drop\\-ins, read after it in name order.",
    ".TP",
    ".I /var/lib/cellagent",
    "The state directory",
    ".RB ( [agent] \" state\\-dir\" ):",
    "spooled SMS, dedupe sets, counters.",
    ".TP",
    ".I /var/lib/cellagent/remote\\-config/current.conf",
    "The remote configuration layer",
    ".RB ( [remote\\-config] \" enabled=true\" ),",
    "read after the drop\\-ins; a change still on trial at start is rolled back first.",
    ".TP",
    ".I /usr/share/polkit\\-1/rules.d/50\\-cellagent.rules",
    "The ModemManager and NetworkManager actions the",
    ".B cellagent",
    "user may perform.",
    ".SH SEE ALSO",
    ".BR mmcli (1),",
    ".BR nmcli (1),",
    ".BR systemd.service (5),",
    ".I /usr/share/doc/cellagent/README.md",
    NULL,
};

static char *
reference_man(void)
{
    GString *out = g_string_new(NULL);
    const char *last = NULL;

    g_string_append(out, ".\\\" Generated from the key table in agent/core/config-keys.c by\n"
                         ".\\\" tests/tools/configdoc.c: run scripts/update-config-docs.\n");
    g_string_append_printf(out, ".TH CELLAGENT 8 \"\" \"cellagent %s\" \"System Administration\"\n",
                           CA_VERSION);
    for (const char *const *l = man_head; *l; l++)
        g_string_append_printf(out, "%s\n", *l);
    for (const CaConfigKey *k = ca_config_keys(); k->group; k++) {
        g_autofree char *summary = NULL;
        const char *type = NULL;

        if (!last || strcmp(last, k->group) != 0) {
            g_autofree char *title = NULL;

            if (g_str_has_suffix(k->group, "*"))
                title = g_strdup_printf("[%.*sNAME]", (int) strlen(k->group) - 1, k->group);
            else
                title = g_strdup_printf("[%s]", k->group);
            roff_line(out, ".SS", title);
            last = k->group;
        }
        switch (k->type) {
        case CA_KEY_STRING:
            type = (k->flags & CA_KEY_FLAG_LIST) ? "list of strings" : "string";
            summary = g_strdup_printf("%s%s, %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT " chars",
                                      type, (k->flags & CA_KEY_FLAG_LIST) ? " separated by ;" : "",
                                      k->min, k->max);
            break;
        case CA_KEY_INT:
            summary = g_strdup_printf("integer, %" G_GINT64_FORMAT " to %" G_GINT64_FORMAT, k->min,
                                      k->max);
            break;
        case CA_KEY_BOOL:
            summary = g_strdup("true or false");
            break;
        case CA_KEY_ENUM: {
            g_autofree char *choices = g_strjoinv(", ", (char **) k->choices);
            summary = g_strdup_printf("one of %s", choices);
            break;
        }
        case CA_KEY_PATH:
            summary = g_strdup((k->flags & CA_KEY_FLAG_LIST) ? "absolute paths separated by ;"
                                                             : "absolute path");
            break;
        }
        g_string_append(out, ".TP\n");
        roff_line(out, ".B", k->key);
        roff_append(out, k->doc);
        g_string_append(out, g_str_has_suffix(k->doc, ".") ? "\n" : ".\n");
        g_string_append(out, ".br\n");
        roff_append(out, summary);
        g_string_append(out, "; default: ");
        roff_append(out, k->def ? (*k->def ? k->def : "empty") : k->def_doc);
        g_string_append(out, ".\n");
    }
    for (const char *const *l = man_tail; *l; l++)
        g_string_append_printf(out, "%s\n", *l);
    return g_string_free(out, FALSE);
}

int
main(int argc, char **argv)
{
    g_autofree char *md = ca_config_reference_markdown();
    g_autofree char *ini = ca_config_reference_ini();
    g_autofree char *man = reference_man();
    g_autofree char *readme = NULL, *example = NULL, *manpage = NULL;
    gboolean write;
    int rc = 0;

    if (argc == 2 && strcmp(argv[1], "--man") == 0) {
        fputs(man, stdout);
        return 0;
    }
    if (argc != 3 || (strcmp(argv[1], "--check") != 0 && strcmp(argv[1], "--write") != 0)) {
        fprintf(stderr, "usage: %s --check|--write SOURCE_DIR | --man\n", argv[0]);
        return 2;
    }
    write = strcmp(argv[1], "--write") == 0;
    readme = g_build_filename(argv[2], "README.md", NULL);
    example = g_build_filename(argv[2], "config", "cellagent.conf", NULL);
    manpage = g_build_filename(argv[2], "docs", "cellagent.8", NULL);
    rc |= handle(readme, md, write, BEGIN, END);
    rc |= handle(example, ini, write, NULL, NULL);
    rc |= handle(manpage, man, write, NULL, NULL);
    return rc;
}
