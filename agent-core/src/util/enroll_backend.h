/* What enroll.c needs of a platform: key pairs, CSRs, private files and the per-user paths.
 * enroll_openssl.c (Linux: OpenSSL, mode 0600) and enroll_win.c (Windows: mbedTLS, a DACL
 * for the user only). The POST goes over the agent's HTTPS transport (signum/https.h). */
#ifndef UTIL_ENROLL_BACKEND_H
#define UTIL_ENROLL_BACKEND_H

#include <stddef.h>

#include "signum/agent_config.h"

typedef struct enroll_key enroll_key;

/* A fresh P-256 key pair, or NULL. */
enroll_key *enroll_key_new(void);
void enroll_key_free(enroll_key *k);
/* Base64 of the DER SubjectPublicKeyInfo (malloc'd). */
char *enroll_key_spki_b64(enroll_key *k);
/* The private key as PEM (malloc'd; the caller wipes it with enroll_wipe and frees it). */
char *enroll_key_pem(enroll_key *k);
/* A PEM certificate request signed by the key, subject CN=cn (malloc'd), or NULL. */
char *enroll_key_csr(enroll_key *k, const char *cn);
/* A fresh key pair for a machine's TLS client certificate (the agent's TLS stack must take
 * it: P-256 on Linux, RSA 2048 on Windows), or NULL. */
enroll_key *enroll_machine_key_new(void);
/* Keeps the machine's private key where the agent finds it and only this user can use it, and
 * puts into ref what client_key must say: Linux writes DIR/machine.key (mode 0600); Windows
 * imports it, not exportable, into a CryptoAPI key container of the user named after
 * label, and ref is "capi:<container>". 0, or -1 after printing why. */
int enroll_machine_key_store(enroll_key *k, const char *dir, const char *label, char *ref,
                             size_t ref_len);
/* Removes a machine key that a re-enrollment replaced (old_ref as client_key said). */
void enroll_machine_key_forget(const char *old_ref);

/* Writes text to path atomically, readable only by the user when private_, else by all. */
int enroll_write_file(const char *path, const char *text, int private_);
/* Creates a directory (and its parents) readable only by the user. */
void enroll_make_private_dir(const char *path);
/* The directory for enrollment files (the user's Signum config directory), created. */
int enroll_default_dir(char *out, size_t len);
/* The user's agent.conf ($SIGNUM_CONFIG or the platform's default), its directory created. */
int enroll_config_path(char *out, size_t len);
/* This machine's host name. */
void enroll_hostname(char *out, size_t len);
/* Wipes a secret in a way the compiler keeps. */
void enroll_wipe(void *p, size_t len);

#endif
