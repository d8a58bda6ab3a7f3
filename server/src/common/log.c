/* JSON-lines logger with per-subsystem debug switches. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "signum/common/debug.h"

static char debug_spec[256];
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void log_read_env(void)
{
    const char *spec = secure_getenv("SIGNUM_DEBUG");
    if (spec)
        snprintf(debug_spec, sizeof(debug_spec), "%s", spec);
}

void srv_log_init(void)
{
    pthread_once(&log_once, log_read_env);
}

int srv_log_debug_enabled(const char *subsystem)
{
    srv_log_init();
    return sgc_debug_has(debug_spec, subsystem);
}

static void json_escape_to(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
}

void srv_log(srv_log_level level, const char *subsystem, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    char msg[1024], ts[40];
    struct timespec now;
    struct tm tm;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);

    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"subsystem\":\"", ts,
            now.tv_nsec / 1000000, names[level]);
    json_escape_to(stderr, subsystem);
    fputs("\",\"msg\":\"", stderr);
    json_escape_to(stderr, msg);
    fputs("\"}\n", stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}
