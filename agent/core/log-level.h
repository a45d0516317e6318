/* log-level: the log levels and the one owner of the effective level. Three writers set a
 * level, each from its own source; the effective level is the first one set of:
 *   1. cmd/log-level (CA_LOG_LEVEL_FROM_COMMAND), until the next reload or restart;
 *   2. --log-level (CA_LOG_LEVEL_FROM_COMMAND_LINE), for the life of the process;
 *   3. [agent] log-level (CA_LOG_LEVEL_FROM_CONFIG), set at start and again by every reload.
 * A reload ends a cmd/log-level override (the operator asked for the configuration again)
 * but never the command line's (it is part of how the service was started). Separate from
 * log.h so that settings structs can hold a level without the logging macros. */
#pragma once
#include <glib.h>

typedef enum {
    CA_LOG_ERROR = 3,   /* runtime failures the device cannot work around */
    CA_LOG_WARNING = 4, /* unexpected but handled ("..., ignoring") */
    CA_LOG_NOTICE = 5,  /* state transitions: the default journal reads like a timeline */
    CA_LOG_INFO = 6,    /* rare extra detail */
    CA_LOG_DEBUG = 7,   /* free use */
} CaLogLevel;

typedef enum {
    CA_LOG_LEVEL_FROM_DEFAULT,      /* nothing set yet (ca_log_init's level) */
    CA_LOG_LEVEL_FROM_CONFIG,       /* [agent] log-level */
    CA_LOG_LEVEL_FROM_COMMAND_LINE, /* --log-level */
    CA_LOG_LEVEL_FROM_COMMAND,      /* cmd/log-level */
} CaLogLevelSource;

/* Record level as source's and apply the effective level (see above). Setting the
 * config's level (start, every reload) also ends a cmd/log-level override. */
void ca_log_set_level_from(CaLogLevelSource source, CaLogLevel level);
/* Where the effective level comes from. */
CaLogLevelSource ca_log_get_level_source(void);
const char *ca_log_level_source_to_string(CaLogLevelSource source);
/* Set the level directly, whatever the sources say (tests and fuzzing only). */
void ca_log_set_level(CaLogLevel level);
CaLogLevel ca_log_get_level(void);
/* Parse "error|warning|info|debug"; FALSE when unknown. */
gboolean ca_log_level_from_string(const char *s, CaLogLevel *out_level);
const char *ca_log_level_to_string(CaLogLevel level);
