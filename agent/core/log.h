/* log: module-tagged logging to stderr (journald-aware) and redaction of personal
 * data. Every .c file defines CA_LOG_MODULE before including this header.
 * It also captures GLib/libnm/libmm-glib messages so one level filter rules all. */
#pragma once
#include <glib.h>

typedef enum {
    CA_LOG_ERROR = 3,   /* runtime failures the device cannot work around */
    CA_LOG_WARNING = 4, /* unexpected but handled ("..., ignoring") */
    CA_LOG_NOTICE = 5,  /* state transitions: the default journal reads like a timeline */
    CA_LOG_INFO = 6,    /* rare extra detail */
    CA_LOG_DEBUG = 7,   /* free use */
} CaLogLevel;

/* Install the log writer; personal_info=TRUE disables redaction. */
void ca_log_init(CaLogLevel level, gboolean personal_info);
/* Change the level at run time (SIGHUP reload, cmd/log-level). */
void ca_log_set_level(CaLogLevel level);
CaLogLevel ca_log_get_level(void);
/* Parse "error|warning|info|debug"; FALSE when unknown. */
gboolean ca_log_level_from_string(const char *s, CaLogLevel *out_level);
const char *ca_log_level_to_string(CaLogLevel level);
gboolean ca_log_get_personal_info(void);
/* Returns str, or "###" unless personal info logging is on (IMSI, ICCID, IMEI,
 * phone numbers, SMS text). NULL stays "(null)". */
const char *ca_log_personal(const char *str);

void ca_log_write(CaLogLevel level, const char *module, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

#ifndef CA_LOG_MODULE
#error "define CA_LOG_MODULE before including log.h"
#endif
#define ca_err(...)   ca_log_write(CA_LOG_ERROR, CA_LOG_MODULE, __VA_ARGS__)
#define ca_warn(...)  ca_log_write(CA_LOG_WARNING, CA_LOG_MODULE, __VA_ARGS__)
#define ca_msg(...)   ca_log_write(CA_LOG_NOTICE, CA_LOG_MODULE, __VA_ARGS__)
#define ca_info(...)  ca_log_write(CA_LOG_INFO, CA_LOG_MODULE, __VA_ARGS__)
#define ca_debug(...) ca_log_write(CA_LOG_DEBUG, CA_LOG_MODULE, __VA_ARGS__)
