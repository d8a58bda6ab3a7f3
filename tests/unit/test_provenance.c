/* The provenance gate's pure parts (policy/provenance.h): the request's provenance member
 * (SLSA v1 with and without the GitHub workflow layout, v0.2), DSSE signatures of every key
 * type a rule may trust (ECDSA DER and raw r||s, Ed25519, RSA PKCS#1 v1.5 and PSS; standard
 * and URL-safe base64), and the gate over a set of rules: a require rule overrides a grant,
 * never allows by itself, and is not seen by the key listing. Keys are made here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "common/b64.h"
#include "policy/provenance.h"

#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define STMT_V1_DEPS                                                                               \
    "{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"a\",\"digest\":{"     \
    "\"sha256\":\"" SHA_A "\"}}],\"predicateType\":\"https://slsa.dev/provenance/v1\","            \
    "\"predicate\":{\"buildDefinition\":{\"resolvedDependencies\":[{\"uri\":\"https://x\"},"       \
    "{\"uri\":\"git+https://git.example/org/app@refs/tags/v1\"}]},\"runDetails\":{\"builder\":"    \
    "{\"id\":\"https://b.example\"}}}}"
#define STMT_V02                                                                                   \
    "{\"_type\":\"https://in-toto.io/Statement/v0.1\",\"subject\":[{\"name\":\"a\",\"digest\":{"   \
    "\"sha256\":\"" SHA_A "\"}}],\"predicateType\":\"https://slsa.dev/provenance/v0.2\","          \
    "\"predicate\":{\"builder\":{\"id\":\"https://b.example\"},\"invocation\":{\"configSource\":"  \
    "{\"uri\":\"git+https://git.example/org/app@refs/heads/main\",\"entryPoint\":\"ci.yml\"}}}}"

static uint8_t *pae(const char *stmt, size_t *len)
{
    char head[96];
    int n =
        snprintf(head, sizeof(head), "DSSEv1 28 application/vnd.in-toto+json %zu ", strlen(stmt));
    uint8_t *out = malloc((size_t)n + strlen(stmt));
    memcpy(out, head, (size_t)n);
    memcpy(out + n, stmt, strlen(stmt));
    *len = (size_t)n + strlen(stmt);
    return out;
}

static void url_safe(char *s, int strip_padding)
{
    for (char *c = s; *c; c++)
        *c = *c == '+' ? '-' : *c == '/' ? '_' : *c;
    if (strip_padding)
        while (*s && s[strlen(s) - 1] == '=')
            s[strlen(s) - 1] = '\0';
}

/* The request's provenance member for stmt, signed by key (NULL: unsigned). */
static cJSON *request(const char *stmt, EVP_PKEY *key, int pss, int raw_ecdsa, int urlsafe)
{
    char *payload = srv_b64_encode((const uint8_t *)stmt, strlen(stmt)), *env_text, *env_b64;
    cJSON *env = cJSON_CreateObject(), *sigs, *req = cJSON_CreateObject();
    cJSON_AddStringToObject(env, "payloadType", "application/vnd.in-toto+json");
    cJSON_AddStringToObject(env, "payload", payload);
    sigs = cJSON_AddArrayToObject(env, "signatures");
    if (key) {
        size_t len, sig_len = 0;
        uint8_t *msg = pae(stmt, &len), sig[1024];
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;
        int ed = EVP_PKEY_get_base_id(key) == EVP_PKEY_ED25519;
        char *b64;
        cJSON *one = cJSON_CreateObject();
        assert_int_equal(EVP_DigestSignInit(ctx, &pctx, ed ? NULL : EVP_sha256(), NULL, key), 1);
        if (pss)
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        sig_len = sizeof(sig);
        assert_int_equal(EVP_DigestSign(ctx, sig, &sig_len, msg, len), 1);
        if (raw_ecdsa) {
            const uint8_t *p = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
            BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32);
            BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32);
            sig_len = 64;
            ECDSA_SIG_free(es);
        }
        b64 = srv_b64_encode(sig, sig_len);
        if (urlsafe)
            url_safe(b64, 1);
        cJSON_AddStringToObject(one, "keyid", "k");
        cJSON_AddStringToObject(one, "sig", b64);
        cJSON_AddItemToArray(sigs, one);
        free(b64);
        free(msg);
        EVP_MD_CTX_free(ctx);
    }
    env_text = cJSON_PrintUnformatted(env);
    env_b64 = srv_b64_encode((const uint8_t *)env_text, strlen(env_text));
    cJSON_AddStringToObject(req, "envelope", env_b64);
    cJSON_AddStringToObject(req, "artifact_sha256", SHA_A);
    free(payload);
    free(env_text);
    free(env_b64);
    cJSON_Delete(env);
    return req;
}

static EVP_PKEY *keygen(const char *alg, const char *opt)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, NULL);
    EVP_PKEY *key = NULL;
    assert_non_null(ctx);
    assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
    if (opt && !strcmp(alg, "EC"))
        EVP_PKEY_CTX_set_group_name(ctx, opt);
    if (opt && !strcmp(alg, "RSA"))
        EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048);
    assert_int_equal(EVP_PKEY_generate(ctx, &key), 1);
    EVP_PKEY_CTX_free(ctx);
    return key;
}

static void test_parse_layouts(void **state)
{
    srv_provenance p;
    srv_error err;
    cJSON *req = request(STMT_V1_DEPS, NULL, 0, 0, 0);
    (void)state;
    /* v1 without the workflow member: repository and ref from the git+ dependency. */
    assert_int_equal(srv_prov_parse(req, &p, &err), SRV_OK);
    assert_string_equal(p.builder_id, "https://b.example");
    assert_string_equal(p.repository, "https://git.example/org/app");
    assert_string_equal(p.ref, "refs/tags/v1");
    assert_null(p.workflow);
    assert_int_equal(p.slsa_v1, 1);
    srv_prov_clear(&p);
    cJSON_Delete(req);
    req = request(STMT_V02, NULL, 0, 0, 0);
    assert_int_equal(srv_prov_parse(req, &p, &err), SRV_OK);
    assert_string_equal(p.repository, "https://git.example/org/app");
    assert_string_equal(p.ref, "refs/heads/main");
    assert_string_equal(p.workflow, "ci.yml");
    assert_int_equal(p.slsa_v1, 0);
    srv_prov_clear(&p);
    cJSON_Delete(req);
    /* Reference only: recorded, nothing to parse. */
    req = cJSON_Parse("{\"digest\":\"sha256:" SHA_A "\",\"uri\":\"https://x.example/a\","
                      "\"artifact_sha256\":\"" SHA_A "\"}");
    assert_int_equal(srv_prov_parse(req, &p, &err), SRV_OK);
    assert_string_equal(p.ref_digest, SHA_A);
    assert_null(p.env);
    srv_prov_clear(&p);
    cJSON_Delete(req);
    /* A user in the URI is not a ref. */
    {
        char stmt[sizeof(STMT_V02) + 16];
        const char *from = "https://git.example/org/app@refs/heads/main";
        char *at;
        snprintf(stmt, sizeof(stmt), "%s", STMT_V02);
        at = strstr(stmt, from);
        memcpy(at, "ssh://git@git.example/org/app", strlen("ssh://git@git.example/org/app"));
        memmove(at + strlen("ssh://git@git.example/org/app"), at + strlen(from),
                strlen(at + strlen(from)) + 1);
        req = request(stmt, NULL, 0, 0, 0);
        assert_int_equal(srv_prov_parse(req, &p, &err), SRV_OK);
        assert_string_equal(p.repository, "ssh://git@git.example/org/app");
        assert_null(p.ref);
        srv_prov_clear(&p);
        cJSON_Delete(req);
    }
    req = cJSON_Parse("{\"digest\":\"sha256:" SHA_A "\"}");
    assert_int_equal(srv_prov_parse(req, &p, &err), SRV_E_PROVENANCE_INVALID);
    assert_string_equal(err.message,
                        "provenance: digest and uri go together (a reference to the envelope)");
    srv_prov_clear(&p);
    cJSON_Delete(req);
}

static void check_verifies(EVP_PKEY *key, EVP_PKEY *other, int pss, int raw, int urlsafe)
{
    srv_provenance p;
    srv_error err;
    size_t which = 9;
    EVP_PKEY *keys[2] = {other, key};
    cJSON *req = request(STMT_V02, key, pss, raw, urlsafe);
    assert_int_equal(srv_prov_parse(req, &p, &err), SRV_OK);
    assert_true(srv_prov_dsse_verified(&p, keys, 2, &which));
    assert_int_equal(which, 1);
    assert_false(srv_prov_dsse_verified(&p, keys, 1, &which));
    /* The signature covers the payload: another statement under it does not verify. */
    free(p.payload);
    p.payload = (uint8_t *)strdup(STMT_V1_DEPS);
    p.payload_len = strlen(STMT_V1_DEPS);
    assert_false(srv_prov_dsse_verified(&p, keys, 2, &which));
    srv_prov_clear(&p);
    cJSON_Delete(req);
}

static void test_dsse_key_types(void **state)
{
    EVP_PKEY *ec = keygen("EC", "P-256"), *ed = keygen("ED25519", NULL),
             *rsa = keygen("RSA", "2048");
    (void)state;
    check_verifies(ec, ed, 0, 0, 0);
    check_verifies(ec, rsa, 0, 1, 1); /* raw r||s, URL-safe unpadded */
    check_verifies(ed, ec, 0, 0, 1);
    check_verifies(rsa, ec, 0, 0, 0);
    check_verifies(rsa, ed, 1, 0, 0); /* PSS */
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(rsa);
}

static char *pub_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;
    PEM_write_bio_PUBKEY(bio, key);
    n = BIO_get_mem_data(bio, &data);
    out = strndup(data, (size_t)n);
    BIO_free(bio);
    return out;
}

static void test_gate_over_rules(void **state)
{
    EVP_PKEY *ec = keygen("EC", "P-256");
    char *pem = pub_pem(ec), text[2048];
    cJSON *doc, *gates = NULL, *req;
    policy_set set;
    policy_rule rule;
    policy_request q;
    policy_decision d;
    srv_provenance p;
    srv_error err;
    const char *why = NULL;
    (void)state;
    memset(&set, 0, sizeof(set));
    doc = cJSON_Parse("{\"name\":\"gate\",\"effect\":\"require\",\"subjects\":{\"users\":[\"*\"]},"
                      "\"keys\":{\"names\":[\"k1\"]},\"provenance\":{\"builder_id\":\"https://"
                      "b.example\",\"repository\":\"https://git.example/*\",\"trusted_keys\":[]}}");
    cJSON_AddItemToArray(
        cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "provenance"), "trusted_keys"),
        cJSON_CreateString(pem));
    assert_int_equal(policy_rule_parse(doc, &rule, &err), SRV_OK);
    assert_int_equal(policy_set_add(&set, &rule, &err), SRV_OK);
    cJSON_Delete(doc);

    memset(&q, 0, sizeof(q));
    q.subject = "alice";
    q.key = "k1";
    q.hash = "sha256";
    q.mechanism = "ecdsa";
    /* Alone, a require rule allows nothing; the listing does not see it either. */
    policy_evaluate(&set, &q, &d);
    assert_int_equal(d.outcome, POLICY_DENIED_DEFAULT);
    assert_false(policy_may_ever_allow(&set, &q, &why));
    /* A grant allows; the gate then asks for provenance. */
    q.granted = POLICY_GRANT_DIRECT;
    assert_true(policy_may_ever_allow(&set, &q, &why));
    policy_evaluate(&set, &q, &d);
    assert_int_equal(d.outcome, POLICY_ALLOWED);
    policy_prov_gate(&set, &q, &d, &gates);
    assert_int_equal(d.outcome, POLICY_PROVENANCE_DENIED);
    assert_string_equal(d.message,
                        "provenance required by rule \"gate\" for key \"k1\": none sent");
    assert_string_equal(policy_decision_rule(&d), "gate");
    assert_null(gates);
    /* Signed by the trusted key, the right builder and a repository matching the glob. */
    req = request(STMT_V02, ec, 0, 0, 0);
    assert_int_equal(srv_prov_parse(req, &p, &err), SRV_OK);
    q.provenance = &p;
    policy_evaluate(&set, &q, &d);
    policy_prov_gate(&set, &q, &d, &gates);
    assert_int_equal(d.outcome, POLICY_ALLOWED);
    assert_non_null(gates);
    {
        char *t = cJSON_PrintUnformatted(cJSON_GetArrayItem(gates, 0));
        snprintf(text, sizeof(text), "%s", t);
        free(t);
    }
    assert_non_null(strstr(text, "\"rule\":\"gate\",\"via\":\"builder_key\",\"key\":\"sha256:"));
    cJSON_Delete(gates);
    gates = NULL;
    /* Another key of the rule's scope only: k2 is not gated. */
    q.key = "k2";
    q.provenance = NULL;
    policy_evaluate(&set, &q, &d);
    policy_prov_gate(&set, &q, &d, &gates);
    assert_int_equal(d.outcome, POLICY_ALLOWED);
    srv_prov_clear(&p);
    cJSON_Delete(req);
    policy_set_clear(&set);
    free(pem);
    EVP_PKEY_free(ec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_layouts),
        cmocka_unit_test(test_dsse_key_types),
        cmocka_unit_test(test_gate_over_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
