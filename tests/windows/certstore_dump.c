/* certstore_dump.exe: what `signum-util certstore` left in CurrentUser\My, for the Wine test.
 * One line per certificate: its SHA-1 thumbprint and, if it has CERT_KEY_PROV_INFO_PROP_ID,
 * the provider, container, provider type and key spec ("-" when it has none). */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <wincrypt.h>

static void print_wide(const wchar_t *w)
{
    char buf[512];
    if (!w || !WideCharToMultiByte(CP_UTF8, 0, w, -1, buf, sizeof(buf), NULL, NULL))
        snprintf(buf, sizeof(buf), "(none)");
    printf("%s", buf);
}

int main(void)
{
    HCERTSTORE my =
        CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0, CERT_SYSTEM_STORE_CURRENT_USER, L"My");
    PCCERT_CONTEXT c = NULL;
    int n = 0;
    if (!my) {
        fprintf(stderr, "certstore_dump: cannot open CurrentUser\\My (error %lu)\n",
                (unsigned long)GetLastError());
        return 1;
    }
    while ((c = CertEnumCertificatesInStore(my, c)) != NULL) {
        BYTE hash[20];
        DWORD len = sizeof(hash);
        CRYPT_KEY_PROV_INFO *info = NULL;
        n++;
        if (!CertGetCertificateContextProperty(c, CERT_SHA1_HASH_PROP_ID, hash, &len))
            len = 0;
        printf("cert ");
        for (DWORD i = 0; i < len; i++)
            printf("%02X", hash[i]);
        len = 0;
        if (CertGetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, NULL, &len) && len &&
            (info = malloc(len)) &&
            CertGetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, info, &len)) {
            printf(" prov=");
            print_wide(info->pwszProvName);
            printf(" container=");
            print_wide(info->pwszContainerName);
            printf(" provtype=%lu keyspec=%lu\n", (unsigned long)info->dwProvType,
                   (unsigned long)info->dwKeySpec);
        } else {
            printf(" prov=-\n");
        }
        free(info);
    }
    printf("total %d\n", n);
    CertCloseStore(my, 0);
    return 0;
}
