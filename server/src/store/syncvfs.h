/* A pass-through SQLite VFS over the default one that times xSync (fsync/fdatasync), so the
 * writer's commits can say how much of their time the disk took. */
#ifndef SRV_SYNCVFS_H
#define SRV_SYNCVFS_H

#include <stdint.h>

/* Registers the VFS once (not as the default) and returns its name, or NULL if it cannot. */
const char *srv_syncvfs_name(void);

/* Nanoseconds the calling thread has spent in xSync through this VFS so far. */
uint64_t srv_syncvfs_thread_ns(void);

#endif
