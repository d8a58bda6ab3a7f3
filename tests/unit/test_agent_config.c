/* agent.conf through the common parser (agent-core/src/agent/config.c): the accepted syntax,
 * the errors with their line numbers, and the line cap fgets() used to hide. */
#include "test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "agent/agent.h"

static char conf_path[PATH_MAX + 32];

static sg_status load(const char *text, ag_config *cfg, ag_error *err)
{
    FILE *f = fopen(conf_path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(conf_path, 0600), 0);
    memset(err, 0, sizeof(*err));
    return ag_config_load(cfg, err);
}

static void test_syntax(void **state)
{
    ag_config cfg;
    ag_error err;
    (void)state;
    assert_int_equal(load("# comment\n\nserver = https://a.example/, https://b.example\r\n"
                          "  retries=5  \n\t# indented\naudience = a=b\nidle_timeout = 0",
                          &cfg, &err),
                     SG_OK);
    assert_int_equal(cfg.server_count, 2);
    assert_string_equal(cfg.servers[0], "https://a.example");
    assert_int_equal(cfg.retries, 5);
    assert_string_equal(cfg.audience, "a=b");
    assert_int_equal(cfg.idle_timeout, 0);
    assert_non_null(strstr(cfg.sources, conf_path));
}

static void test_errors(void **state)
{
    ag_config cfg;
    ag_error err;
    char want[PATH_MAX + 160];
    (void)state;
    assert_int_equal(load("retries = 1\n\n# c\nno equals here\n", &cfg, &err), SG_ERR_BAD_INPUT);
    snprintf(want, sizeof(want), "%s line 4: expected key = value", conf_path);
    assert_string_equal(err.message, want);
    assert_int_equal(load("\nretries = 11\n", &cfg, &err), SG_ERR_BAD_INPUT);
    snprintf(want, sizeof(want), "%s line 2: retries must be an integer in [0, 10]", conf_path);
    assert_string_equal(err.message, want);
    assert_int_equal(load("bogus = 1\n", &cfg, &err), SG_ERR_BAD_INPUT);
    snprintf(want, sizeof(want), "%s line 1: unknown setting \"bogus\"", conf_path);
    assert_string_equal(err.message, want);
}

static void test_api_key_needs_private_file(void **state)
{
    ag_config cfg;
    ag_error err;
    (void)state;
    assert_int_equal(load("api_key = sk_x\n", &cfg, &err), SG_OK);
    assert_string_equal(cfg.api_key, "sk_x");
    assert_int_equal(chmod(conf_path, 0644), 0);
    memset(&err, 0, sizeof(err));
    assert_int_equal(ag_config_load(&cfg, &err), SG_ERR_BAD_INPUT);
    assert_non_null(strstr(err.message, "holds an api_key but others can read it (mode 644)"));
}

/* fgets() into 2048 bytes cut a longer line in two and read the rest as a line of its own: a
 * comment of 2047 characters went on as a setting. The line is refused now. */
static void test_long_line_is_not_two(void **state)
{
    ag_config cfg;
    ag_error err;
    char text[4096], want[PATH_MAX + 160];
    (void)state;
    memset(text, 'c', 2047);
    text[0] = '#';
    snprintf(text + 2047, sizeof(text) - 2047, "audience = injected\n");
    assert_int_equal(load(text, &cfg, &err), SG_ERR_BAD_INPUT);
    snprintf(want, sizeof(want), "%s line 1: longer than 2047 characters", conf_path);
    assert_string_equal(err.message, want);
    /* 2047 characters are still a line. */
    memset(text, 'c', 2047);
    text[0] = '#';
    snprintf(text + 2047, sizeof(text) - 2047, "\naudience = ok\n");
    assert_int_equal(load(text, &cfg, &err), SG_OK);
    assert_string_equal(cfg.audience, "ok");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_api_key_needs_private_file),
        cmocka_unit_test(test_long_line_is_not_two),
    };
    const char *dir = test_dir_make();
    char home[PATH_MAX + 32];
    /* Only our file: no user or cache directory of the machine, no SIGNUM_* from outside. */
    snprintf(home, sizeof(home), "%s/home", dir);
    snprintf(conf_path, sizeof(conf_path), "%s/agent.conf", dir);
    setenv("HOME", home, 1);
    setenv("XDG_CONFIG_HOME", home, 1);
    setenv("XDG_CACHE_HOME", home, 1);
    setenv("SIGNUM_CONFIG", conf_path, 1);
    for (const char *const *v =
             (const char *const[]){"SIGNUM_SERVER", "SIGNUM_CA_FILE", "SIGNUM_API_KEY",
                                   "SIGNUM_AUTH", "SIGNUM_AUDIENCE", "SIGNUM_RETRIES",
                                   "SIGNUM_IDLE_TIMEOUT", NULL};
         *v; v++)
        unsetenv(*v);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
