/* signum-util certstore: puts the certificates of Signum keys into the user's certificate
 * store (CurrentUser\My) tied to the Signum Key Storage Provider, so that signtool and any
 * CryptoAPI/CNG tool finds them (`signtool sign /sha1 <thumbprint>`); the private key stays
 * on the server, the KSP signs through the agent. Issuer certificates go to CurrentUser\CA. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wincrypt.h>

#include "../common/win_acl.h"
#include "platform.h"
#include "util.h"

#define KSP_NAME L"Signum Key Storage Provider" /* what windows-ksp registers */

typedef enum { ACT_NONE, ACT_ADD, ACT_REMOVE, ACT_LIST } action;

/* Reading: the user's system store (a collection of its physical stores). */
static HCERTSTORE open_store(const wchar_t *name)
{
    return CertOpenStore(CERT_STORE_PROV_SYSTEM_W, 0, 0, CERT_SYSTEM_STORE_CURRENT_USER, name);
}

/* Writing: the registry store behind it (HKCU\...\SystemCertificates\<name>), where a
 * user's certificates live. Under Wine 8, changes made through the collection are lost: a
 * deletion does not last, and after replacing an existing certificate the next one added in
 * the same session vanishes. Through the registry store both work. */
static HCERTSTORE open_registry_store(const wchar_t *name)
{
    return CertOpenStore(CERT_STORE_PROV_SYSTEM_REGISTRY_W, 0, 0, CERT_SYSTEM_STORE_CURRENT_USER,
                         name);
}

static void thumbprint(PCCERT_CONTEXT c, char out[41])
{
    BYTE hash[20];
    DWORD n = sizeof(hash);
    out[0] = '\0';
    if (CertGetCertificateContextProperty(c, CERT_SHA1_HASH_PROP_ID, hash, &n) && n == 20)
        for (int i = 0; i < 20; i++)
            snprintf(out + 2 * i, 3, "%02X", hash[i]);
}

/* The key name if the certificate's key provider is ours (into key, UTF-8); else 0. */
static int signum_key_of(PCCERT_CONTEXT c, char *key, size_t key_len)
{
    CRYPT_KEY_PROV_INFO *info;
    DWORD n = 0;
    int ours = 0;
    if (!CertGetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, NULL, &n) || !n ||
        !(info = malloc(n)))
        return 0;
    if (CertGetCertificateContextProperty(c, CERT_KEY_PROV_INFO_PROP_ID, info, &n) &&
        info->pwszProvName && !wcscmp(info->pwszProvName, KSP_NAME) && info->pwszContainerName &&
        ag_win_narrow(info->pwszContainerName, key, (int)key_len) == 0)
        ours = 1;
    free(info);
    return ours;
}

static int add_key(HCERTSTORE my, HCERTSTORE ca, const sg_key *k)
{
    wchar_t container[80];
    CRYPT_KEY_PROV_INFO info;
    PCCERT_CONTEXT c = NULL, added = NULL;
    char thumb[41];
    int rc = EXIT_FAILED;

    if (ag_win_widen(k->name, container, 80) != 0)
        return EXIT_FAILED;
    c = CertCreateCertificateContext(X509_ASN_ENCODING, k->cert, (DWORD)k->cert_len);
    if (!c || !CertAddCertificateContextToStore(my, c, CERT_STORE_ADD_REPLACE_EXISTING, &added)) {
        fprintf(stderr, "signum-util certstore: cannot add the certificate of %s (error %lu)\n",
                k->name, (unsigned long)GetLastError());
        goto out;
    }
    memset(&info, 0, sizeof(info));
    info.pwszContainerName = container;
    info.pwszProvName = (wchar_t *)KSP_NAME;
    info.dwProvType = 0; /* CNG */
    info.dwKeySpec = 0;
    if (!CertSetCertificateContextProperty(added, CERT_KEY_PROV_INFO_PROP_ID, 0, &info)) {
        fprintf(stderr, "signum-util certstore: cannot tie %s to the Signum KSP (error %lu)\n",
                k->name, (unsigned long)GetLastError());
        CertDeleteCertificateFromStore(CertDuplicateCertificateContext(added));
        goto out;
    }
    for (size_t i = 0; ca && i < k->chain_count; i++)
        CertAddEncodedCertificateToStore(ca, X509_ASN_ENCODING, k->chain[i], (DWORD)k->chain_len[i],
                                         CERT_STORE_ADD_USE_EXISTING, NULL);
    thumbprint(added, thumb);
    printf("%s: added to CurrentUser\\My, SHA-1 thumbprint %s\n", k->name, thumb);
    printf("  signtool sign /sha1 %s /fd sha256 file.exe\n", thumb);
    rc = EXIT_OK;
out:
    if (added)
        CertFreeCertificateContext(added);
    if (c)
        CertFreeCertificateContext(c);
    return rc;
}

static int cmd_add(const char *key)
{
    sg_key_list *list = NULL;
    HCERTSTORE my = NULL, ca = NULL;
    size_t added = 0, matched = 0;
    int rc = EXIT_OK;
    sg_client *c = util_client(1);
    sg_status st = sg_list_keys(c, &list);

    sg_client_free(c);
    if (st != SG_OK)
        return util_report("certstore", st);
    my = open_registry_store(L"My");
    ca = open_registry_store(L"CA");
    if (!my) {
        fprintf(stderr, "signum-util certstore: cannot open CurrentUser\\My (error %lu)\n",
                (unsigned long)GetLastError());
        rc = EXIT_FAILED;
        goto out;
    }
    for (size_t i = 0; i < list->count; i++) {
        const sg_key *k = &list->keys[i];
        if (key && strcmp(k->name, key))
            continue;
        matched++;
        if (!k->cert) {
            fprintf(stderr, "signum-util certstore: %s has no certificate yet; skipped\n", k->name);
            continue;
        }
        if (add_key(my, ca, k) != EXIT_OK)
            rc = EXIT_FAILED;
        else
            added++;
    }
    if (key && !matched) {
        fprintf(stderr, "signum-util certstore: you have no key named %s\n", key);
        fprintf(stderr, "  next: 'signum-util keys' lists the keys you may use\n");
        rc = EXIT_DENIED;
    } else if (key && !added && rc == EXIT_OK) {
        rc = EXIT_DENIED;
    } else if (!key && !added && rc == EXIT_OK) {
        printf("no key with a certificate among yours; nothing added\n");
    }
out:
    if (my)
        CertCloseStore(my, 0);
    if (ca)
        CertCloseStore(ca, 0);
    sg_key_list_free(list);
    return rc;
}

#define WALK_MAX 4096 /* certificates looked at in one store; more is not a user's store */
#define HIT_MAX  512  /* Signum certificates removed in one go */

/* Lists (remove = 0) or removes the certificates of CurrentUser\My that our KSP holds the key
 * of (all, or only those of key). Removal happens after the enumeration: deleting while
 * enumerating is not reliable (Wine restarts the walk). */
static int cmd_walk(const char *key, int remove)
{
    HCERTSTORE my = remove ? open_registry_store(L"My") : open_store(L"My");
    PCCERT_CONTEXT c = NULL, hits[HIT_MAX];
    size_t n = 0, seen = 0;
    int rc = EXIT_OK;

    if (!my) {
        fprintf(stderr, "signum-util certstore: cannot open CurrentUser\\My (error %lu)\n",
                (unsigned long)GetLastError());
        return EXIT_FAILED;
    }
    if (!remove)
        printf("%-40s %-32s %s\n", "THUMBPRINT", "KEY", "SUBJECT");
    while (seen++ < WALK_MAX && (c = CertEnumCertificatesInStore(my, c)) != NULL) {
        char name[80], thumb[41], subject[256] = "";
        wchar_t wsubject[256];
        if (!signum_key_of(c, name, sizeof(name)) || (key && strcmp(name, key)))
            continue;
        if (remove) {
            if (n < HIT_MAX)
                hits[n++] = CertDuplicateCertificateContext(c);
            continue;
        }
        n++;
        thumbprint(c, thumb);
        if (CertGetNameStringW(c, CERT_NAME_SIMPLE_DISPLAY_TYPE, 0, NULL, wsubject, 256) > 1)
            ag_win_narrow(wsubject, subject, sizeof(subject));
        printf("%-40s %-32s %s\n", thumb, name, subject);
    }
    if (c)
        CertFreeCertificateContext(c);
    for (size_t i = 0; remove && i < n; i++) {
        char name[80] = "", thumb[41];
        signum_key_of(hits[i], name, sizeof(name));
        thumbprint(hits[i], thumb);
        /* CertDeleteCertificateFromStore frees the context it is given. */
        if (CertDeleteCertificateFromStore(hits[i])) {
            printf("%s: removed certificate %s from CurrentUser\\My\n", name, thumb);
        } else {
            fprintf(stderr, "signum-util certstore: cannot remove %s (error %lu)\n", thumb,
                    (unsigned long)GetLastError());
            rc = EXIT_FAILED;
        }
    }
    if (remove && !n)
        printf("no Signum certificate%s%s in CurrentUser\\My; nothing removed\n", key ? " of " : "",
               key ? key : "");
    CertCloseStore(my, 0);
    return rc;
}

int util_cmd_certstore(int argc, char **argv)
{
    static const char usage[] =
        "Usage: signum-util certstore --add [KEY] | --remove [KEY] | --list [KEY]\n"
        "  --add     put the certificate of KEY (without KEY: of every key you may use) into\n"
        "            CurrentUser\\My, its private key held by the Signum Key Storage Provider;\n"
        "            prints the SHA-1 thumbprint and the signtool command that uses it\n"
        "  --remove  take those certificates out again (without KEY: every Signum one)\n"
        "  --list    show the Signum certificates in CurrentUser\\My\n";
    action act = ACT_NONE;
    const char *key = NULL;
    int bad = 0;

    for (int i = 1; i < argc; i++) {
        action a = !strcmp(argv[i], "--add")      ? ACT_ADD
                   : !strcmp(argv[i], "--remove") ? ACT_REMOVE
                   : !strcmp(argv[i], "--list")   ? ACT_LIST
                                                  : ACT_NONE;
        if (!strcmp(argv[i], "--help")) {
            fputs(usage, stdout);
            return EXIT_OK;
        }
        if (a != ACT_NONE && act == ACT_NONE)
            act = a;
        else if (a == ACT_NONE && argv[i][0] != '-' && !key)
            key = argv[i];
        else
            bad = 1; /* a second action, a second key, an unknown option */
    }
    if (act == ACT_NONE || bad) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    if (act == ACT_ADD)
        return cmd_add(key);
    return cmd_walk(key, act == ACT_REMOVE);
}
