/* Key types, hashes and signing mechanisms as values: their names on the wire and in the
 * database, and their sizes. Shared by every layer (the store keeps a key's type, the API
 * parses them, the HSM maps them to PKCS#11), so they live below all of them. */
#ifndef SRV_KEY_TYPES_H
#define SRV_KEY_TYPES_H

#include <stddef.h>

typedef enum {
    SRV_KEY_RSA_2048,
    SRV_KEY_RSA_3072,
    SRV_KEY_RSA_4096,
    SRV_KEY_EC_P256,
    SRV_KEY_EC_P384,
    SRV_KEY_TYPE_COUNT
} srv_key_type;

typedef enum { SRV_HASH_SHA256, SRV_HASH_SHA384, SRV_HASH_SHA512, SRV_HASH_COUNT } srv_hash;

typedef enum { SRV_MECH_RSA_PKCS1, SRV_MECH_RSA_PSS, SRV_MECH_ECDSA, SRV_MECH_COUNT } srv_mech;

#define SRV_MAX_SIG_LEN 512 /* RSA-4096 */

const char *srv_key_type_name(srv_key_type type); /* "rsa2048", "ec-p256", ... */
int srv_key_type_parse(const char *name, srv_key_type *out);
int srv_key_type_is_rsa(srv_key_type type);
size_t srv_key_type_sig_len(srv_key_type type); /* raw signature length */
unsigned srv_key_type_bits(srv_key_type type);  /* modulus or curve size */

const char *srv_hash_name(srv_hash hash); /* "sha256", ... */
int srv_hash_parse(const char *name, srv_hash *out);
size_t srv_hash_len(srv_hash hash);

const char *srv_mech_name(srv_mech mech); /* "rsa-pkcs1", "rsa-pss", "ecdsa" */
int srv_mech_parse(const char *name, srv_mech *out);

#endif
