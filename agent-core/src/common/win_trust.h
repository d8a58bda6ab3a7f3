/* Verifying the server's TLS certificate ourselves on Windows (the agent's transport and
 * signum-util's doctor/enroll). WinHTTP only trusts the system roots, and a private CA fails
 * there (and under Wine with a misleading error), so with a configured CA file WinHTTP is told
 * to accept an unknown root and we check the certificate: a chain engine whose exclusive root
 * store holds only the configured CA, a chain with no error status at all (under Wine a chain
 * to another CA is only PARTIAL_CHAIN, which the SSL policy alone lets through), then the SSL
 * policy for the host name. */
#ifndef SG_WIN_TRUST_H
#define SG_WIN_TRUST_H
#ifdef _WIN32

#include <windows.h>
#include <stddef.h>
#include <wincrypt.h>
#include <winhttp.h>

#define SG_WIN_CA_FILE_MAX (1024 * 1024)

typedef struct {
    HCERTSTORE roots;        /* the CA file's certificates */
    HCERTCHAINENGINE engine; /* trusts only roots */
    unsigned count;
} sg_win_trust;

/* Loads every PEM certificate of ca_file (UTF-8 path, at most 1 MiB) and makes the engine.
 * 0, or -1 with why. */
int sg_win_trust_load(sg_win_trust *t, const char *ca_file, char *why, size_t why_len);
/* The certificate the server presented on req must chain to the CA alone and be valid for
 * host. 0, or -1 with why. */
int sg_win_trust_verify(const sg_win_trust *t, HINTERNET req, const wchar_t *host, char *why,
                        size_t why_len);
void sg_win_trust_free(sg_win_trust *t);

#endif
#endif
