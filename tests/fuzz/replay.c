/* replay: the main() that stands in for libFuzzer in normal (gcc, ASan, valgrind) builds.
 * It feeds every file named on the command line, or found in a directory named there, to
 * the target's LLVMFuzzerTestOneInput once, so each committed corpus file is a regression
 * test. An input is copied into a buffer of exactly its size, as libFuzzer does, so the
 * ASan build catches reads past its end. Exits 1 when it found no input at all. */
#include "fuzz.h"

#include <stdio.h>
#include <string.h>

static int
replay_file(const char *path)
{
    g_autofree char *contents = NULL;
    g_autoptr(GError) error = NULL;
    gsize len = 0;
    uint8_t *exact;

    if (!g_file_get_contents(path, &contents, &len, &error)) {
        fprintf(stderr, "replay: %s\n", error->message);
        exit(1);
    }
    exact = g_malloc(len ? len : 1);
    memcpy(exact, contents, len);
    LLVMFuzzerTestOneInput(exact, len);
    g_free(exact);
    return 1;
}

static int
compare_strings(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Every regular file under dir, in name order (stable output). */
static int
replay_dir(const char *dir)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GDir) d = g_dir_open(dir, 0, &error);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    int n = 0;

    if (!d) {
        fprintf(stderr, "replay: %s\n", error->message);
        exit(1);
    }
    while ((name = g_dir_read_name(d)))
        g_ptr_array_add(names, g_build_filename(dir, name, NULL));
    g_ptr_array_sort(names, compare_strings);
    for (guint i = 0; i < names->len; i++) {
        const char *path = names->pdata[i];

        if (g_file_test(path, G_FILE_TEST_IS_DIR))
            n += replay_dir(path);
        else if (g_file_test(path, G_FILE_TEST_IS_REGULAR))
            n += replay_file(path);
    }
    return n;
}

int
main(int argc, char **argv)
{
    int n = 0;

    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        int before = n;

        if (g_file_test(argv[i], G_FILE_TEST_IS_DIR))
            n += replay_dir(argv[i]);
        else
            n += replay_file(argv[i]);
        printf("replay: %s: %d input(s), no finding\n", argv[i], n - before);
    }
    if (n == 0) {
        fprintf(stderr, "replay: no inputs (an empty corpus tests nothing)\n");
        return 1;
    }
    return 0;
}
