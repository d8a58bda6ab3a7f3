/* signum-util on POSIX: the terminal, the agent's socket, and certstore (Windows only). */
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "platform.h"
#include "util.h"

int util_read_secret_stdin(char *out, size_t len)
{
    struct termios old, quiet;
    int tty = isatty(0), ok;
    if (tty) {
        fprintf(stderr, "API key: ");
        tcgetattr(0, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(0, TCSANOW, &quiet);
    }
    ok = fgets(out, (int)len, stdin) != NULL;
    if (tty) {
        tcsetattr(0, TCSANOW, &old);
        fputc('\n', stderr);
    }
    return ok;
}

long long util_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void util_binary_stdout(void)
{
}

void util_wait_agent_gone(void)
{
    char path[108];
    struct timespec pause = {0, 20 * 1000 * 1000};
    for (int i = 0;
         i < 500 && sg_default_socket(path, sizeof(path)) == 0 && access(path, F_OK) == 0; i++)
        nanosleep(&pause, NULL);
}

int util_cmd_certstore(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "signum-util certstore: Windows only (it puts a key's certificate into the\n"
                    "Windows certificate store for signtool); on Linux the PKCS#11 module\n"
                    "shows the certificates to every tool\n");
    return EXIT_USAGE;
}

int util_cmd_providers(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "signum-util providers: Windows only (it registers the CNG KSP and the\n"
                    "CryptoAPI CSP); on Linux p11-kit registers the PKCS#11 module\n");
    return EXIT_USAGE;
}
