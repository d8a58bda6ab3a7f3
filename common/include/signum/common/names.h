/* Names both sides of the wire agree on: hashes and signature mechanisms as the JSON API
 * spells them, the hash an ECDSA digest's length implies, and PKCS#11 return-value names for
 * logs. The enums' order is the wire's and the order of sg_hash/sg_mech (agent-core) and
 * srv_hash/srv_mech (server), which assert it. */
#ifndef SGC_NAMES_H
#define SGC_NAMES_H

#include <stddef.h>

typedef enum { SGC_HASH_SHA256, SGC_HASH_SHA384, SGC_HASH_SHA512, SGC_HASH_COUNT } sgc_hash;
typedef enum { SGC_MECH_RSA_PKCS1, SGC_MECH_RSA_PSS, SGC_MECH_ECDSA, SGC_MECH_COUNT } sgc_mech;

/* "sha256", ...; "unknown" out of range. */
const char *sgc_hash_name(int hash);
/* Digest length in bytes; 0 out of range. */
size_t sgc_hash_len(int hash);
/* The hash of that exact name, or -1. */
int sgc_hash_parse(const char *name);
/* ECDSA signs a bare digest: the server needs the hash that made it, known only by its
 * length (32, 48, 64 bytes). -1 for any other length (SHA-1, truncated digests). */
int sgc_hash_for_digest_len(size_t len);

/* "rsa-pkcs1", "rsa-pss", "ecdsa"; "unknown" out of range. */
const char *sgc_mech_name(int mech);
int sgc_mech_parse(const char *name);

/* "CKR_PIN_INCORRECT", ...; "CKR_(other)" for a value not in the table. */
const char *sgc_ckr_name(unsigned long rv);

#endif
