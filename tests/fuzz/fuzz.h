/* fuzz: what every fuzz target shares. A target is tests/fuzz/fuzz-<name>.c defining
 * LLVMFuzzerTestOneInput() (and optionally LLVMFuzzerInitialize()); it is built twice:
 * with libFuzzer in the clang CA_FUZZ build, and with replay.c everywhere else, where
 * it replays tests/fuzz/corpus/<name>/ as a regression test. See HACKING.md. */
#pragma once
#ifndef CA_LOG_MODULE
#define CA_LOG_MODULE "fuzz"
#endif
#include "log.h"

#include <glib.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Required: one input; must return 0. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional (weak, as libFuzzer declares it): once before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* A finding: print why and abort, so libFuzzer (or the replay driver) reports the input. */
#define ca_fuzz_assert(cond)                                                                       \
    do {                                                                                           \
        if (G_UNLIKELY(!(cond))) {                                                                 \
            g_printerr("fuzz: %s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* GLib log writer for fuzz targets: drops debug/info/message output (fast, quiet) and
 * aborts on warnings and criticals, which are programmer errors or unhandled input. */
static inline GLogWriterOutput
ca_fuzz_log_writer(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) {
        g_log_writer_standard_streams(level, fields, n_fields, data);
        abort();
    }
    return G_LOG_WRITER_HANDLED;
}

/* Call from LLVMFuzzerInitialize(): GLib messages through ca_fuzz_log_writer, and the
 * agent's own log (which a parser should not use above debug, C11) down to errors. */
static inline void
ca_fuzz_init(void)
{
    g_log_set_writer_func(ca_fuzz_log_writer, NULL, NULL);
    ca_log_set_level(CA_LOG_ERROR);
}
