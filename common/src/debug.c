/* The SIGNUM_DEBUG list rule (debug.h). */
#include "signum/common/debug.h"

#include <string.h>

static int separator(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int sgc_debug_has(const char *list, const char *name)
{
    size_t want = name ? strlen(name) : 0;
    if (!list)
        return 0;
    while (*list) {
        size_t n = 0;
        while (separator(*list))
            list++;
        while (list[n] && !separator(list[n]))
            n++;
        if (n && ((n == 3 && memcmp(list, "all", 3) == 0) ||
                  (want && n == want && memcmp(list, name, n) == 0)))
            return 1;
        list += n;
    }
    return 0;
}
