/* Linux syntax check only (tests/macos): what macOS's <libproc.h> offers caller_macos.c. */
#include <stdint.h>

#define PROC_PIDPATHINFO_MAXSIZE 4096
int proc_pidpath(int pid, void *buffer, uint32_t buffersize);
