/* Windows user identity, shared by the client library (whose pipe server is ours?) and the
 * agent (whose client is ours? the pipe's DACL). */
#ifndef SG_WIN_SID_H
#define SG_WIN_SID_H

#include <stddef.h>

/* The string SID ("S-1-5-21-...") of this process's user, or of process pid; 0 or -1. */
int sg_win_current_sid(char *out, size_t out_len);
int sg_win_process_sid(unsigned long pid, char *out, size_t out_len);

#endif
