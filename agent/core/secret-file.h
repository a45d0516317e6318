/* secret-file: the one rule for every file that holds a secret (the MQTT and cellular
 * password files, the SIM PIN file, the SMS-command TOTP secret). Such a file must be a
 * regular file owned by root or by the user the agent runs as, with no group or other access
 * (chmod 600 or 400), at most CA_SECRET_FILE_MAX bytes, no NUL byte. Anything else is refused
 * with an error that says what to fix; the agent never uses a secret others can read or
 * change. */
#pragma once
#include <glib.h>

#define CA_SECRET_FILE_MAX 4096

/* The whole file, checked as above (CA_ERROR_IO when it cannot be opened or read,
 * CA_ERROR_INVALID_CONFIG when it breaks the rule). The buffer is wiped when freed. */
GBytes *ca_secret_file_read(const char *path, GError **error);

/* The first line of a secret file, without its line end (LF or CR LF; other white space is
 * kept: it may be part of a password); an empty first line is an error
 * (CA_ERROR_INVALID_CONFIG), never an empty password. */
char *ca_secret_file_read_line(const char *path, GError **error);
