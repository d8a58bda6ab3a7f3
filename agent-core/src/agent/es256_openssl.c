/* ES256 with OpenSSL: the service account's P-256 key signs a JWT assertion. */
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

/* Loads the private key, refusing a file others could read or that is not ours. */
static EVP_PKEY *load_key(const char *path, ag_error *err)
{
    struct stat sb;
    EVP_PKEY *key = NULL;
    FILE *f;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        ag_fail(err, SG_ERR_NOT_LOGGED_IN, "cannot open the service-account key %s", path);
        return NULL;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != getuid() ||
        (sb.st_mode & 077)) {
        close(fd);
        ag_fail(err, SG_ERR_NOT_LOGGED_IN,
                "the service-account key %s must be a file of ours with mode 0600", path);
        return NULL;
    }
    f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        ag_fail(err, SG_ERR_NOMEM, "out of memory");
        return NULL;
    }
    key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!key || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC || EVP_PKEY_get_bits(key) != 256) {
        EVP_PKEY_free(key);
        ag_fail(err, SG_ERR_NOT_LOGGED_IN, "%s is not a P-256 private key in PEM", path);
        return NULL;
    }
    return key;
}

sg_status ag_es256_sign(const char *key_file, const char *input, size_t len, uint8_t raw[64],
                        ag_error *err)
{
    uint8_t der[80];
    size_t der_len = sizeof(der);
    const unsigned char *p;
    EVP_PKEY *key = load_key(key_file, err);
    EVP_MD_CTX *md = NULL;
    ECDSA_SIG *sig = NULL;
    const BIGNUM *r, *s;
    sg_status st = SG_ERR_INTERNAL;

    if (!key)
        return err->status;
    md = EVP_MD_CTX_new();
    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, der, &der_len, (const uint8_t *)input, len) != 1)
        goto out;
    /* OpenSSL gives DER; the caller wants r||s. */
    p = der;
    sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (!sig)
        goto out;
    ECDSA_SIG_get0(sig, &r, &s);
    if (BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32)
        st = SG_OK;
out:
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return st == SG_OK ? SG_OK
                       : ag_fail(err, SG_ERR_INTERNAL, "cannot sign the service-account assertion");
}
