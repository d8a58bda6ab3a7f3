/* Certificate chains imported from an external CA, and DER/PEM encodings of certificates. */
#include <limits.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "ca_internal.h"

#define CHAIN_MAX_BYTES (256 * 1024) /* the import call's body cap */
#define CHAIN_MAX_CERTS 8

static const char pem_begin[] = "-----BEGIN CERTIFICATE-----";
static const char pem_end[] = "-----END CERTIFICATE-----";

/* Decodes one PEM certificate block; headers (encryption) and trailing DER are refused. */
static X509 *parse_pem_block(const char *block, size_t len)
{
    BIO *bio = BIO_new_mem_buf(block, (int)len);
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    const unsigned char *p;
    long data_len = 0;
    X509 *cert = NULL;

    if (bio && PEM_read_bio(bio, &name, &header, &data, &data_len) == 1 &&
        strcmp(name, PEM_STRING_X509) == 0 && header[0] == '\0') {
        p = data;
        cert = d2i_X509(NULL, &p, data_len);
        if (cert && p != data + data_len) {
            X509_free(cert);
            cert = NULL;
        }
    }
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    BIO_free(bio);
    return cert;
}

srv_status srv_ca_parse_chain(const char *pem, size_t pem_len, const uint8_t *key_spki,
                              size_t key_spki_len, STACK_OF(X509) * *out, srv_error *err)
{
    STACK_OF(X509) *chain = NULL;
    size_t pos = 0, begin_len = sizeof(pem_begin) - 1, end_len = sizeof(pem_end) - 1;
    int i, n;
    srv_status st = SRV_OK;

    *out = NULL;
    if (!key_spki || key_spki_len == 0)
        return srv_fail(err, SRV_E_INVALID_FIELD, "no public key to match the chain against");
    if (!pem || pem_len == 0)
        return srv_fail(err, SRV_E_CERTIFICATE, "the certificate chain is empty");
    if (pem_len > CHAIN_MAX_BYTES)
        return srv_fail(err, SRV_E_CERTIFICATE, "the certificate chain exceeds %d bytes",
                        CHAIN_MAX_BYTES);
    chain = sk_X509_new_null();
    if (!chain)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");

    /* Our own scan, not PEM_read_bio_X509 in a loop: that silently skips other PEM blocks
     * (a private key pasted by mistake, say), and we accept certificates and nothing else.
     * Explanatory text between blocks ("Bag Attributes", "subject=" lines) is skipped, as
     * RFC 7468 section 2 asks of parsers. */
    for (;;) {
        const char *end;
        size_t block_len;
        X509 *cert;

        while (pos < pem_len &&
               (pem[pos] == ' ' || pem[pos] == '\t' || pem[pos] == '\r' || pem[pos] == '\n'))
            pos++;
        if (pos == pem_len)
            break;
        if (pem_len - pos < begin_len || memcmp(pem + pos, pem_begin, begin_len) != 0) {
            const char *eol;
            if (pem_len - pos >= 11 && memcmp(pem + pos, "-----BEGIN ", 11) == 0) {
                st = srv_fail(err, SRV_E_CERTIFICATE,
                              "PEM block at byte %zu is not a certificate; only certificates "
                              "are accepted",
                              pos);
                goto out;
            }
            eol = memchr(pem + pos, '\n', pem_len - pos);
            pos = eol ? (size_t)(eol - pem) + 1 : pem_len;
            continue;
        }
        if (sk_X509_num(chain) == CHAIN_MAX_CERTS) {
            st = srv_fail(err, SRV_E_CERTIFICATE, "the chain has more than %d certificates",
                          CHAIN_MAX_CERTS);
            goto out;
        }
        end = memmem(pem + pos, pem_len - pos, pem_end, end_len);
        if (!end) {
            st = srv_fail(err, SRV_E_CERTIFICATE, "certificate %d has no END line",
                          sk_X509_num(chain));
            goto out;
        }
        block_len = (size_t)(end - (pem + pos)) + end_len;
        cert = parse_pem_block(pem + pos, block_len);
        if (!cert) {
            ERR_clear_error();
            st = srv_fail(err, SRV_E_CERTIFICATE, "certificate %d is not a valid certificate",
                          sk_X509_num(chain));
            goto out;
        }
        if (!sk_X509_push(chain, cert)) {
            X509_free(cert);
            st = srv_fail(err, SRV_E_NOMEM, "out of memory");
            goto out;
        }
        pos += block_len;
    }

    n = sk_X509_num(chain);
    if (n == 0) {
        st = srv_fail(err, SRV_E_CERTIFICATE, "the certificate chain is empty");
        goto out;
    }
    if (!srv_ca_spki_equals(X509_get_X509_PUBKEY(sk_X509_value(chain, 0)), key_spki,
                            key_spki_len)) {
        st = srv_fail(err, SRV_E_CERTIFICATE, "the first certificate is not for this key");
        goto out;
    }
    for (i = 0; i + 1 < n; i++) {
        X509 *subject = sk_X509_value(chain, i), *issuer = sk_X509_value(chain, i + 1);
        if (X509_check_issued(issuer, subject) != X509_V_OK ||
            X509_verify(subject, X509_get0_pubkey(issuer)) != 1) {
            ERR_clear_error();
            st = srv_fail(err, SRV_E_CERTIFICATE,
                          "certificate %d is not issued and signed by certificate %d", i, i + 1);
            goto out;
        }
    }
    *out = chain;
    chain = NULL;
out:
    sk_X509_pop_free(chain, X509_free);
    return st;
}

/* ---- encodings ---------------------------------------------------------------------------- */

srv_status srv_cert_to_der(X509 *cert, uint8_t **der, size_t *der_len, srv_error *err)
{
    unsigned char *p;
    int len = i2d_X509(cert, NULL);

    *der = NULL;
    if (len <= 0)
        return srv_ossl_fail(err, SRV_E_INTERNAL, "cannot encode the certificate");
    *der = malloc((size_t)len);
    if (!*der)
        return srv_fail(err, SRV_E_NOMEM, "out of memory");
    p = *der;
    *der_len = (size_t)i2d_X509(cert, &p);
    return SRV_OK;
}

srv_status srv_cert_to_pem(X509 *cert, char **pem, srv_error *err)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long len;
    srv_status st = SRV_OK;

    *pem = NULL;
    if (!bio || !PEM_write_bio_X509(bio, cert)) {
        st = srv_ossl_fail(err, SRV_E_INTERNAL, "cannot encode the certificate as PEM");
        goto out;
    }
    len = BIO_get_mem_data(bio, &data);
    *pem = malloc((size_t)len + 1);
    if (!*pem) {
        st = srv_fail(err, SRV_E_NOMEM, "out of memory");
        goto out;
    }
    memcpy(*pem, data, (size_t)len);
    (*pem)[len] = '\0';
out:
    BIO_free(bio);
    return st;
}

srv_status srv_cert_from_der(const uint8_t *der, size_t der_len, X509 **out, srv_error *err)
{
    const unsigned char *p = der;
    X509 *cert;

    *out = NULL;
    if (!der || der_len == 0 || der_len > LONG_MAX)
        return srv_fail(err, SRV_E_CERTIFICATE, "no certificate");
    cert = d2i_X509(NULL, &p, (long)der_len);
    if (!cert || p != der + der_len) {
        X509_free(cert);
        return srv_ossl_fail(err, SRV_E_CERTIFICATE, "not a DER certificate");
    }
    *out = cert;
    return SRV_OK;
}

int64_t srv_cert_not_after(const X509 *cert)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1)
        return 0;
    return (int64_t)timegm(&tm);
}
