/* Linux syntax check of the macOS-only C files (tests/macos): the Darwin calls and constants
 * they use that glibc lacks, declared as macOS's SDK documents them (man getpeereid,
 * unix(4) LOCAL_PEERPID, setsockopt(2) SO_NOSIGPIPE, issetugid(2)). Force-included; values
 * are Darwin's but nothing here is ever linked or run. */
#ifndef SIGNUM_TEST_DARWIN_H
#define SIGNUM_TEST_DARWIN_H

#include <sys/types.h>

#define SOL_LOCAL     0
#define LOCAL_PEERPID 0x002
#define SO_NOSIGPIPE  0x1022

int getpeereid(int fd, uid_t *uid, gid_t *gid);
int issetugid(void);

#endif
