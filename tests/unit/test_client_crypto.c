/* Unit tests of the client library's local crypto (mbedTLS): digests in one and many parts,
 * DigestInfo, public key and certificate parsing, ECDSA encodings. Keys are made at test
 * time with the openssl command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "signum/crypto.h"

static void test_digests(void **state)
{
    /* FIPS 180-2 "abc" vectors. */
    static const uint8_t abc256[] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
                                     0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
                                     0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
                                     0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    static const uint8_t abc384_head[] = {0xcb, 0x00, 0x75, 0x3f, 0x45, 0xa3, 0x5e, 0x8b};
    static const uint8_t abc512_head[] = {0xdd, 0xaf, 0x35, 0xa1, 0x93, 0x61, 0x7a, 0xba};
    uint8_t out[64], multi[64];
    size_t len = sizeof(out), mlen = sizeof(multi);
    sg_digest_ctx ctx;
    (void)state;

    assert_int_equal(sg_digest(SG_HASH_SHA256, "abc", 3, out, &len), SG_OK);
    assert_int_equal(len, 32);
    assert_memory_equal(out, abc256, 32);
    len = sizeof(out);
    assert_int_equal(sg_digest(SG_HASH_SHA384, "abc", 3, out, &len), SG_OK);
    assert_int_equal(len, 48);
    assert_memory_equal(out, abc384_head, 8);
    len = sizeof(out);
    assert_int_equal(sg_digest(SG_HASH_SHA512, "abc", 3, out, &len), SG_OK);
    assert_memory_equal(out, abc512_head, 8);
    /* Multi-part equals single-part. */
    assert_int_equal(sg_digest_init(&ctx, SG_HASH_SHA512), SG_OK);
    assert_int_equal(sg_digest_update(&ctx, "a", 1), SG_OK);
    assert_int_equal(sg_digest_update(&ctx, "bc", 2), SG_OK);
    assert_int_equal(sg_digest_final(&ctx, multi, &mlen), SG_OK);
    assert_memory_equal(multi, out, 64);
    /* A size query changes nothing; a small buffer is refused. */
    len = 0;
    assert_int_equal(sg_digest_init(&ctx, SG_HASH_SHA256), SG_OK);
    assert_int_equal(sg_digest_final(&ctx, NULL, &len), SG_OK);
    assert_int_equal(len, 32);
    len = 16;
    assert_int_equal(sg_digest_final(&ctx, out, &len), SG_ERR_BUFFER_TOO_SMALL);
    len = 32;
    assert_int_equal(sg_digest_final(&ctx, out, &len), SG_OK);
}

static void test_digestinfo(void **state)
{
    uint8_t digest[48], di[SG_MAX_DIGESTINFO];
    size_t len = sizeof(di), dlen;
    const uint8_t *d;
    sg_hash h;
    (void)state;
    memset(digest, 7, sizeof(digest));
    assert_int_equal(sg_digestinfo_build(SG_HASH_SHA384, digest, 48, di, &len), SG_OK);
    assert_int_equal(len, 19 + 48);
    assert_int_equal(sg_digestinfo_parse(di, len, &h, &d, &dlen), SG_OK);
    assert_int_equal(h, SG_HASH_SHA384);
    assert_int_equal(dlen, 48);
    assert_memory_equal(d, digest, 48);
    assert_int_equal(sg_digestinfo_build(SG_HASH_SHA256, digest, 48, di, &len), SG_ERR_BAD_INPUT);
    di[5] ^= 1; /* a different OID */
    assert_int_equal(sg_digestinfo_parse(di, 19 + 48, &h, &d, &dlen), SG_ERR_BAD_INPUT);
    assert_int_equal(sg_digestinfo_parse(digest, 32, &h, &d, &dlen), SG_ERR_BAD_INPUT);
}

/* Runs openssl to make a key and certificate; returns the DER of `what` (a file). */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(65536);
    assert_non_null(f);
    *len = fread(buf, 1, 65536, f);
    fclose(f);
    return buf;
}

static char dir[200] = "/tmp/signum-crypto-XXXXXX";
/* SIGNUM_TEST_MATERIAL names a directory where the same files were made beforehand: the
 * Windows build of this test runs under Wine, where there is no openssl command. */
static int premade;

static void make_material(const char *alg, const char *name)
{
    char cmd[1024];
    if (premade)
        return;
    snprintf(cmd, sizeof(cmd),
             "cd %s && openssl req -x509 -newkey %s -nodes -keyout %s.key -subj /CN=%s"
             " -days 1 -outform DER -out %s.crt 2>/dev/null && openssl pkey -in %s.key -pubout"
             " -outform DER -out %s.pub 2>/dev/null",
             dir, alg, name, name, name, name, name);
    assert_int_equal(system(cmd), 0);
}

static void test_pubkeys(void **state)
{
    char path[256];
    uint8_t *spki;
    size_t len;
    sg_pubkey_info info;
    (void)state;

    make_material("rsa:2048", "r");
    snprintf(path, sizeof(path), "%s/r.pub", dir);
    spki = read_file(path, &len);
    assert_int_equal(sg_pubkey_parse(spki, len, &info), SG_OK);
    assert_true(info.is_rsa);
    assert_int_equal(info.bits, 2048);
    assert_int_equal(info.modulus_len, 256);
    assert_true(info.modulus[0] & 0x80);
    assert_int_equal(info.exponent_len, 3);
    assert_memory_equal(info.exponent, "\x01\x00\x01", 3);
    spki[len / 2] ^= 0xff;
    assert_int_not_equal(sg_pubkey_parse(spki, len - 3, &info), SG_OK);
    free(spki);

    make_material("ec -pkeyopt ec_paramgen_curve:P-384", "e");
    snprintf(path, sizeof(path), "%s/e.pub", dir);
    spki = read_file(path, &len);
    assert_int_equal(sg_pubkey_parse(spki, len, &info), SG_OK);
    assert_false(info.is_rsa);
    assert_int_equal(info.bits, 384);
    assert_memory_equal(info.ec_params, "\x06\x05\x2b\x81\x04\x00\x22", 7);
    assert_int_equal(info.ec_point_len, 2 + 97);
    assert_int_equal(info.ec_point[0], 0x04); /* OCTET STRING */
    assert_int_equal(info.ec_point[1], 97);
    assert_int_equal(info.ec_point[2], 0x04); /* uncompressed point */
    /* The point is the SPKI's BIT STRING content: its last 97 bytes. */
    assert_memory_equal(info.ec_point + 2, spki + len - 97, 97);
    free(spki);
}

static void test_certificates(void **state)
{
    char path[256];
    uint8_t *der;
    size_t len;
    sg_cert_info ci;
    (void)state;
    make_material("ec -pkeyopt ec_paramgen_curve:P-256", "c");
    snprintf(path, sizeof(path), "%s/c.crt", dir);
    der = read_file(path, &len);
    assert_int_equal(sg_cert_parse(der, len, &ci), SG_OK);
    /* Self-signed: subject == issuer, both DER Names holding "CN=c". */
    assert_int_equal(ci.subject_len, ci.issuer_len);
    assert_memory_equal(ci.subject, ci.issuer, ci.subject_len);
    assert_int_equal(ci.subject[0], 0x30);
    assert_non_null(memchr(ci.subject, 'c', ci.subject_len));
    assert_int_equal(ci.serial[0], 0x02);
    assert_int_equal(ci.serial_len, (size_t)ci.serial[1] + 2);
    assert_true(ci.subject >= der && ci.subject + ci.subject_len <= der + len);
    assert_int_equal(sg_cert_parse(der, len - 1, &ci), SG_ERR_BAD_INPUT);
    free(der);
}

static void test_ecdsa_encodings(void **state)
{
    uint8_t raw[64], der[80], back[64];
    size_t der_len = sizeof(der), back_len = sizeof(back);
    (void)state;
    memset(raw, 0, sizeof(raw));
    raw[0] = 0x80; /* high bit: needs a leading zero in DER */
    raw[31] = 1;
    raw[63] = 5; /* s is small: leading zeros dropped */
    assert_int_equal(sg_ecdsa_raw_to_der(raw, 64, der, &der_len), SG_OK);
    assert_int_equal(der[0], 0x30);
    assert_int_equal(der[2], 0x02);
    assert_int_equal(der[3], 33);
    assert_int_equal(der[4], 0x00);
    assert_int_equal(sg_ecdsa_der_to_raw(der, der_len, 32, back, &back_len), SG_OK);
    assert_int_equal(back_len, 64);
    assert_memory_equal(back, raw, 64);
    assert_int_equal(sg_ecdsa_der_to_raw(der, der_len - 1, 32, back, &back_len), SG_ERR_BAD_INPUT);
    assert_int_equal(sg_ecdsa_raw_to_der(raw, 63, der, &der_len), SG_ERR_BAD_INPUT);
}

static int setup(void **state)
{
    const char *material = getenv("SIGNUM_TEST_MATERIAL");
    (void)state;
    if (material && *material) {
        snprintf(dir, sizeof(dir), "%s", material);
        premade = 1;
        return 0;
    }
#ifdef _WIN32
    return -1;
#else
    return mkdtemp(dir) ? 0 : -1;
#endif
}

static int teardown(void **state)
{
    char cmd[256];
    (void)state;
    if (premade)
        return 0;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_digests),         cmocka_unit_test(test_digestinfo),
        cmocka_unit_test(test_pubkeys),         cmocka_unit_test(test_certificates),
        cmocka_unit_test(test_ecdsa_encodings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
