/* Structured logs: one JSON object per line on stderr. Debug output per subsystem is enabled
 * with SIGNUM_DEBUG=http,hsm,db,audit,auth (or "all"). Never pass a secret to these. */
#ifndef SRV_LOG_H
#define SRV_LOG_H

typedef enum { SRV_LOG_DEBUG, SRV_LOG_INFO, SRV_LOG_WARN, SRV_LOG_ERROR } srv_log_level;

void srv_log_init(void);
int srv_log_debug_enabled(const char *subsystem);
void srv_log(srv_log_level level, const char *subsystem, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define srv_debug(subsys, ...)                                                                     \
    do {                                                                                           \
        if (srv_log_debug_enabled(subsys))                                                         \
            srv_log(SRV_LOG_DEBUG, subsys, __VA_ARGS__);                                           \
    } while (0)

#endif
