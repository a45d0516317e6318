/* log: level filter, stderr/journald output, GLib message capture, redaction.
 * Process-wide state is unavoidable for a logger; it lives in one struct. */
#define CA_LOG_MODULE "log"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static struct {
    CaLogLevel level; /* effective */
    /* The level each source set (CA_LOG_LEVEL_FROM_*), when has[source]. */
    CaLogLevel from[CA_LOG_LEVEL_FROM_COMMAND + 1];
    gboolean has[CA_LOG_LEVEL_FROM_COMMAND + 1];
    CaLogLevelSource source;
    gboolean personal_info;
    gboolean journal;            /* stderr is connected to journald: use <N> prefixes */
    GLogLevelFlags always_fatal; /* g_log_set_always_fatal(), e.g. G_DEBUG=fatal-criticals */
} logstate = {.level = CA_LOG_NOTICE + 1};

static const char *const level_names[] = {
    [CA_LOG_ERROR] = "error", [CA_LOG_WARNING] = "warning", [CA_LOG_NOTICE] = "notice",
    [CA_LOG_INFO] = "info",   [CA_LOG_DEBUG] = "debug",
};

/* True when stderr is the journal stream systemd gave us (JOURNAL_STREAM=dev:ino). */
static gboolean
stderr_is_journal(void)
{
    const char *js = g_getenv("JOURNAL_STREAM");
    struct stat st;
    unsigned long long dev, ino;

    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return FALSE;
    if (fstat(STDERR_FILENO, &st) < 0)
        return FALSE;
    return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

static void
emit(CaLogLevel level, const char *module, const char *message)
{
    if (level > logstate.level)
        return;
    if (logstate.journal) {
        fprintf(stderr, "<%d>[%s] %s\n", (int) level, module, message);
    } else {
        g_autoptr(GDateTime) now = g_date_time_new_now_utc();
        g_autofree char *ts = g_date_time_format(now, "%H:%M:%S");
        fprintf(stderr, "%s.%03d %-7s [%s] %s\n", ts, g_date_time_get_microsecond(now) / 1000,
                level_names[level], module, message);
    }
    fflush(stderr);
}

void
ca_log_write(CaLogLevel level, const char *module, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *message = NULL;

    if (level > logstate.level)
        return;
    va_start(ap, fmt);
    message = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    emit(level, module, message);
}

/* GLib structured log writer: messages of GLib, GIO, libnm and libmm-glib. */
static GLogWriterOutput
glib_writer(GLogLevelFlags flags, const GLogField *fields, gsize n_fields, gpointer user_data)
{
    const char *message = NULL, *domain = NULL;
    CaLogLevel level;

    for (gsize i = 0; i < n_fields; i++) {
        if (g_strcmp0(fields[i].key, "MESSAGE") == 0)
            message = fields[i].value;
        else if (g_strcmp0(fields[i].key, "GLIB_DOMAIN") == 0)
            domain = fields[i].value;
    }
    if (flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
        level = CA_LOG_ERROR;
    else if (flags & G_LOG_LEVEL_WARNING)
        level = CA_LOG_WARNING;
    else if (flags & G_LOG_LEVEL_MESSAGE)
        level = CA_LOG_NOTICE;
    else if (flags & G_LOG_LEVEL_INFO)
        level = CA_LOG_INFO;
    else
        level = CA_LOG_DEBUG;
    emit(level, domain ? domain : "glib", message ? message : "(no message)");
    /* GLib's default writer makes these fatal; a custom writer must do it itself, or
     * G_DEBUG=fatal-criticals (set for every test) would do nothing in the agent.
     * G_LOG_LEVEL_ERROR aborts in GLib whatever the writer does. */
    if (flags & logstate.always_fatal & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING))
        abort();
    return G_LOG_WRITER_HANDLED;
}

void
ca_log_init(CaLogLevel level, gboolean personal_info)
{
    static gsize installed = 0;

    logstate.level = level;
    memset(logstate.has, 0, sizeof logstate.has);
    logstate.source = CA_LOG_LEVEL_FROM_DEFAULT;
    logstate.personal_info = personal_info;
    logstate.journal = stderr_is_journal();
    /* Read the mask GLib set from G_DEBUG at start-up (the call returns the old mask). */
    logstate.always_fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK);
    g_log_set_always_fatal(logstate.always_fatal);
    if (g_once_init_enter(&installed)) {
        g_log_set_writer_func(glib_writer, NULL, NULL);
        g_once_init_leave(&installed, 1);
    }
}

void
ca_log_set_level(CaLogLevel level)
{
    logstate.level = level;
}

void
ca_log_set_level_from(CaLogLevelSource source, CaLogLevel level)
{
    static const CaLogLevelSource precedence[] = {
        CA_LOG_LEVEL_FROM_COMMAND,
        CA_LOG_LEVEL_FROM_COMMAND_LINE,
        CA_LOG_LEVEL_FROM_CONFIG,
    };

    g_return_if_fail(source > CA_LOG_LEVEL_FROM_DEFAULT && source <= CA_LOG_LEVEL_FROM_COMMAND);
    if (source == CA_LOG_LEVEL_FROM_CONFIG)
        logstate.has[CA_LOG_LEVEL_FROM_COMMAND] = FALSE;
    logstate.from[source] = level;
    logstate.has[source] = TRUE;
    for (gsize i = 0; i < G_N_ELEMENTS(precedence); i++) {
        if (logstate.has[precedence[i]]) {
            logstate.source = precedence[i];
            logstate.level = logstate.from[precedence[i]];
            return;
        }
    }
    logstate.source = CA_LOG_LEVEL_FROM_DEFAULT;
}

CaLogLevelSource
ca_log_get_level_source(void)
{
    return logstate.source;
}

const char *
ca_log_level_source_to_string(CaLogLevelSource source)
{
    switch (source) {
    case CA_LOG_LEVEL_FROM_DEFAULT:
        return "default";
    case CA_LOG_LEVEL_FROM_CONFIG:
        return "[agent] log-level";
    case CA_LOG_LEVEL_FROM_COMMAND_LINE:
        return "--log-level";
    case CA_LOG_LEVEL_FROM_COMMAND:
        return "cmd/log-level";
    }
    g_assert_not_reached();
}

CaLogLevel
ca_log_get_level(void)
{
    return logstate.level;
}

gboolean
ca_log_level_from_string(const char *s, CaLogLevel *out_level)
{
    static const struct {
        const char *name;
        CaLogLevel level;
    } map[] = {{"error", CA_LOG_ERROR},
               {"warning", CA_LOG_WARNING},
               {"info", CA_LOG_INFO},
               {"debug", CA_LOG_DEBUG}};

    for (gsize i = 0; i < G_N_ELEMENTS(map); i++) {
        if (g_strcmp0(s, map[i].name) == 0) {
            *out_level = map[i].level;
            return TRUE;
        }
    }
    return FALSE;
}

const char *
ca_log_level_to_string(CaLogLevel level)
{
    return level_names[level];
}

gboolean
ca_log_get_personal_info(void)
{
    return logstate.personal_info;
}

const char *
ca_log_personal(const char *str)
{
    if (!str)
        return "(null)";
    return logstate.personal_info ? str : "###";
}

char *
ca_log_personal_tail(const char *str)
{
    gsize n;

    if (!str)
        return NULL;
    if (logstate.personal_info)
        return g_strdup(str);
    n = strlen(str);
    return g_strconcat("...", str + (n > 4 ? n - 4 : 0), NULL);
}
