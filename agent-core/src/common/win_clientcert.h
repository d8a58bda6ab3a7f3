/* The machine's TLS client certificate on Windows (mTLS), shared by `signum-util enroll
 * machine` (which puts the key into the user's key store) and the agent (which presents it).
 * The private key lives only in a CryptoAPI key container of the current user (the Microsoft
 * Enhanced RSA and AES provider), imported non-exportable; it is never written to a file.
 * The configuration names it as client_key = "capi:<container>", beside client_cert = the PEM
 * file of the issued certificate (and its chain). RSA, because the Windows TLS stacks take a
 * CryptoAPI RSA key everywhere (Wine's schannel takes nothing else). */
#ifndef SG_WIN_CLIENTCERT_H
#define SG_WIN_CLIENTCERT_H
#ifdef _WIN32

#include <windows.h>
#include <stddef.h>
#include <wincrypt.h>

#define SG_WIN_KEY_REF_PREFIX "capi:"
#define SG_WIN_KEY_PROVIDER   MS_ENH_RSA_AES_PROV_W
#define SG_WIN_KEY_PROV_TYPE  PROV_RSA_AES
#define SG_WIN_KEY_SPEC       AT_KEYEXCHANGE
#define SG_WIN_CONTAINER_MAX  200

typedef struct {
    HCERTSTORE store;    /* a memory store holding the certificate */
    PCCERT_CONTEXT cert; /* the leaf, bound to the key container */
} sg_win_client_cert;

/* The file's text (NUL-terminated, malloc'd, at most max bytes), or NULL with why; what names
 * the file in messages ("ca_file", "client_cert"). */
char *sg_win_read_text(const char *path, const char *what, size_t max, char *why, size_t why_len);

/* "capi:<container>" into the container name (wide). 0, or -1 with why. */
int sg_win_key_ref_parse(const char *key_ref, wchar_t *container, size_t container_len, char *why,
                         size_t why_len);

/* Loads the first certificate of cert_file and binds it to the key container named by key_ref,
 * after checking that the container exists and holds the certificate's key. 0, or -1 with
 * why. */
int sg_win_client_cert_load(sg_win_client_cert *cc, const char *cert_file, const char *key_ref,
                            char *why, size_t why_len);
void sg_win_client_cert_free(sg_win_client_cert *cc);

#endif
#endif
