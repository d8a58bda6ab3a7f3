/* Our own check of the server's certificate against the configured CA (win_trust.h). */
#include "win_trust.h"
#include "win_clientcert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEM_BEGIN "-----BEGIN CERTIFICATE-----"
#define PEM_END   "-----END CERTIFICATE-----"

int sg_win_trust_load(sg_win_trust *t, const char *ca_file, char *why, size_t why_len)
{
    CERT_CHAIN_ENGINE_CONFIG ec;
    char *text, *p;
    int rc = -1;

    memset(t, 0, sizeof(*t));
    if (!(text = sg_win_read_text(ca_file, "ca_file", SG_WIN_CA_FILE_MAX, why, why_len)))
        return -1;
    t->roots = CertOpenStore(CERT_STORE_PROV_MEMORY, 0, 0, 0, NULL);
    if (!t->roots) {
        snprintf(why, why_len, "cannot create a certificate store (error %lu)", GetLastError());
        goto out;
    }
    for (p = strstr(text, PEM_BEGIN); p; p = strstr(p + 1, PEM_BEGIN)) {
        const char *end = strstr(p, PEM_END);
        BYTE *der = NULL;
        DWORD der_len = 0, pem_len;
        if (!end) {
            snprintf(why, why_len, "ca_file %s: certificate %u has no END line", ca_file,
                     t->count + 1);
            goto out;
        }
        pem_len = (DWORD)(end + strlen(PEM_END) - p);
        if (!CryptStringToBinaryA(p, pem_len, CRYPT_STRING_BASE64HEADER, NULL, &der_len, NULL,
                                  NULL) ||
            !(der = malloc(der_len)) ||
            !CryptStringToBinaryA(p, pem_len, CRYPT_STRING_BASE64HEADER, der, &der_len, NULL,
                                  NULL) ||
            !CertAddEncodedCertificateToStore(t->roots, X509_ASN_ENCODING, der, der_len,
                                              CERT_STORE_ADD_ALWAYS, NULL)) {
            free(der);
            snprintf(why, why_len, "ca_file %s: certificate %u is not valid", ca_file,
                     t->count + 1);
            goto out;
        }
        free(der);
        t->count++;
    }
    if (t->count == 0) {
        snprintf(why, why_len, "ca_file %s holds no PEM certificate", ca_file);
        goto out;
    }
    /* Wine refuses the full cbSize; the size up to dwExclusiveFlags is the older layout,
     * which it accepts and Windows accepts too. */
    memset(&ec, 0, sizeof(ec));
    ec.cbSize = sizeof(ec);
    ec.hExclusiveRoot = t->roots;
    if (!CertCreateCertificateChainEngine(&ec, &t->engine)) {
        ec.cbSize = offsetof(CERT_CHAIN_ENGINE_CONFIG, dwExclusiveFlags);
        if (!CertCreateCertificateChainEngine(&ec, &t->engine)) {
            snprintf(why, why_len, "cannot create a chain engine (error %lu)", GetLastError());
            goto out;
        }
    }
    rc = 0;
out:
    free(text);
    if (rc != 0)
        sg_win_trust_free(t);
    return rc;
}

int sg_win_trust_verify(const sg_win_trust *t, HINTERNET req, const wchar_t *host, char *why,
                        size_t why_len)
{
    PCCERT_CONTEXT cert = NULL;
    PCCERT_CHAIN_CONTEXT chain = NULL;
    DWORD len = sizeof(cert);
    CERT_CHAIN_PARA para;
    SSL_EXTRA_CERT_CHAIN_POLICY_PARA ssl;
    CERT_CHAIN_POLICY_PARA policy;
    CERT_CHAIN_POLICY_STATUS status;
    int rc = -1;

    if (!WinHttpQueryOption(req, WINHTTP_OPTION_SERVER_CERT_CONTEXT, &cert, &len) || !cert) {
        snprintf(why, why_len, "the server presented no certificate (error %lu)", GetLastError());
        return -1;
    }
    memset(&para, 0, sizeof(para));
    para.cbSize = sizeof(para);
    if (!CertGetCertificateChain(t->engine, cert, NULL, cert->hCertStore, &para, 0, NULL, &chain)) {
        snprintf(why, why_len, "cannot build the server's certificate chain (error %lu)",
                 GetLastError());
        goto out;
    }
    if (chain->TrustStatus.dwErrorStatus != 0) {
        snprintf(why, why_len,
                 "the server's certificate does not chain to ca_file (trust status 0x%lx)",
                 (unsigned long)chain->TrustStatus.dwErrorStatus);
        goto out;
    }
    memset(&ssl, 0, sizeof(ssl));
    ssl.cbSize = sizeof(ssl);
    ssl.dwAuthType = AUTHTYPE_SERVER;
    ssl.pwszServerName = (wchar_t *)host;
    memset(&policy, 0, sizeof(policy));
    policy.cbSize = sizeof(policy);
    policy.pvExtraPolicyPara = &ssl;
    memset(&status, 0, sizeof(status));
    status.cbSize = sizeof(status);
    if (!CertVerifyCertificateChainPolicy(CERT_CHAIN_POLICY_SSL, chain, &policy, &status) ||
        status.dwError != 0) {
        snprintf(why, why_len, "the server's certificate is not valid for its host name (0x%lx)",
                 (unsigned long)status.dwError);
        goto out;
    }
    rc = 0;
out:
    if (chain)
        CertFreeCertificateChain(chain);
    CertFreeCertificateContext(cert);
    return rc;
}

void sg_win_trust_free(sg_win_trust *t)
{
    if (t->engine)
        CertFreeCertificateChainEngine(t->engine);
    if (t->roots)
        CertCloseStore(t->roots, 0);
    memset(t, 0, sizeof(*t));
}
