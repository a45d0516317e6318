/* log: module-tagged logging to stderr (journald-aware) and redaction of personal
 * data. Every .c file defines CA_LOG_MODULE before including this header.
 * It also captures GLib/libnm/libmm-glib messages so one level filter rules all. */
#pragma once
#include <glib.h>

#include "log-level.h"

/* Install the log writer; personal_info=TRUE disables redaction. */
void ca_log_init(CaLogLevel level, gboolean personal_info);
gboolean ca_log_get_personal_info(void);
/* Returns str, or "###" unless personal info logging is on (IMSI, ICCID, IMEI,
 * phone numbers, SMS text). NULL stays "(null)". */
const char *ca_log_personal(const char *str);
/* A new string: str when personal info logging is on, else its last 4 characters after
 * "..." ("...9012"), enough to tell two SIMs apart in an event. NULL gives NULL. */
char *ca_log_personal_tail(const char *str);

void ca_log_write(CaLogLevel level, const char *module, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

#ifndef CA_LOG_MODULE
#error "define CA_LOG_MODULE before including log.h"
#endif
#define ca_err(...)   ca_log_write(CA_LOG_ERROR, CA_LOG_MODULE, __VA_ARGS__)
#define ca_warn(...)  ca_log_write(CA_LOG_WARNING, CA_LOG_MODULE, __VA_ARGS__)
#define ca_msg(...)   ca_log_write(CA_LOG_NOTICE, CA_LOG_MODULE, __VA_ARGS__)
#define ca_info(...)  ca_log_write(CA_LOG_INFO, CA_LOG_MODULE, __VA_ARGS__)
#define ca_debug(...) ca_log_write(CA_LOG_DEBUG, CA_LOG_MODULE, __VA_ARGS__)
