/* The machine's client certificate bound to its CryptoAPI key container (win_clientcert.h). */
#include "win_clientcert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEM_BEGIN     "-----BEGIN CERTIFICATE-----"
#define PEM_END       "-----END CERTIFICATE-----"
#define CERT_FILE_MAX (256 * 1024)

char *sg_win_read_text(const char *path, const char *what, size_t max, char *why, size_t why_len)
{
    wchar_t wpath[1024];
    HANDLE h;
    LARGE_INTEGER size;
    DWORD got = 0;
    char *text = NULL;

    if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1, wpath, 1024) <= 0) {
        snprintf(why, why_len, "%s %s is not a valid path", what, path);
        return NULL;
    }
    h = CreateFileW(wpath, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        snprintf(why, why_len, "cannot read %s %s (error %lu)", what, path, GetLastError());
        return NULL;
    }
    if (!GetFileSizeEx(h, &size) || size.QuadPart <= 0 || (ULONGLONG)size.QuadPart > max ||
        !(text = malloc((size_t)size.QuadPart + 1)) ||
        !ReadFile(h, text, (DWORD)size.QuadPart, &got, NULL) || got != size.QuadPart) {
        snprintf(why, why_len, "%s %s is unreadable, empty or over %zu KiB", what, path,
                 max / 1024);
        free(text);
        text = NULL;
    } else {
        text[got] = '\0';
    }
    CloseHandle(h);
    return text;
}

int sg_win_key_ref_parse(const char *key_ref, wchar_t *container, size_t container_len, char *why,
                         size_t why_len)
{
    size_t plen = strlen(SG_WIN_KEY_REF_PREFIX);
    const char *name = key_ref + plen;
    if (strncmp(key_ref, SG_WIN_KEY_REF_PREFIX, plen) != 0 || !*name) {
        snprintf(why, why_len,
                 "client_key must name a key in your Windows key store as \"capi:<container>\" "
                 "(what `signum-util enroll machine` writes), not \"%s\"",
                 key_ref);
        return -1;
    }
    if (container_len > INT_MAX || MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, name, -1,
                                                       container, (int)container_len) <= 0) {
        snprintf(why, why_len, "client_key %s: the container name is too long or not UTF-8",
                 key_ref);
        return -1;
    }
    return 0;
}

/* The first PEM certificate of text, added to store; its context, or NULL. */
static PCCERT_CONTEXT first_cert(HCERTSTORE store, const char *text)
{
    const char *p = strstr(text, PEM_BEGIN), *end = p ? strstr(p, PEM_END) : NULL;
    PCCERT_CONTEXT cert = NULL;
    BYTE *der = NULL;
    DWORD der_len = 0, pem_len;

    if (!end)
        return NULL;
    pem_len = (DWORD)(end + strlen(PEM_END) - p);
    if (CryptStringToBinaryA(p, pem_len, CRYPT_STRING_BASE64HEADER, NULL, &der_len, NULL, NULL) &&
        (der = malloc(der_len)) &&
        CryptStringToBinaryA(p, pem_len, CRYPT_STRING_BASE64HEADER, der, &der_len, NULL, NULL))
        CertAddEncodedCertificateToStore(store, X509_ASN_ENCODING, der, der_len,
                                         CERT_STORE_ADD_ALWAYS, &cert);
    free(der);
    return cert;
}

/* The container must exist and hold the certificate's public key. 0, or -1 with why. */
static int check_key(PCCERT_CONTEXT cert, const wchar_t *container, const char *key_ref, char *why,
                     size_t why_len)
{
    HCRYPTPROV prov = 0;
    CERT_PUBLIC_KEY_INFO *pub = NULL;
    DWORD len = 0;
    int rc = -1;

    if (!CryptAcquireContextW(&prov, container, SG_WIN_KEY_PROVIDER, SG_WIN_KEY_PROV_TYPE,
                              CRYPT_SILENT)) {
        snprintf(why, why_len,
                 "client_key %s is not in your key store (error 0x%lx); enroll this machine "
                 "again with `signum-util enroll machine`",
                 key_ref, (unsigned long)GetLastError());
        return -1;
    }
    if (!CryptExportPublicKeyInfo(prov, SG_WIN_KEY_SPEC, X509_ASN_ENCODING, NULL, &len) ||
        !(pub = malloc(len)) ||
        !CryptExportPublicKeyInfo(prov, SG_WIN_KEY_SPEC, X509_ASN_ENCODING, pub, &len)) {
        snprintf(why, why_len, "client_key %s holds no usable key (error 0x%lx)", key_ref,
                 (unsigned long)GetLastError());
        goto out;
    }
    if (!CertComparePublicKeyInfo(X509_ASN_ENCODING, pub, &cert->pCertInfo->SubjectPublicKeyInfo)) {
        snprintf(why, why_len, "client_key %s is not the key of client_cert's certificate",
                 key_ref);
        goto out;
    }
    rc = 0;
out:
    free(pub);
    CryptReleaseContext(prov, 0);
    return rc;
}

int sg_win_client_cert_load(sg_win_client_cert *cc, const char *cert_file, const char *key_ref,
                            char *why, size_t why_len)
{
    wchar_t container[SG_WIN_CONTAINER_MAX];
    CRYPT_KEY_PROV_INFO kpi;
    char *text = NULL;
    int rc = -1;

    memset(cc, 0, sizeof(*cc));
    if (!key_ref[0]) {
        snprintf(why, why_len, "client_cert is set but client_key is not");
        return -1;
    }
    if (sg_win_key_ref_parse(key_ref, container, SG_WIN_CONTAINER_MAX, why, why_len) != 0)
        return -1;
    if (!(text = sg_win_read_text(cert_file, "client_cert", CERT_FILE_MAX, why, why_len)))
        return -1;
    if (!(cc->store = CertOpenStore(CERT_STORE_PROV_MEMORY, 0, 0, 0, NULL))) {
        snprintf(why, why_len, "cannot create a certificate store (error %lu)", GetLastError());
        goto out;
    }
    if (!(cc->cert = first_cert(cc->store, text))) {
        snprintf(why, why_len, "client_cert %s holds no valid PEM certificate", cert_file);
        goto out;
    }
    if (check_key(cc->cert, container, key_ref, why, why_len) != 0)
        goto out;
    /* What schannel (and Wine's) follow to the private key. */
    memset(&kpi, 0, sizeof(kpi));
    kpi.pwszContainerName = container;
    kpi.pwszProvName = (wchar_t *)SG_WIN_KEY_PROVIDER;
    kpi.dwProvType = SG_WIN_KEY_PROV_TYPE;
    kpi.dwKeySpec = SG_WIN_KEY_SPEC;
    if (!CertSetCertificateContextProperty(cc->cert, CERT_KEY_PROV_INFO_PROP_ID, 0, &kpi)) {
        snprintf(why, why_len, "cannot bind client_cert to its key (error %lu)", GetLastError());
        goto out;
    }
    rc = 0;
out:
    free(text);
    if (rc != 0)
        sg_win_client_cert_free(cc);
    return rc;
}

void sg_win_client_cert_free(sg_win_client_cert *cc)
{
    if (cc->cert)
        CertFreeCertificateContext(cc->cert);
    if (cc->store)
        CertCloseStore(cc->store, 0);
    memset(cc, 0, sizeof(*cc));
}
