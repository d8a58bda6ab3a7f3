/* The `key = value` file format of signum-server.conf and agent.conf:
 *   - one setting a line; blank lines and lines starting with '#' (after white space) skipped;
 *   - key and value are trimmed of white space (so CRLF files read the same); the value is
 *     everything after the first '=' (it may hold '=' itself); an empty value is passed on;
 *   - lines are numbered from 1 in the file as it is, blank and comment lines included;
 *   - caps: the text at most SGC_CONF_FILE_MAX bytes, a line at most max_line characters;
 *     no NUL byte.
 * What a key means is the caller's business: the callback gets each entry in order. */
#ifndef SGC_CONF_H
#define SGC_CONF_H

#include <stddef.h>

#define SGC_CONF_FILE_MAX (64 * 1024)
#define SGC_CONF_LINE_MAX 8192

typedef enum {
    SGC_CONF_OK = 0,
    SGC_CONF_E_SYNTAX,    /* a line without '=' */
    SGC_CONF_E_LINE,      /* a line longer than max_line, or with a NUL byte */
    SGC_CONF_E_TOO_LARGE, /* the text is over SGC_CONF_FILE_MAX */
    SGC_CONF_E_CALLBACK,  /* the callback refused an entry (its reason is the caller's) */
    SGC_CONF_E_NOMEM,
} sgc_conf_status;

typedef struct {
    sgc_conf_status status;
    unsigned line;    /* 1-based; 0 when not about one line */
    char message[96]; /* without the line number, e.g. "expected key = value" */
} sgc_conf_error;

/* Returns 0 to go on, anything else to stop (the parse then ends with SGC_CONF_E_CALLBACK). */
typedef int (*sgc_conf_entry_fn)(void *ctx, const char *key, const char *value, unsigned line);

/* Parses text[0..len); max_line 0 means SGC_CONF_LINE_MAX (also its upper bound). */
sgc_conf_status sgc_conf_parse(const char *text, size_t len, size_t max_line, sgc_conf_entry_fn fn,
                               void *ctx, sgc_conf_error *err);

#endif
