/* diagnose-cli: `cellagent --diagnose [--output FILE] [--since 6h]`: the support bundle of
 * diagnose.c written to a file, with the journal when run as root. */
#pragma once
#include <glib.h>

/* Default period of the journal in the bundle. */
#define CA_DIAGNOSE_DEFAULT_SINCE "6h"

/* Make the bundle and write it to output (NULL: ./<name>.tar.gz; "-": standard output).
 * Returns the exit code: 0 written (parts may have timed out: they are marked), 1 not
 * written, 2 a bad argument. */
int ca_diagnose_cli_run(const char *config_path, const char *output, const char *since,
                        gboolean personal);
