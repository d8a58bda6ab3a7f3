/* signum-server.conf through the common parser (server/src/config.c): the accepted syntax
 * and the errors, with the line numbers of the file as it is. */
#include "test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

static void write_conf(const char *dir, const char *text, size_t len)
{
    char path[PATH_MAX + 32];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, SRV_CONFIG_FILE);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static srv_status load(const char *text, srv_config *cfg, srv_error *err)
{
    const char *dir = test_dir;
    write_conf(dir, text, strlen(text));
    memset(err, 0, sizeof(*err));
    return srv_config_load(dir, cfg, err);
}

static void test_syntax(void **state)
{
    srv_config cfg;
    srv_error err;
    (void)state;
    assert_int_equal(load("# a comment\n\n   \nport = 9443\r\n  workers=3  \n\t# indented\n"
                          "listen =   ::1   \nhsm_token = a=b\naudit_sync = normal",
                          &cfg, &err),
                     SRV_OK);
    assert_int_equal(cfg.port, 9443);
    assert_int_equal(cfg.workers, 3);
    assert_string_equal(cfg.listen, "::1");
    assert_string_equal(cfg.hsm_token, "a=b");
    assert_int_equal(cfg.audit_sync_full, 0);
    assert_int_equal(load("", &cfg, &err), SRV_OK);
    assert_int_equal(cfg.port, 8443);
}

/* The line number is the file's: blank lines count (strtok() skipped them before, so the
 * error below said "line 2"). */
static void test_line_numbers(void **state)
{
    srv_config cfg;
    srv_error err;
    char want[PATH_MAX + 64];
    (void)state;
    assert_int_equal(load("port = 1\n\n\nthis is not a setting\n", &cfg, &err), SRV_E_CONFIG);
    snprintf(want, sizeof(want), "%s/%s line 4: expected key = value", test_dir, SRV_CONFIG_FILE);
    assert_string_equal(err.message, want);
    assert_int_equal(load("\n# c\n\nport = 70000\n", &cfg, &err), SRV_E_CONFIG);
    assert_string_equal(err.message,
                        "signum-server.conf line 4: port must be an integer in [0, 65535]");
    assert_int_equal(load("workers = 2\n\nnope = 1\n", &cfg, &err), SRV_E_CONFIG);
    assert_string_equal(err.message, "signum-server.conf line 3: unknown setting \"nope\"");
    assert_int_equal(load("= 1\n", &cfg, &err), SRV_E_CONFIG);
    assert_string_equal(err.message, "signum-server.conf line 1: unknown setting \"\"");
}

static void test_caps(void **state)
{
    srv_config cfg;
    srv_error err;
    char want[PATH_MAX + 64];
    size_t n = 9000;
    char *text = malloc(n + 1);
    (void)state;
    assert_non_null(text);
    memcpy(text, "hsm_token = ", 12);
    memset(text + 12, 'a', n - 12);
    text[n] = '\0';
    assert_int_equal(load(text, &cfg, &err), SRV_E_CONFIG);
    snprintf(want, sizeof(want), "%s/%s line 1: longer than 8192 characters", test_dir,
             SRV_CONFIG_FILE);
    assert_string_equal(err.message, want);
    free(text);
    /* A file over 64 KiB is not read at all (as before). */
    text = malloc(64 * 1024 + 2);
    assert_non_null(text);
    memset(text, '\n', 64 * 1024 + 1);
    text[64 * 1024 + 1] = '\0';
    assert_int_equal(load(text, &cfg, &err), SRV_E_CONFIG);
    assert_non_null(strstr(err.message, "is not a Signum state directory"));
    text[64 * 1024] = '\0';
    assert_int_equal(load(text, &cfg, &err), SRV_OK);
    free(text);
    /* A NUL byte is refused with its line. */
    write_conf(test_dir, "port = 1\nworkers = 2\0\n", 22);
    assert_int_equal(srv_config_load(test_dir, &cfg, &err), SRV_E_CONFIG);
    assert_non_null(strstr(err.message, "line 2: holds a NUL byte"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_line_numbers),
        cmocka_unit_test(test_caps),
    };
    test_dir_make();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
