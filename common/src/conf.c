/* The `key = value` parser (conf.h). */
#include "signum/common/conf.h"

#include "signum/common/rc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

SGC_PRINTF(4, 5)
static sgc_conf_status fail(sgc_conf_error *err, sgc_conf_status st, unsigned line, const char *fmt,
                            ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = st;
        err->line = line;
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return st;
}

/* C locale white space, as isspace() in the "C" locale; no locale lookup. */
static int space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static char *trim(char *s)
{
    char *end;
    while (space(*s))
        s++;
    end = s + strlen(s);
    while (end > s && space(end[-1]))
        *--end = '\0';
    return s;
}

sgc_conf_status sgc_conf_parse(const char *text, size_t len, size_t max_line, sgc_conf_entry_fn fn,
                               void *ctx, sgc_conf_error *err)
{
    sgc_conf_status st = SGC_CONF_OK;
    size_t pos = 0;
    unsigned lineno = 0;
    char *line;

    if (err) {
        err->status = SGC_CONF_OK;
        err->line = 0;
        err->message[0] = '\0';
    }
    if (max_line == 0 || max_line > SGC_CONF_LINE_MAX)
        max_line = SGC_CONF_LINE_MAX;
    if (len > SGC_CONF_FILE_MAX)
        return fail(err, SGC_CONF_E_TOO_LARGE, 0, "larger than %d KiB", SGC_CONF_FILE_MAX / 1024);
    if (!(line = malloc(max_line + 1)))
        return fail(err, SGC_CONF_E_NOMEM, 0, "out of memory");
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        char *l, *eq;

        lineno++;
        if (n > max_line) {
            st = fail(err, SGC_CONF_E_LINE, lineno, "longer than %zu characters", max_line);
            goto out;
        }
        if (memchr(text + pos, '\0', n)) {
            st = fail(err, SGC_CONF_E_LINE, lineno, "holds a NUL byte");
            goto out;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos += n + 1;
        l = trim(line);
        if (*l == '\0' || *l == '#')
            continue;
        if (!(eq = strchr(l, '='))) {
            st = fail(err, SGC_CONF_E_SYNTAX, lineno, "expected key = value");
            goto out;
        }
        *eq = '\0';
        if (fn(ctx, trim(l), trim(eq + 1), lineno) != 0) {
            st = fail(err, SGC_CONF_E_CALLBACK, lineno, "refused");
            goto out;
        }
    }
out:
    free(line);
    return st;
}
