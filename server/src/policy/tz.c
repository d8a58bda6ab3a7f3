/* Local time in a named zone from the system tz database. glibc keeps one process-wide zone
 * (TZ), so conversions switch it under a lock and put it back; policy_tz_init() makes sure TZ
 * already has an environment slot, so a switch only replaces a pointer and never reallocates
 * the environment under a concurrent getenv(). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

#define ZONEINFO "/usr/share/zoneinfo/"

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;

static int is_utc(const char *zone)
{
    return !zone || !*zone || strcmp(zone, "UTC") == 0;
}

int policy_tz_valid(const char *name)
{
    char path[sizeof(ZONEINFO) + POLICY_TZ_MAX + 1], magic[4];
    FILE *f;
    size_t got;

    if (is_utc(name))
        return 1;
    /* Area/Location names only: no absolute paths, no "..", nothing glibc would read as a
     * POSIX TZ rule. */
    if (strlen(name) > POLICY_TZ_MAX || name[0] == '/' || name[0] == '.' || strstr(name, "..") ||
        strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") !=
            strlen(name))
        return 0;
    snprintf(path, sizeof(path), ZONEINFO "%s", name);
    f = fopen(path, "rb");
    if (!f)
        return 0;
    got = fread(magic, 1, sizeof(magic), f);
    fclose(f);
    return got == sizeof(magic) && memcmp(magic, "TZif", 4) == 0;
}

void policy_tz_init(void)
{
    pthread_mutex_lock(&tz_lock);
    if (!getenv("TZ"))
        setenv("TZ", ":/etc/localtime", 1); /* what an unset TZ means to glibc */
    pthread_mutex_unlock(&tz_lock);
}

int policy_localtime(const char *zone, int64_t t, struct tm *out)
{
    time_t tt = (time_t)t;
    char want[POLICY_TZ_MAX + 2], *saved = NULL;
    const char *old;
    int ok;

    if (is_utc(zone))
        return gmtime_r(&tt, out) != NULL;
    if (!policy_tz_valid(zone))
        return 0;
    snprintf(want, sizeof(want), ":%s", zone);
    pthread_mutex_lock(&tz_lock);
    old = getenv("TZ");
    if (old && !(saved = strdup(old))) {
        pthread_mutex_unlock(&tz_lock);
        return 0;
    }
    setenv("TZ", want, 1);
    tzset();
    ok = localtime_r(&tt, out) != NULL;
    setenv("TZ", saved ? saved : ":/etc/localtime", 1);
    tzset();
    pthread_mutex_unlock(&tz_lock);
    free(saved);
    return ok;
}
