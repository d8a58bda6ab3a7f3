/* Agent configuration: system file, user file, then environment, each overriding the last.
 * The OS decides only where the files are and what "private" means (the block below). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "signum/os.h"
#include "signum/agent_config.h"
#include "../common/win_acl.h"
#include "signum/common/conf.h"

#ifndef _WIN32
#include "../common/posix_os.h"
#endif
#ifdef _WIN32
#include <io.h>
#define SYSTEM_CONFIG_DIR_VAR "PROGRAMDATA" /* %PROGRAMDATA%\Signum\agent.conf */

/* A path from the environment as UTF-8 ("" if unset). */
static void env_dir(const char *var, char *out, size_t len)
{
    wchar_t wvar[32], *v;
    out[0] = '\0';
    if (ag_win_widen(var, wvar, 32) != 0 || !(v = _wgetenv(wvar)) || !*v ||
        ag_win_narrow(v, out, (int)len) != 0)
        out[0] = '\0';
}

static void default_paths(char *sys, char *user, char *cache, size_t len)
{
    char dir[AG_PATH_MAX];
    env_dir(SYSTEM_CONFIG_DIR_VAR, dir, sizeof(dir));
    snprintf(sys, len, "%s\\Signum\\agent.conf", dir[0] ? dir : "C:\\ProgramData");
    env_dir("APPDATA", dir, sizeof(dir));
    if (dir[0])
        snprintf(user, len, "%s\\Signum\\agent.conf", dir);
    env_dir("LOCALAPPDATA", dir, sizeof(dir));
    if (dir[0])
        snprintf(cache, len, "%s\\Signum", dir);
}

static int open_config(const char *path)
{
    wchar_t w[AG_PATH_MAX];
    if (ag_win_widen(path, w, AG_PATH_MAX) != 0) {
        errno = EINVAL;
        return -1;
    }
    return _wopen(w, _O_RDONLY);
}

/* Owned by us, and no one else (but SYSTEM and the Administrators) in its DACL. */
static int config_private(int fd, const struct stat *sb)
{
    (void)sb;
    return ag_win_object_private((HANDLE)_get_osfhandle(fd), SE_FILE_OBJECT);
}
#else
static void default_paths(char *sys, char *user, char *cache, size_t len)
{
    const char *xdg = sg_os_getenv("XDG_CONFIG_HOME"), *home = sg_os_getenv("HOME");
    snprintf(sys, len, "/etc/signum/agent.conf");
    if (xdg && *xdg)
        snprintf(user, len, "%s/signum/agent.conf", xdg);
    else if (home && *home)
        snprintf(user, len, "%s/.config/signum/agent.conf", home);
    sg_px_cache_dir(cache, len);
}

static int open_config(const char *path)
{
    return open(path, O_RDONLY | O_CLOEXEC);
}

static int config_private(int fd, const struct stat *sb)
{
    (void)fd;
    return (sb->st_mode & 077) == 0;
}
#endif

sg_status ag_fail(ag_error *err, sg_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->status = st;
        vsnprintf(err->message, sizeof(err->message), fmt, ap);
        va_end(ap);
    }
    return st;
}

static sg_status set_servers(ag_config *cfg, const char *list, ag_error *err)
{
    char copy[AG_MAX_SERVERS * 512], *tok, *save = NULL;
    snprintf(copy, sizeof(copy), "%s", list);
    cfg->server_count = 0;
    for (tok = strtok_r(copy, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
        size_t n = strlen(tok);
        if (cfg->server_count == AG_MAX_SERVERS)
            return ag_fail(err, SG_ERR_BAD_INPUT, "at most %d servers", AG_MAX_SERVERS);
        if (strncmp(tok, "https://", 8) != 0)
            return ag_fail(err, SG_ERR_BAD_INPUT,
                           "server URL \"%s\" must start with https:// (TLS is not optional)", tok);
        while (n > 8 && tok[n - 1] == '/')
            tok[--n] = '\0';
        if (n >= sizeof(cfg->servers[0]))
            return ag_fail(err, SG_ERR_BAD_INPUT, "server URL too long");
        snprintf(cfg->servers[cfg->server_count++], sizeof(cfg->servers[0]), "%s", tok);
    }
    return SG_OK;
}

static sg_status set_int(const char *name, const char *value, long lo, long hi, int *out,
                         ag_error *err)
{
    char *end;
    long v = strtol(value, &end, 10);
    if (!*value || *end || v < lo || v > hi)
        return ag_fail(err, SG_ERR_BAD_INPUT, "%s must be an integer in [%ld, %ld]", name, lo, hi);
    *out = (int)v;
    return SG_OK;
}

#define CFG_TEXT(field, value)                                                                     \
    do {                                                                                           \
        if (strlen(value) >= sizeof(cfg->field))                                                   \
            return ag_fail(err, SG_ERR_BAD_INPUT, "%s is too long", key);                          \
        snprintf(cfg->field, sizeof(cfg->field), "%s", value);                                     \
        return SG_OK;                                                                              \
    } while (0)

static sg_status apply(ag_config *cfg, const char *key, const char *value, ag_error *err)
{
    if (strcmp(key, "server") == 0)
        return set_servers(cfg, value, err);
    if (strcmp(key, "ca_file") == 0)
        CFG_TEXT(ca_file, value);
    if (strcmp(key, "api_key") == 0)
        CFG_TEXT(api_key, value);
    if (strcmp(key, "auth") == 0) {
        if (strcmp(value, "api_key") && strcmp(value, "service_account") && strcmp(value, "oidc"))
            return ag_fail(err, SG_ERR_BAD_INPUT, "auth must be api_key, service_account or oidc");
        CFG_TEXT(auth, value);
    }
    if (strcmp(key, "service_account") == 0)
        CFG_TEXT(service_account, value);
    if (strcmp(key, "key_file") == 0)
        CFG_TEXT(key_file, value);
    if (strcmp(key, "key_id") == 0)
        CFG_TEXT(key_id, value);
    if (strcmp(key, "audience") == 0)
        CFG_TEXT(audience, value);
    if (strcmp(key, "oidc_token_file") == 0)
        CFG_TEXT(oidc_token_file, value);
    if (strcmp(key, "oidc_token") == 0)
        CFG_TEXT(oidc_token, value);
    if (strcmp(key, "client_cert") == 0)
        CFG_TEXT(client_cert, value);
    if (strcmp(key, "client_key") == 0)
        CFG_TEXT(client_key, value);
    if (strcmp(key, "cache_dir") == 0)
        CFG_TEXT(cache_dir, value);
    if (strcmp(key, "idle_timeout") == 0)
        return set_int(key, value, 0, 7 * 86400, &cfg->idle_timeout, err);
    if (strcmp(key, "connect_timeout_ms") == 0)
        return set_int(key, value, 100, 120000, &cfg->connect_timeout_ms, err);
    if (strcmp(key, "request_timeout_ms") == 0)
        return set_int(key, value, 100, 600000, &cfg->request_timeout_ms, err);
    if (strcmp(key, "retries") == 0)
        return set_int(key, value, 0, 10, &cfg->retries, err);
    if (strcmp(key, "node_backoff_ms") == 0)
        return set_int(key, value, 1, 600000, &cfg->node_backoff_ms, err);
    if (strcmp(key, "node_backoff_max_ms") == 0)
        return set_int(key, value, 1, 3600000, &cfg->node_backoff_max_ms, err);
    if (strcmp(key, "keys_refresh") == 0)
        return set_int(key, value, 0, 86400, &cfg->keys_refresh, err);
    return ag_fail(err, SG_ERR_BAD_INPUT, "unknown setting \"%s\"", key);
}

/* The line length fgets() read before the common parser; longer lines are refused. */
#define AG_CONFIG_LINE_MAX 2047

typedef struct {
    ag_config *cfg;
    const char *path;
    int fd;
    const struct stat *sb;
    ag_error *err;
    sg_status st;
} load_ctx;

static int load_entry(void *arg, const char *key, const char *value, unsigned line)
{
    load_ctx *c = arg;
    ag_error *err = c->err;
    if (strcmp(key, "api_key") == 0 && !config_private(c->fd, c->sb)) {
        c->st = ag_fail(err, SG_ERR_BAD_INPUT,
#ifdef _WIN32
                        "%s holds an api_key but is not private to you (owner or DACL); "
                        "restrict it to your account",
                        c->path);
#else
                        "%s holds an api_key but others can read it (mode %o); chmod 600 it",
                        c->path, (unsigned)(c->sb->st_mode & 0777));
#endif
        return -1;
    }
    if ((c->st = apply(c->cfg, key, value, err)) != SG_OK) {
        char msg[sizeof(err->message)];
        snprintf(msg, sizeof(msg), "%s", err->message);
        ag_fail(err, c->st, "%s line %u: %s", c->path, line, msg);
        return -1;
    }
    return 0;
}

/* Reads one config file if it exists. A file holding an API key must be private. */
static sg_status load_file(ag_config *cfg, const char *path, ag_error *err)
{
    char *text = NULL;
    size_t len = 0;
    struct stat sb;
    int fd = open_config(path);
    FILE *f;
    load_ctx ctx = {cfg, path, fd, &sb, err, SG_OK};
    sgc_conf_error perr;

    if (fd < 0)
        return errno == ENOENT
                   ? SG_OK
                   : ag_fail(err, SG_ERR_BAD_INPUT, "cannot read %s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0 || sb.st_size > SGC_CONF_FILE_MAX || !(f = fdopen(fd, "r"))) {
        close(fd);
        return ag_fail(err, SG_ERR_BAD_INPUT, "%s is unreadable or larger than 64 KiB", path);
    }
    /* One byte more than the cap: a file that grew since fstat() is refused, not cut. */
    if (!(text = malloc(SGC_CONF_FILE_MAX + 1))) {
        fclose(f);
        return ag_fail(err, SG_ERR_NOMEM, "out of memory");
    }
    len = fread(text, 1, SGC_CONF_FILE_MAX + 1, f);
    if (ferror(f) || len > SGC_CONF_FILE_MAX) {
        ctx.st = ag_fail(err, SG_ERR_BAD_INPUT, "%s is unreadable or larger than 64 KiB", path);
        goto out;
    }
    switch (sgc_conf_parse(text, len, AG_CONFIG_LINE_MAX, load_entry, &ctx, &perr)) {
    case SGC_CONF_OK: break;
    case SGC_CONF_E_CALLBACK: break; /* load_entry said why */
    case SGC_CONF_E_NOMEM: ctx.st = ag_fail(err, SG_ERR_NOMEM, "out of memory"); break;
    default:
        ctx.st = ag_fail(err, SG_ERR_BAD_INPUT, "%s line %u: %s", path, perr.line, perr.message);
        break;
    }
out:
    free(text);
    fclose(f);
    if (ctx.st == SG_OK) {
        size_t n = strlen(cfg->sources);
        snprintf(cfg->sources + n, sizeof(cfg->sources) - n, "%s%s", n ? ", " : "", path);
    }
    return ctx.st;
}

static const char *env(const char *name)
{
    const char *v = sg_os_getenv(name);
    return v && *v ? v : NULL;
}

sg_status ag_config_load(ag_config *cfg, ag_error *err)
{
    static const struct {
        const char *var, *key;
    } envmap[] = {
        {"SIGNUM_SERVER", "server"},
        {"SIGNUM_CA_FILE", "ca_file"},
        {"SIGNUM_API_KEY", "api_key"},
        {"SIGNUM_AUTH", "auth"},
        {"SIGNUM_SERVICE_ACCOUNT", "service_account"},
        {"SIGNUM_KEY_FILE", "key_file"},
        {"SIGNUM_KEY_ID", "key_id"},
        {"SIGNUM_AUDIENCE", "audience"},
        {"SIGNUM_OIDC_TOKEN_FILE", "oidc_token_file"},
        {"SIGNUM_OIDC_TOKEN", "oidc_token"},
        {"SIGNUM_CLIENT_CERT", "client_cert"},
        {"SIGNUM_CLIENT_KEY", "client_key"},
        {"SIGNUM_IDLE_TIMEOUT", "idle_timeout"},
        {"SIGNUM_CONNECT_TIMEOUT_MS", "connect_timeout_ms"},
        {"SIGNUM_REQUEST_TIMEOUT_MS", "request_timeout_ms"},
        {"SIGNUM_RETRIES", "retries"},
        {"SIGNUM_NODE_BACKOFF_MS", "node_backoff_ms"},
        {"SIGNUM_NODE_BACKOFF_MAX_MS", "node_backoff_max_ms"},
        {"SIGNUM_KEYS_REFRESH", "keys_refresh"},
        {"SIGNUM_CACHE_DIR", "cache_dir"},
    };
    char sys_path[AG_PATH_MAX] = "", user_path[AG_PATH_MAX] = "", cache[AG_PATH_MAX] = "";
    const char *user = env("SIGNUM_CONFIG");
    sg_status st;

    memset(cfg, 0, sizeof(*cfg));
    cfg->idle_timeout = 600;
    cfg->connect_timeout_ms = 5000;
    cfg->request_timeout_ms = 30000;
    cfg->retries = 3;
    cfg->node_backoff_ms = 1000;
    cfg->node_backoff_max_ms = 30000;
    cfg->keys_refresh = 60;
    snprintf(cfg->audience, sizeof(cfg->audience), "signum");
    default_paths(sys_path, user_path, cache, sizeof(sys_path));
    if ((st = load_file(cfg, sys_path, err)) != SG_OK)
        return st;
    if (!user && user_path[0])
        user = user_path;
    if (user && (st = load_file(cfg, user, err)) != SG_OK)
        return st;
    for (size_t i = 0; i < sizeof(envmap) / sizeof(envmap[0]); i++) {
        const char *v = env(envmap[i].var);
        if (v && (st = apply(cfg, envmap[i].key, v, err)) != SG_OK) {
            char msg[sizeof(err->message)];
            snprintf(msg, sizeof(msg), "%s", err->message);
            return ag_fail(err, st, "%s: %s", envmap[i].var, msg);
        }
    }
    if (!cfg->cache_dir[0])
        snprintf(cfg->cache_dir, sizeof(cfg->cache_dir), "%s", cache);
    return SG_OK;
}

const char *ag_config_auth_method(const ag_config *cfg)
{
    if (cfg->auth[0])
        return cfg->auth;
    if (cfg->api_key[0])
        return "api_key";
    if (cfg->service_account[0] && cfg->key_file[0])
        return "service_account";
    if (cfg->oidc_token[0] || cfg->oidc_token_file[0])
        return "oidc";
    return NULL;
}
