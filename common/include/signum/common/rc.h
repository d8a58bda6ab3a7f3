/* Return codes of the common helpers. Callers map them to their own status and message. */
#ifndef SGC_RC_H
#define SGC_RC_H

enum {
    SGC_OK = 0,
    SGC_E_FORMAT = -1,    /* the input is malformed */
    SGC_E_TOO_LARGE = -2, /* the input or the result would pass its cap */
    SGC_E_NOMEM = -3,     /* an allocation failed */
};

/* printf-style checking; mingw's C99 printf (__USE_MINGW_ANSI_STDIO) is gnu_printf. */
#ifdef __MINGW32__
#define SGC_PRINTF(fmt, args) __attribute__((format(gnu_printf, fmt, args)))
#else
#define SGC_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#endif

#endif
