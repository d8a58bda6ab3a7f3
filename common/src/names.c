/* Hash and mechanism names as the JSON API spells them (names.h). */
#include "signum/common/names.h"

#include <string.h>

static const struct {
    const char *name;
    size_t len;
} hashes[SGC_HASH_COUNT] = {
    [SGC_HASH_SHA256] = {"sha256", 32},
    [SGC_HASH_SHA384] = {"sha384", 48},
    [SGC_HASH_SHA512] = {"sha512", 64},
};

static const char *const mechs[SGC_MECH_COUNT] = {
    [SGC_MECH_RSA_PKCS1] = "rsa-pkcs1",
    [SGC_MECH_RSA_PSS] = "rsa-pss",
    [SGC_MECH_ECDSA] = "ecdsa",
};

const char *sgc_hash_name(int hash)
{
    return (unsigned)hash < SGC_HASH_COUNT ? hashes[hash].name : "unknown";
}

size_t sgc_hash_len(int hash)
{
    return (unsigned)hash < SGC_HASH_COUNT ? hashes[hash].len : 0;
}

int sgc_hash_parse(const char *name)
{
    for (int i = 0; name && i < SGC_HASH_COUNT; i++)
        if (strcmp(name, hashes[i].name) == 0)
            return i;
    return -1;
}

int sgc_hash_for_digest_len(size_t len)
{
    for (int i = 0; i < SGC_HASH_COUNT; i++)
        if (hashes[i].len == len)
            return i;
    return -1;
}

const char *sgc_mech_name(int mech)
{
    return (unsigned)mech < SGC_MECH_COUNT ? mechs[mech] : "unknown";
}

int sgc_mech_parse(const char *name)
{
    for (int i = 0; name && i < SGC_MECH_COUNT; i++)
        if (strcmp(name, mechs[i]) == 0)
            return i;
    return -1;
}
