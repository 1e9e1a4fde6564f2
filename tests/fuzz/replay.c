/*
 * Replay a fuzz target's corpus without libFuzzer: feeds every file named
 * on the command line (directories: every regular file in them, sorted) to
 * LLVMFuzzerTestOneInput, once each.  Built with gcc against the normal
 * core library, so the test run checks the corpus on every commit (a
 * crash or an abort() from the target's invariants fails it).
 *
 *   replay_NAME [-v] FILE|DIR...
 *
 * Prints "replay: N inputs" and exits 0, or 1 if no input was found.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path, int verbose)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    if (!f) {
        perror(path);
        return -1;
    }
    if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0 ||
        !(buf = malloc((size_t)n + 1)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        perror(path);
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    if (verbose)
        fprintf(stderr, "replay: %s (%ld bytes)\n", path, n);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    unsigned count = 0;
    int verbose = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (!strcmp(argv[i], "-v")) {
            verbose = 1;
            continue;
        }
        if (stat(argv[i], &st) < 0) {
            perror(argv[i]);
            return 1;
        }
        if (S_ISDIR(st.st_mode)) {
            struct dirent **names;
            int n = scandir(argv[i], &names, NULL, by_name);
            if (n < 0) {
                perror(argv[i]);
                return 1;
            }
            for (int k = 0; k < n; k++) {
                char path[4096];
                snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name);
                if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && replay_file(path, verbose) == 0)
                    count++;
                free(names[k]);
            }
            free(names);
        } else if (replay_file(argv[i], verbose) == 0) {
            count++;
        }
    }
    printf("replay: %u inputs\n", count);
    return count ? 0 : 1;
}
