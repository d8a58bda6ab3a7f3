/* Helpers shared by unit tests: a throwaway directory removed at exit. */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

static char test_dir[PATH_MAX];

static int test_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void test_dir_cleanup(void)
{
    if (test_dir[0])
        nftw(test_dir, test_rm, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *test_dir_make(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(test_dir, sizeof(test_dir), "%s/signum-unit-XXXXXX", base ? base : "/tmp");
    if (!mkdtemp(test_dir)) {
        perror("mkdtemp");
        exit(1);
    }
    atexit(test_dir_cleanup);
    return test_dir;
}

#endif
