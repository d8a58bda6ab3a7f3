/* Names and sizes of key types, hashes and mechanisms (the PKCS#11 equivalents are the HSM
 * layer's: hsm/hsm_types.c). */
#include "key_types.h"

#include <string.h>

#include "signum/common/names.h"

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

/* Hash and mechanism names and lengths are the wire's (signum/common/names.h), same order. */
_Static_assert(SRV_HASH_SHA256 == (int)SGC_HASH_SHA256 && SRV_HASH_SHA384 == (int)SGC_HASH_SHA384 &&
                   SRV_HASH_SHA512 == (int)SGC_HASH_SHA512 && SRV_HASH_COUNT == (int)SGC_HASH_COUNT,
               "srv_hash follows sgc_hash");
_Static_assert(SRV_MECH_RSA_PKCS1 == (int)SGC_MECH_RSA_PKCS1 &&
                   SRV_MECH_RSA_PSS == (int)SGC_MECH_RSA_PSS &&
                   SRV_MECH_ECDSA == (int)SGC_MECH_ECDSA && SRV_MECH_COUNT == (int)SGC_MECH_COUNT,
               "srv_mech follows sgc_mech");

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
    return sgc_hash_name((int)hash);
}

int srv_hash_parse(const char *name, srv_hash *out)
{
    int h = sgc_hash_parse(name);
    if (h < 0)
        return 0;
    *out = (srv_hash)h;
    return 1;
}

size_t srv_hash_len(srv_hash hash)
{
    return sgc_hash_len((int)hash);
}

const char *srv_mech_name(srv_mech mech)
{
    return sgc_mech_name((int)mech);
}

int srv_mech_parse(const char *name, srv_mech *out)
{
    int m = sgc_mech_parse(name);
    if (m < 0)
        return 0;
    *out = (srv_mech)m;
    return 1;
}

unsigned srv_key_type_bits(srv_key_type type)
{
    return (unsigned)type < SRV_KEY_TYPE_COUNT ? key_types[type].bits : 0;
}
