/* The CryptoTokenKit shim: every decision of the macOS token in C, over the client library, so
 * it is built and tested on Linux. The Objective-C (token/, app/) only translates: a
 * TKTokenKeyAlgorithm into an sgtk_alg, NSData into bytes, an sgtk_error into an NSError in
 * TKErrorDomain, and the entries below into TKTokenKeychainKey/Certificate. */
#ifndef SGTK_H
#define SGTK_H

#include <stddef.h>
#include <stdint.h>

#include "signum/client.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The SecKeyAlgorithms the token signs with, one per Security framework constant
 * (token/SignumTokenSession.m keeps the constants in this order). */
typedef enum {
    SGTK_ALG_RSA_PKCS1_DIGESTINFO, /* RSASignatureDigestPKCS1v15Raw: data is a DigestInfo */
    SGTK_ALG_RSA_PKCS1_SHA256,     /* RSASignatureDigestPKCS1v15SHA256: data is the digest */
    SGTK_ALG_RSA_PKCS1_SHA384,
    SGTK_ALG_RSA_PKCS1_SHA512,
    SGTK_ALG_RSA_PSS_SHA256, /* RSASignatureDigestPSSSHA256: salt and MGF1 hash = the hash */
    SGTK_ALG_RSA_PSS_SHA384,
    SGTK_ALG_RSA_PSS_SHA512,
    SGTK_ALG_ECDSA_X962, /* ECDSASignatureDigestX962: the hash told by the digest's length */
    SGTK_ALG_ECDSA_X962_SHA256,
    SGTK_ALG_ECDSA_X962_SHA384,
    SGTK_ALG_ECDSA_X962_SHA512,
    SGTK_ALG_COUNT
} sgtk_alg;

/* TKErrorCode (CryptoTokenKit/TKError.h) values, so the Objective-C passes them through. */
typedef enum {
    SGTK_OK = 0,
    SGTK_E_NOT_IMPLEMENTED = -1,
    SGTK_E_COMMUNICATION = -2,
    SGTK_E_CORRUPTED_DATA = -3,
    SGTK_E_CANCELED_BY_USER = -4,
    SGTK_E_AUTHENTICATION_FAILED = -5,
    SGTK_E_OBJECT_NOT_FOUND = -6,
    SGTK_E_TOKEN_NOT_FOUND = -7,
    SGTK_E_BAD_PARAMETER = -8,
    SGTK_E_AUTHENTICATION_NEEDED = -9
} sgtk_error;

/* The one map from the client library's status to a TKErrorCode (README: "Errors"). */
sgtk_error sgtk_map_status(sg_status st);
/* "TKErrorCodeObjectNotFound" for -6; "unknown" for anything else. */
const char *sgtk_error_name(sgtk_error e);
const char *sgtk_alg_name(sgtk_alg alg);

typedef enum { SGTK_KEY_RSA, SGTK_KEY_EC, SGTK_KEY_UNKNOWN } sgtk_key_kind;

/* The key kind of a key type as the server names it ("rsa2048", "ec-p256"). */
sgtk_key_kind sgtk_key_kind_of(const char *type);
/* 1 if the algorithm signs with a key of this kind. */
int sgtk_alg_fits(sgtk_alg alg, sgtk_key_kind kind);

/* What one signature asks of the server: the algorithm's data turned into a mechanism, a hash
 * and the digest (pointing into the caller's data). */
typedef struct {
    sg_mech mech;
    sg_hash hash;
    const uint8_t *digest;
    size_t digest_len;
    int der_output; /* ECDSA: the Security framework wants DER ECDSA-Sig-Value, not r||s */
} sgtk_request;

/* Checks and splits the data for the algorithm: DigestInfo parsed (SHA-256/384/512 only), a
 * digest of exactly the hash's length. SGTK_E_BAD_PARAMETER with a reason otherwise. */
sgtk_error sgtk_prepare(sgtk_alg alg, const uint8_t *data, size_t len, sgtk_request *out, char *why,
                        size_t why_len);

/* Object ids: "signum-key:" or "signum-cert:" and the lowercase hex SHA-256 of the key's DER
 * certificate. A rotated certificate is a new identity (the host app republishes it). */
#define SGTK_OBJECT_ID_MAX 80
typedef enum { SGTK_OBJ_KEY, SGTK_OBJ_CERT } sgtk_obj_kind;
sgtk_error sgtk_object_id(sgtk_obj_kind kind, const uint8_t *cert, size_t cert_len,
                          char out[SGTK_OBJECT_ID_MAX]);
/* Parses an id back: its kind and certificate hash. SGTK_E_OBJECT_NOT_FOUND if it is not one. */
sgtk_error sgtk_object_id_parse(const char *id, size_t id_len, sgtk_obj_kind *kind,
                                uint8_t cert_sha256[32]);

/* ---- the token: a client and the keys it has seen ------------------------------------------ */

typedef struct sgtk_token sgtk_token;

/* socket_path NULL: the client library's default (on macOS the app-group container). */
sgtk_error sgtk_token_new(const char *socket_path, sgtk_token **out);
void sgtk_token_free(sgtk_token *t);

/* supportsOperation: 1 if the key behind this object id exists and the algorithm fits it. */
int sgtk_supports(sgtk_token *t, const char *key_id, size_t key_id_len, sgtk_alg alg);

/* signData: sig holds *sig_len bytes on entry (SGTK_SIG_MAX is always enough), the length on
 * return. why gets a sentence for the log on failure (never a secret). */
#define SGTK_SIG_MAX 512
sgtk_error sgtk_sign(sgtk_token *t, const char *key_id, size_t key_id_len, sgtk_alg alg,
                     const uint8_t *data, size_t len, uint8_t *sig, size_t *sig_len, char *why,
                     size_t why_len);

/* ---- the host app: what to publish ---------------------------------------------------------- */

typedef struct {
    char name[65];
    char key_id[SGTK_OBJECT_ID_MAX];
    char cert_id[SGTK_OBJECT_ID_MAX];
    sgtk_key_kind kind;
    unsigned bits;
    const uint8_t *cert; /* DER, owned by the token (valid until the next listing) */
    size_t cert_len;
} sgtk_entry;

/* The entry of one key by name, from a fresh listing. SGTK_E_OBJECT_NOT_FOUND if the key is not
 * visible to this user; SGTK_E_BAD_PARAMETER if it has no certificate (no identity without one). */
sgtk_error sgtk_entry_of(sgtk_token *t, const char *name, sgtk_entry *out, char *why,
                         size_t why_len);

/* The configured key names (the token configuration's data): one name a line. */
#define SGTK_NAMES_MAX 64
typedef enum { SGTK_NAMES_ADD, SGTK_NAMES_REMOVE } sgtk_names_op;
/* Applies an add or remove to the list text; *out is a new malloc'ed text. SGTK_E_BAD_PARAMETER
 * for a malformed name or a full list, SGTK_E_OBJECT_NOT_FOUND to remove an absent name. */
sgtk_error sgtk_names_apply(const char *current, sgtk_names_op op, const char *name, char **out,
                            char *why, size_t why_len);
/* Splits the list text into at most SGTK_NAMES_MAX names (each at most 64 bytes). Returns the
 * count; malformed lines are skipped. */
size_t sgtk_names_split(const char *text, char names[][65], size_t max);

#ifdef __cplusplus
}
#endif

#endif
