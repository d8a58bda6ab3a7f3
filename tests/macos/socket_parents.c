/* macos.socket_parents: sg_px_make_socket_parents from the macOS file (posix_macos.c), compiled
 * and run on Linux (the two Darwin calls it does not use are stubbed): the missing parents of
 * the agent's socket folder are made 0700, existing ones are left alone, the folder itself is
 * not made, and a parent that is not a private folder of ours right after mkdir is refused.
 *   socket_parents SCRATCH_DIR (empty, made by the test) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/posix_os.h"

int getpeereid(int fd, uid_t *uid, gid_t *gid)
{
    (void)fd;
    (void)uid;
    (void)gid;
    errno = ENOSYS;
    return -1;
}

int issetugid(void)
{
    return 0;
}

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

/* The mode of path, or -1 if it is not there. */
static int mode_of(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 ? (int)(sb.st_mode & 07777) : -1;
}

static void path_of(char *out, size_t len, const char *top, const char *rel)
{
    snprintf(out, len, "%s/%s", top, rel);
}

int main(int argc, char **argv)
{
    char dir[4096], p[4096], why[512], longp[5000];
    const char *top = argc == 2 ? argv[1] : NULL;
    FILE *f;

    if (!top) {
        fprintf(stderr, "usage: socket_parents SCRATCH_DIR\n");
        return 2;
    }
    umask(022); /* the parents are 0700 whatever the umask lets through */

    /* Three missing parents, one existing (top, 0755 left as it is). */
    chmod(top, 0755);
    path_of(dir, sizeof(dir), top, "Library/Group Containers/TEAM.com.signum/signum");
    CHECK(sg_px_make_socket_parents(dir, why, sizeof(why)) == 0, "make: %s", why);
    path_of(p, sizeof(p), top, "Library");
    CHECK(mode_of(p) == 0700, "%s mode %o", p, mode_of(p));
    path_of(p, sizeof(p), top, "Library/Group Containers");
    CHECK(mode_of(p) == 0700, "%s mode %o", p, mode_of(p));
    path_of(p, sizeof(p), top, "Library/Group Containers/TEAM.com.signum");
    CHECK(mode_of(p) == 0700, "%s mode %o", p, mode_of(p));
    CHECK(mode_of(dir) == -1, "the socket folder itself is the agent's mkdir, not this one");
    CHECK(mode_of(top) == 0755, "an existing parent is left alone: %o", mode_of(top));

    /* Again, all there: nothing to do, nothing changed (an existing 0755 parent too). */
    path_of(p, sizeof(p), top, "Library");
    chmod(p, 0755);
    CHECK(sg_px_make_socket_parents(dir, why, sizeof(why)) == 0, "again: %s", why);
    CHECK(mode_of(p) == 0755, "existing Library kept 0755: %o", mode_of(p));

    /* A file where a folder should be. */
    path_of(p, sizeof(p), top, "afile");
    f = fopen(p, "w");
    CHECK(f != NULL, "fopen %s", p);
    if (f)
        fclose(f);
    path_of(dir, sizeof(dir), top, "afile/x/signum");
    why[0] = '\0';
    CHECK(sg_px_make_socket_parents(dir, why, sizeof(why)) == -1, "a file in the way");
    CHECK(strstr(why, "cannot create") && strstr(why, "afile/x") && strstr(why, "Not a directory"),
          "why: %s", why);

    /* A parent made but not 0700 (here: a umask that takes the owner's bits) is refused. */
    umask(0700);
    path_of(dir, sizeof(dir), top, "masked/signum");
    why[0] = '\0';
    CHECK(sg_px_make_socket_parents(dir, why, sizeof(why)) == -1, "a 0000 parent accepted");
    CHECK(strstr(why, "is not a private directory of ours") && strstr(why, "mode 0000"), "why: %s",
          why);
    umask(022);
    path_of(p, sizeof(p), top, "masked");
    chmod(p, 0700);

    /* A path longer than PATH_MAX. */
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[sizeof(longp) - 1] = '\0';
    why[0] = '\0';
    CHECK(sg_px_make_socket_parents(longp, why, sizeof(why)) == -1, "a too long path accepted");
    CHECK(strstr(why, "is too long") != NULL, "why: %s", why);

    printf("%s (%d failures)\n", failures ? "FAILED" : "passed", failures);
    return failures ? 1 : 0;
}
