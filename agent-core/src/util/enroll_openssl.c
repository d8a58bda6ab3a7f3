/* enroll's platform part on Linux: OpenSSL key pairs and CSRs, files with mode 0600 under
 * $XDG_CONFIG_HOME/signum. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "signum/common/b64.h"
#include "signum/common/buf.h"
#include "enroll_backend.h"

struct enroll_key {
    EVP_PKEY *pkey;
};

enroll_key *enroll_key_new(void)
{
    enroll_key *k = calloc(1, sizeof(*k));
    if (k && !(k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"))) {
        free(k);
        k = NULL;
    }
    return k;
}

void enroll_key_free(enroll_key *k)
{
    if (k) {
        EVP_PKEY_free(k->pkey);
        free(k);
    }
}

char *enroll_key_spki_b64(enroll_key *k)
{
    unsigned char *spki = NULL;
    char *out = NULL;
    int len = i2d_PUBKEY(k->pkey, &spki);
    if (len > 0)
        out = sgc_b64_encode(spki, (size_t)len);
    OPENSSL_free(spki);
    return out;
}

char *enroll_key_pem(enroll_key *k)
{
    BIO *bio = BIO_new(BIO_s_mem());
    BUF_MEM *mem = NULL;
    char *out = NULL;
    if (bio && PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL)) {
        BIO_get_mem_ptr(bio, &mem);
        out = strndup(mem->data, mem->length);
        OPENSSL_cleanse(mem->data, mem->length);
    }
    BIO_free(bio);
    return out;
}

char *enroll_key_csr(enroll_key *k, const char *cn)
{
    X509_REQ *req = X509_REQ_new();
    BIO *bio = BIO_new(BIO_s_mem());
    BUF_MEM *mem = NULL;
    char *out = NULL;
    if (req && bio && X509_REQ_set_pubkey(req, k->pkey) &&
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0) &&
        X509_REQ_sign(req, k->pkey, EVP_sha256()) && PEM_write_bio_X509_REQ(bio, req)) {
        BIO_get_mem_ptr(bio, &mem);
        out = strndup(mem->data, mem->length);
    }
    BIO_free(bio);
    X509_REQ_free(req);
    return out;
}

enroll_key *enroll_machine_key_new(void)
{
    return enroll_key_new();
}

int enroll_machine_key_store(enroll_key *k, const char *dir, const char *label, char *ref,
                             size_t ref_len)
{
    char *pem = enroll_key_pem(k);
    int rc;
    (void)label;
    if (!pem)
        return -1;
    snprintf(ref, ref_len, "%s/machine.key", dir);
    rc = enroll_write_file(ref, pem, 1);
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
    return rc;
}

void enroll_machine_key_forget(const char *old_ref)
{
    (void)old_ref; /* the new key replaced the file of the same name */
}

int enroll_write_file(const char *path, const char *text, int private_)
{
    char tmp[AG_PATH_MAX + 16];
    size_t len = strlen(text);
    mode_t mode = private_ ? 0600 : 0644;
    int fd;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len || fchmod(fd, mode) != 0 || fsync(fd) != 0 ||
        close(fd) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "signum-util enroll: cannot write %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* mkdir -p with mode 0700 for each missing component. */
void enroll_make_private_dir(const char *path)
{
    char buf[AG_PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(buf, 0700);
        *p = '/';
    }
    mkdir(buf, 0700);
}

int enroll_default_dir(char *out, size_t len)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    snprintf(out, len, xdg ? "%s/signum" : "%s/.config/signum", xdg ? xdg : home ? home : ".");
    enroll_make_private_dir(out);
    return 0;
}

int enroll_config_path(char *out, size_t len)
{
    char dir[AG_PATH_MAX];
    if (getenv("SIGNUM_CONFIG")) {
        snprintf(out, len, "%s", getenv("SIGNUM_CONFIG"));
        return 0;
    }
    if (!getenv("XDG_CONFIG_HOME") && !getenv("HOME"))
        return -1;
    enroll_default_dir(dir, sizeof(dir));
    snprintf(out, len, "%s/agent.conf", dir);
    return 0;
}

void enroll_hostname(char *out, size_t len)
{
    if (gethostname(out, len - 1) != 0)
        snprintf(out, len, "machine");
    out[len - 1] = '\0';
}

void enroll_wipe(void *p, size_t len)
{
    OPENSSL_cleanse(p, len);
}
