/* Unit tests of the SQLite storage layer: migrations and each query family. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "store/db.h"
#include "test_util.h"

static char db_path[PATH_MAX + 32];

static int setup(void **state)
{
    srv_db *db;
    remove(db_path);
    if (srv_db_open(db_path, 1, &db, NULL) != SRV_OK)
        return -1;
    *state = db;
    return 0;
}

static int teardown(void **state)
{
    srv_db_close(*state);
    return 0;
}

static void test_migrations(void **state)
{
    srv_db *db = *state, *reader;
    srv_error err;
    assert_int_equal(srv_db_schema_version(db), SRV_DB_SCHEMA_VERSION);
    /* Opening again (writer) is a no-op; a reader sees the same version. */
    assert_int_equal(srv_db_open(db_path, 0, &reader, &err), SRV_OK);
    assert_int_equal(srv_db_schema_version(reader), SRV_DB_SCHEMA_VERSION);
    srv_db_close(reader);
    /* A database from a newer server is refused rather than misread. */
    assert_int_equal(srv_db_exec(db, "PRAGMA user_version = 99", NULL), SRV_OK);
    assert_int_equal(srv_db_open(db_path, 1, &reader, &err), SRV_E_DATABASE);
    assert_non_null(strstr(err.message, "newer"));
    assert_int_equal(srv_db_open(db_path, 0, &reader, &err), SRV_E_DATABASE);
    assert_int_equal(srv_db_exec(db, "PRAGMA user_version = 1", NULL), SRV_OK);
}

static void test_users_and_credentials(void **state)
{
    srv_db *db = *state;
    uint8_t hash[32], got[32];
    int64_t id = 0, uid = 0, exp = 0;
    srv_user u;
    srv_error err;

    assert_int_equal(srv_db_user_insert(db, "alice", SRV_ROLE_SIGNER, &id, &err), SRV_OK);
    assert_int_equal(srv_db_user_insert(db, "alice", SRV_ROLE_ADMIN, NULL, &err), SRV_E_EXISTS);
    assert_int_equal(srv_db_user_get(db, "alice", &u, &err), SRV_OK);
    assert_int_equal(u.id, id);
    assert_int_equal(u.role, SRV_ROLE_SIGNER);
    assert_int_equal(srv_db_user_get(db, "bob", &u, &err), SRV_E_USER_NOT_FOUND);
    assert_int_equal(srv_db_user_get_by_id(db, id, &u, &err), SRV_OK);
    assert_string_equal(u.name, "alice");

    memset(hash, 0xab, sizeof(hash));
    assert_int_equal(srv_db_apikey_insert(db, id, "0123456789ab", hash, &err), SRV_OK);
    assert_int_equal(srv_db_apikey_insert(db, id, "0123456789ab", hash, &err), SRV_E_EXISTS);
    assert_int_equal(srv_db_apikey_find(db, "0123456789ab", &uid, got, &err), SRV_OK);
    assert_int_equal(uid, id);
    assert_memory_equal(got, hash, 32);
    assert_int_equal(srv_db_apikey_find(db, "ffffffffffff", &uid, got, &err),
                     SRV_E_BAD_CREDENTIALS);

    memset(hash, 0xcd, sizeof(hash));
    assert_int_equal(srv_db_token_insert(db, hash, id, 12345, &err), SRV_OK);
    assert_int_equal(srv_db_token_find(db, hash, &uid, &exp, &err), SRV_OK);
    assert_int_equal(exp, 12345);
    hash[0] ^= 1;
    assert_int_equal(srv_db_token_find(db, hash, &uid, &exp, &err), SRV_E_TOKEN_INVALID);
}

static void count_key(const srv_key *key, void *ctx)
{
    (void)key;
    (*(int *)ctx)++;
}

static void test_keys_certs_grants(void **state)
{
    srv_db *db = *state;
    uint8_t spki[] = {0x30, 0x03, 0x02, 0x01, 0x00};
    int64_t uid = 0;
    srv_key k, got;
    srv_cert_record cert;
    srv_error err;
    int n = 0;

    assert_int_equal(srv_db_user_insert(db, "carol", SRV_ROLE_SIGNER, &uid, &err), SRV_OK);
    memset(&k, 0, sizeof(k));
    snprintf(k.name, sizeof(k.name), "release");
    memset(k.ckaid, 7, SRV_CKAID_LEN);
    k.type = SRV_KEY_EC_P256;
    k.spki = spki;
    k.spki_len = sizeof(spki);
    assert_int_equal(srv_db_key_insert(db, &k, &err), SRV_OK);
    assert_int_equal(srv_db_key_insert(db, &k, &err), SRV_E_EXISTS);
    assert_int_equal(srv_db_key_get(db, "release", &got, &err), SRV_OK);
    assert_int_equal(got.type, SRV_KEY_EC_P256);
    assert_memory_equal(got.ckaid, k.ckaid, SRV_CKAID_LEN);
    assert_int_equal(got.spki_len, sizeof(spki));
    srv_key_clear(&got);
    assert_int_equal(srv_db_key_get(db, "nope", &got, &err), SRV_E_KEY_NOT_FOUND);

    assert_int_equal(srv_db_cert_get(db, k.id, &cert, &err), SRV_E_NOT_FOUND);
    assert_int_equal(srv_db_cert_set(db, k.id, spki, sizeof(spki), "PEM", 99, &err), SRV_OK);
    assert_int_equal(srv_db_cert_set(db, k.id, spki, 2, "PEM2", 100, &err), SRV_OK);
    assert_int_equal(srv_db_cert_get(db, k.id, &cert, &err), SRV_OK);
    assert_int_equal(cert.der_len, 2);
    assert_string_equal(cert.chain_pem, "PEM2");
    assert_int_equal(cert.not_after, 100);
    srv_cert_record_clear(&cert);

    assert_false(srv_db_grant_exists(db, k.id, uid));
    assert_int_equal(srv_db_keys_list(db, uid, count_key, &n, &err), SRV_OK);
    assert_int_equal(n, 0);
    assert_int_equal(srv_db_grant_insert(db, k.id, uid, &err), SRV_OK);
    assert_int_equal(srv_db_grant_insert(db, k.id, uid, &err), SRV_E_EXISTS);
    assert_true(srv_db_grant_exists(db, k.id, uid));
    assert_int_equal(srv_db_keys_list(db, uid, count_key, &n, &err), SRV_OK);
    assert_int_equal(n, 1);
    /* Disabled keys drop out of a signer's list but stay in the admin's. */
    assert_int_equal(srv_db_key_disable(db, k.id, &err), SRV_OK);
    n = 0;
    assert_int_equal(srv_db_keys_list(db, uid, count_key, &n, &err), SRV_OK);
    assert_int_equal(n, 0);
    assert_int_equal(srv_db_keys_list(db, -1, count_key, &n, &err), SRV_OK);
    assert_int_equal(n, 1);
}

static void test_sign_requests_and_meta(void **state)
{
    srv_db *db = *state;
    uint8_t fp[32];
    srv_sign_request r;
    char value[32];
    srv_error err;

    memset(fp, 3, sizeof(fp));
    assert_int_equal(srv_db_signreq_get(db, 1, "r-1", &r, &err), SRV_E_NOT_FOUND);
    assert_int_equal(srv_db_signreq_insert(db, 1, "r-1", fp, "{\"x\":1}", &err), SRV_OK);
    assert_int_equal(srv_db_signreq_insert(db, 1, "r-1", fp, "{}", &err), SRV_E_EXISTS);
    assert_int_equal(srv_db_signreq_insert(db, 2, "r-1", fp, "{}", &err), SRV_OK);
    assert_int_equal(srv_db_signreq_get(db, 1, "r-1", &r, &err), SRV_OK);
    assert_string_equal(r.response, "{\"x\":1}");
    assert_memory_equal(r.fingerprint, fp, 32);
    srv_sign_request_clear(&r);

    assert_int_equal(srv_db_meta_get(db, "k", value, sizeof(value), &err), SRV_E_NOT_FOUND);
    assert_int_equal(srv_db_meta_set(db, "k", "v", &err), SRV_OK);
    assert_int_equal(srv_db_meta_get(db, "k", value, sizeof(value), &err), SRV_OK);
    assert_string_equal(value, "v");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_and_credentials, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys_certs_grants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_requests_and_meta, setup, teardown),
    };
    snprintf(db_path, sizeof(db_path), "%s/store.db", test_dir_make());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
