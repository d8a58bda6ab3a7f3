/* The persisted cache on Windows: a directory of ours (%LOCALAPPDATA%\Signum by default)
 * whose DACL grants only the user; files used only if they are plain files (no reparse
 * point) owned by us whose DACL grants nobody else; replaced atomically (a private temporary
 * file, flushed, then MoveFileEx). */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "../common/win_acl.h"

#define CACHE_FILE_MAX (2 * 1024 * 1024)

void ag_wipe(void *p, size_t len)
{
    SecureZeroMemory(p, len);
}

/* dir\name as UTF-16 into out (AG_PATH_MAX + 64 wide characters). */
static int cache_path(const ag_config *cfg, const char *name, const char *suffix, wchar_t *out)
{
    char path[AG_PATH_MAX + 64];
    int n = snprintf(path, sizeof(path), "%s%s%s%s", cfg->cache_dir, name ? "\\" : "",
                     name ? name : "", suffix);
    if (n < 0 || (size_t)n >= sizeof(path))
        return -1;
    return ag_win_widen(path, out, AG_PATH_MAX + 64);
}

/* Is this directory (not a link) ours and private? */
static int dir_private(const wchar_t *wdir)
{
    HANDLE h =
        CreateFileW(wdir, READ_CONTROL | FILE_READ_ATTRIBUTES,
                    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL, OPEN_EXISTING,
                    FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
    BY_HANDLE_FILE_INFORMATION fi;
    int ok;
    if (h == INVALID_HANDLE_VALUE)
        return 0;
    ok = GetFileInformationByHandle(h, &fi) && (fi.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) &&
         !(fi.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) &&
         ag_win_object_private(h, SE_FILE_OBJECT);
    CloseHandle(h);
    return ok;
}

static int ensure_cache_dir(const ag_config *cfg)
{
    wchar_t wdir[AG_PATH_MAX + 64];
    SECURITY_ATTRIBUTES sa;
    if (!cfg->cache_dir[0] || cache_path(cfg, NULL, "", wdir) != 0)
        return -1;
    if (ag_win_private_sa(&sa, "OICI") != 0)
        return -1;
    if (!CreateDirectoryW(wdir, &sa) && GetLastError() == ERROR_PATH_NOT_FOUND) {
        /* One missing parent (%LOCALAPPDATA% itself exists), created private too. */
        wchar_t *slash = wcsrchr(wdir, L'\\');
        if (slash && slash != wdir) {
            *slash = L'\0';
            CreateDirectoryW(wdir, &sa);
            *slash = L'\\';
            CreateDirectoryW(wdir, &sa);
        }
    }
    ag_win_private_sa_free(&sa);
    if (!dir_private(wdir)) {
        ag_log("cache", "ignoring cache directory %s: not a private directory owned by us",
               cfg->cache_dir);
        return -1;
    }
    return 0;
}

char *ag_cache_load(const ag_config *cfg, const char *name, size_t *len)
{
    wchar_t path[AG_PATH_MAX + 64];
    BY_HANDLE_FILE_INFORMATION fi;
    HANDLE h;
    char *buf = NULL;
    DWORD size, got = 0;

    if (ensure_cache_dir(cfg) != 0 || cache_path(cfg, name, "", path) != 0)
        return NULL;
    h = CreateFileW(path, GENERIC_READ | READ_CONTROL, FILE_SHARE_READ, NULL, OPEN_EXISTING,
                    FILE_FLAG_OPEN_REPARSE_POINT, NULL);
    if (h == INVALID_HANDLE_VALUE)
        return NULL;
    if (!GetFileInformationByHandle(h, &fi) ||
        (fi.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_REPARSE_POINT)) ||
        fi.nFileSizeHigh != 0 || fi.nFileSizeLow == 0 || fi.nFileSizeLow > CACHE_FILE_MAX ||
        !ag_win_object_private(h, SE_FILE_OBJECT)) {
        ag_log("cache", "ignoring %s\\%s: wrong owner, DACL, type or size", cfg->cache_dir, name);
        CloseHandle(h);
        return NULL;
    }
    size = fi.nFileSizeLow;
    buf = malloc((size_t)size + 1);
    if (buf && (!ReadFile(h, buf, size, &got, NULL) || got != size)) {
        ag_log("cache", "ignoring %s\\%s: short read", cfg->cache_dir, name);
        ag_wipe(buf, size);
        free(buf);
        buf = NULL;
    }
    if (buf) {
        buf[size] = '\0';
        *len = size;
    }
    CloseHandle(h);
    return buf;
}

void ag_cache_store(const ag_config *cfg, const char *name, const char *text, size_t len)
{
    wchar_t path[AG_PATH_MAX + 64], tmp[AG_PATH_MAX + 64];
    char suffix[32];
    SECURITY_ATTRIBUTES sa;
    HANDLE h;
    DWORD done = 0;
    int ok = 0;

    if (ensure_cache_dir(cfg) != 0 || len > CACHE_FILE_MAX)
        return;
    snprintf(suffix, sizeof(suffix), ".%lu.tmp", (unsigned long)GetCurrentProcessId());
    if (cache_path(cfg, name, "", path) != 0 || cache_path(cfg, name, suffix, tmp) != 0 ||
        ag_win_private_sa(&sa, "") != 0)
        return;
    h = CreateFileW(tmp, GENERIC_WRITE, 0, &sa, CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    ag_win_private_sa_free(&sa);
    if (h != INVALID_HANDLE_VALUE) {
        ok = WriteFile(h, text, (DWORD)len, &done, NULL) && done == len && FlushFileBuffers(h);
        CloseHandle(h);
    }
    if (!ok || !MoveFileExW(tmp, path, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
        DeleteFileW(tmp);
        ag_log("cache", "cannot write %s\\%s (error %lu)", cfg->cache_dir, name, GetLastError());
    }
}

void ag_cache_remove(const ag_config *cfg, const char *name)
{
    wchar_t path[AG_PATH_MAX + 64];
    if (cfg->cache_dir[0] && cache_path(cfg, name, "", path) == 0)
        DeleteFileW(path);
}
