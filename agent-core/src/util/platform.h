/* What signum-util needs of the operating system, one implementation per platform:
 * os_posix.c + doctor_posix.c (Linux: termios, the socket path) and os_win.c +
 * certstore_win.c (Windows: the console, the named pipe, Winsock, CryptoAPI). HTTPS is the
 * agent's transport on both (signum/https.h). */
#ifndef UTIL_PLATFORM_H
#define UTIL_PLATFORM_H

#include <stddef.h>
#include <time.h>

#include "signum/agent_config.h"

/* fopen mode suffix for close-on-exec ("e" is a glibc extension the Windows CRT refuses). */
#ifdef _WIN32
#define UTIL_FOPEN_CLOEXEC ""
#define UTIL_PATH_SEP      "\\"
/* The POSIX time calls admin.c uses, by their Windows CRT names. */
#define timegm _mkgmtime
static inline struct tm *util_gmtime_r(const time_t *t, struct tm *out)
{
    return gmtime_s(out, t) == 0 ? out : NULL;
}
#define gmtime_r util_gmtime_r
#else
#define UTIL_FOPEN_CLOEXEC "e"
#define UTIL_PATH_SEP      "/"
#endif

/* Reads one line (a secret) from standard input, without echo on a terminal or console. Returns
 * 1 if a line was read, 0 if not. */
int util_read_secret_stdin(char *out, size_t len);

/* A monotonic clock in milliseconds (progress output's pacing). */
long long util_monotonic_ms(void);

/* Switches standard output to binary (no newline translation on Windows). */
void util_binary_stdout(void);

/* Waits (bounded, about 10 s) until the agent has given up its endpoint after a shutdown. */
void util_wait_agent_gone(void);

/* doctor's network checks of one configured server: DNS, TCP, TLS with the configured CA,
 * clock skew against the server's Date, /healthz. Prints one verdict line per check (with
 * util_verdict) and returns the number of failed checks. */
int util_doctor_server(const ag_config *cfg, unsigned index);
/* Called once around the checks of every server (library set-up and teardown). */
void util_doctor_begin(void);
void util_doctor_end(void);

/* Prints "[ OK ] check detail" or "[FAIL] ..."; returns 1 for a failure, else 0. */
int util_verdict(const char *check, int ok, const char *detail);

/* signum-util certstore (Windows only; elsewhere it says so). */
int util_cmd_certstore(int argc, char **argv);
/* signum-util keychain --add|--remove KEY, --list, --sync: the macOS token's keychain items
 * (keychain_macos.c runs the host app; keychain_none.c elsewhere says it is macOS only). */
int util_cmd_keychain(int argc, char **argv);
/* signum-util providers: (un)registers the Windows KSP and CSP (Windows only). */
int util_cmd_providers(int argc, char **argv);

#endif
