/* signum-util keychain on macOS: runs the host app (Signum.app), which alone may publish the
 * token extension's keychain items (TKTokenDriverConfiguration); macos-ctk/app/SignumHost.m. */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "platform.h"
#include "signum/os.h"
#include "util.h"

#define HOST_APP "/Applications/Signum.app/Contents/MacOS/Signum"

extern char **environ;

int util_cmd_keychain(int argc, char **argv)
{
    const char *app = sg_os_getenv("SIGNUM_HOST_APP");
    char *args[4];
    pid_t pid;
    int status, rc;
    int named = argc == 3 && (!strcmp(argv[1], "--add") || !strcmp(argv[1], "--remove"));
    int bare = argc == 2 && (!strcmp(argv[1], "--list") || !strcmp(argv[1], "--sync"));

    if (!named && !bare) {
        fprintf(argc == 2 && !strcmp(argv[1], "--help") ? stdout : stderr,
                "Usage: signum-util keychain --add KEY | --remove KEY | --list | --sync\n");
        return argc == 2 && !strcmp(argv[1], "--help") ? EXIT_OK : EXIT_USAGE;
    }
    if (!app || !*app)
        app = HOST_APP;
    args[0] = (char *)app;
    args[1] = argv[1];
    args[2] = named ? argv[2] : NULL;
    args[3] = NULL;
    rc = posix_spawn(&pid, app, NULL, NULL, args, environ);
    if (rc != 0) {
        fprintf(stderr, "signum-util keychain: cannot run %s: %s (is Signum.app installed?)\n", app,
                strerror(rc));
        return EXIT_FAILED;
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "signum-util keychain: waiting for %s: %s\n", app, strerror(errno));
            return EXIT_FAILED;
        }
    if (!WIFEXITED(status)) {
        fprintf(stderr, "signum-util keychain: %s ended by signal %d\n", app,
                WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        return EXIT_FAILED;
    }
    return WEXITSTATUS(status) == 0 ? EXIT_OK : WEXITSTATUS(status) == 2 ? EXIT_USAGE : EXIT_FAILED;
}
