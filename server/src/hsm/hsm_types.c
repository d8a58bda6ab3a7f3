/* The PKCS#11 equivalents of the hashes (their names and sizes: common/key_types.c). */
#include "hsm_internal.h"

static const struct {
    CK_MECHANISM_TYPE ck_hash;
    CK_RSA_PKCS_MGF_TYPE ck_mgf;
} hashes[SRV_HASH_COUNT] = {
    [SRV_HASH_SHA256] = {CKM_SHA256, CKG_MGF1_SHA256},
    [SRV_HASH_SHA384] = {CKM_SHA384, CKG_MGF1_SHA384},
    [SRV_HASH_SHA512] = {CKM_SHA512, CKG_MGF1_SHA512},
};

CK_MECHANISM_TYPE hsm_hash_mech(srv_hash hash)
{
    return hashes[hash].ck_hash;
}

CK_RSA_PKCS_MGF_TYPE hsm_hash_mgf(srv_hash hash)
{
    return hashes[hash].ck_mgf;
}
