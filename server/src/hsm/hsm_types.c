/* Names and sizes of key types, hashes and mechanisms, and their PKCS#11 equivalents. */
#include <string.h>

#include "hsm_internal.h"

static const struct {
    const char *name;
    int rsa;
    unsigned bits;
    size_t sig_len;
} key_types[SRV_KEY_TYPE_COUNT] = {
    [SRV_KEY_RSA_2048] = {"rsa2048", 1, 2048, 256}, [SRV_KEY_RSA_3072] = {"rsa3072", 1, 3072, 384},
    [SRV_KEY_RSA_4096] = {"rsa4096", 1, 4096, 512}, [SRV_KEY_EC_P256] = {"ec-p256", 0, 256, 64},
    [SRV_KEY_EC_P384] = {"ec-p384", 0, 384, 96},
};

static const struct {
    const char *name;
    size_t len;
    CK_MECHANISM_TYPE ck_hash;
    CK_RSA_PKCS_MGF_TYPE ck_mgf;
} hashes[SRV_HASH_COUNT] = {
    [SRV_HASH_SHA256] = {"sha256", 32, CKM_SHA256, CKG_MGF1_SHA256},
    [SRV_HASH_SHA384] = {"sha384", 48, CKM_SHA384, CKG_MGF1_SHA384},
    [SRV_HASH_SHA512] = {"sha512", 64, CKM_SHA512, CKG_MGF1_SHA512},
};

static const char *mech_names[SRV_MECH_COUNT] = {
    [SRV_MECH_RSA_PKCS1] = "rsa-pkcs1",
    [SRV_MECH_RSA_PSS] = "rsa-pss",
    [SRV_MECH_ECDSA] = "ecdsa",
};

const char *srv_key_type_name(srv_key_type type)
{
    return (unsigned)type < SRV_KEY_TYPE_COUNT ? key_types[type].name : "unknown";
}

int srv_key_type_parse(const char *name, srv_key_type *out)
{
    for (int i = 0; i < SRV_KEY_TYPE_COUNT; i++)
        if (strcmp(name, key_types[i].name) == 0) {
            *out = (srv_key_type)i;
            return 1;
        }
    return 0;
}

int srv_key_type_is_rsa(srv_key_type type)
{
    return (unsigned)type < SRV_KEY_TYPE_COUNT && key_types[type].rsa;
}

size_t srv_key_type_sig_len(srv_key_type type)
{
    return (unsigned)type < SRV_KEY_TYPE_COUNT ? key_types[type].sig_len : 0;
}

const char *srv_hash_name(srv_hash hash)
{
    return (unsigned)hash < SRV_HASH_COUNT ? hashes[hash].name : "unknown";
}

int srv_hash_parse(const char *name, srv_hash *out)
{
    for (int i = 0; i < SRV_HASH_COUNT; i++)
        if (strcmp(name, hashes[i].name) == 0) {
            *out = (srv_hash)i;
            return 1;
        }
    return 0;
}

size_t srv_hash_len(srv_hash hash)
{
    return (unsigned)hash < SRV_HASH_COUNT ? hashes[hash].len : 0;
}

const char *srv_mech_name(srv_mech mech)
{
    return (unsigned)mech < SRV_MECH_COUNT ? mech_names[mech] : "unknown";
}

int srv_mech_parse(const char *name, srv_mech *out)
{
    for (int i = 0; i < SRV_MECH_COUNT; i++)
        if (strcmp(name, mech_names[i]) == 0) {
            *out = (srv_mech)i;
            return 1;
        }
    return 0;
}

unsigned hsm_key_bits(srv_key_type type)
{
    return (unsigned)type < SRV_KEY_TYPE_COUNT ? key_types[type].bits : 0;
}

CK_MECHANISM_TYPE hsm_hash_mech(srv_hash hash)
{
    return hashes[hash].ck_hash;
}

CK_RSA_PKCS_MGF_TYPE hsm_hash_mgf(srv_hash hash)
{
    return hashes[hash].ck_mgf;
}
