/* The agent's log lines (stderr, which is the log file once detached) and the SIGNUM_DEBUG
 * subsystem switches. Never given a secret. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../client/client_os.h"
#include "signum/agent_config.h"
#include "signum/common/debug.h"
#include "signum/common/rfc3339.h"

static char debug_spec[256];
static FILE *log_stream; /* NULL: stderr */

void ag_log_to(FILE *stream)
{
    log_stream = stream;
}

void ag_log_init(const char *spec)
{
    debug_spec[0] = '\0';
    if (spec && *spec)
        snprintf(debug_spec, sizeof(debug_spec), "%s", spec);
}

int ag_debug_enabled(const char *subsystem)
{
    return sgc_debug_has(debug_spec, subsystem);
}

void ag_log(const char *subsystem, const char *fmt, ...)
{
    char msg[1024], ts[32];
    time_t now = time(NULL);
    va_list ap;
    FILE *out;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sgc_rfc3339_format((int64_t)now, ts, sizeof(ts));
    out = log_stream ? log_stream : stderr;
    fprintf(out, "%s signum-agent[%ld] %s: %s\n", ts, sg_os_pid(), subsystem, msg);
    fflush(out);
}
