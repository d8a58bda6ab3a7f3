/* Certificate chain import (srv_ca_parse_chain in server/src/ca/ca.c, behind
 * POST /api/v1/admin/keys/{name}/certificate) and the DER certificate reader.
 *
 * Input: one mode byte, then the text. Mode bit 0: the key to match is the public key of the
 * first certificate OpenSSL finds in the text, so the chain checks past the leaf match are
 * reached; else a fixed P-256 key made at start-up. Mode bit 1: the text is also read as one
 * DER certificate. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

#include "ca/ca.h"
#include "fuzz.h"

static uint8_t *fixed_spki;
static size_t fixed_spki_len;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    unsigned char *p = NULL;
    int len;
    (void)argc;
    (void)argv;
    if (!key || (len = i2d_PUBKEY(key, &p)) <= 0)
        abort();
    fixed_spki = p;
    fixed_spki_len = (size_t)len;
    EVP_PKEY_free(key);
    return 0;
}

static size_t first_cert_spki(const uint8_t *data, size_t size, uint8_t **spki)
{
    BIO *bio = BIO_new_mem_buf(data, (int)size);
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    int len = cert ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), spki) : -1;
    X509_free(cert);
    BIO_free(bio);
    ERR_clear_error();
    return len > 0 ? (size_t)len : 0;
}

/* A certificate the server took must survive its own encodings. */
static void encodings(X509 *cert)
{
    uint8_t *der = NULL;
    size_t der_len = 0;
    char *pem = NULL;
    X509 *back = NULL;
    srv_error err;
    FUZZ_CHECK(srv_cert_to_der(cert, &der, &der_len, &err) == SRV_OK);
    FUZZ_CHECK(srv_cert_from_der(der, der_len, &back, &err) == SRV_OK);
    FUZZ_CHECK(X509_cmp(cert, back) == 0);
    FUZZ_CHECK(srv_cert_to_pem(cert, &pem, &err) == SRV_OK && strstr(pem, "CERTIFICATE"));
    (void)srv_cert_not_after(cert);
    X509_free(back);
    free(der);
    free(pem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned mode = size ? data[0] : 0;
    const uint8_t *text = size ? data + 1 : data;
    size_t len = size ? size - 1 : 0, spki_len = fixed_spki_len;
    uint8_t *spki = NULL;
    const uint8_t *key = fixed_spki;
    STACK_OF(X509) *chain = NULL;
    srv_error err;
    srv_status st;

    if ((mode & 1) && len && (spki_len = first_cert_spki(text, len, &spki)) > 0)
        key = spki;
    else
        spki_len = fixed_spki_len;

    st = srv_ca_parse_chain((const char *)text, len, key, spki_len, &chain, &err);
    if (st == SRV_OK) {
        X509_PUBKEY *leaf_key;
        unsigned char *leaf_spki = NULL;
        int leaf_len;
        FUZZ_CHECK(chain && sk_X509_num(chain) >= 1 && sk_X509_num(chain) <= 8);
        leaf_key = X509_get_X509_PUBKEY(sk_X509_value(chain, 0));
        leaf_len = i2d_X509_PUBKEY(leaf_key, &leaf_spki);
        FUZZ_CHECK(leaf_len > 0 && (size_t)leaf_len == spki_len &&
                   memcmp(leaf_spki, key, spki_len) == 0);
        OPENSSL_free(leaf_spki);
        for (int i = 0; i < sk_X509_num(chain); i++)
            encodings(sk_X509_value(chain, i));
        sk_X509_pop_free(chain, X509_free);
    } else {
        FUZZ_CHECK(chain == NULL);
        FUZZ_CHECK(st == SRV_E_CERTIFICATE || st == SRV_E_NOMEM || st == SRV_E_INVALID_FIELD);
    }

    if (mode & 2) {
        X509 *cert = NULL;
        if (srv_cert_from_der(text, len, &cert, &err) == SRV_OK) {
            encodings(cert);
            X509_free(cert);
        } else {
            FUZZ_CHECK(cert == NULL && err.status == SRV_E_CERTIFICATE);
        }
    }
    OPENSSL_free(spki);
    ERR_clear_error();
    return 0;
}
