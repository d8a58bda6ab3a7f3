/* Linux syntax check only (tests/macos): what macOS's <sys/sysctl.h> offers caller_macos.c. */
#include <stddef.h>

#define CTL_KERN       1
#define KERN_ARGMAX    8
#define KERN_PROCARGS2 49
int sysctl(int *name, unsigned namelen, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
