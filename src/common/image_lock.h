/*
 * Disk image locking, byte for byte as QEMU 7.2 does it (block/file-posix.c),
 * so godwit-vm, QEMU and qemu-img keep out of each other's images.
 *
 * Every lock is a shared (F_RDLCK) open-file-description lock on one byte
 * of the image file: byte 100 + p while the holder uses permission p, byte
 * 200 + p while it denies p to everyone else.  A user takes its bytes
 * first, then asks (F_OFD_GETLK) whether anyone else holds the opposite
 * byte of each: someone denying what it uses, or using what it denies, is
 * a conflict and it lets go of everything.  Two openers racing can both
 * fail, never both succeed.  A writable image uses "consistent read" and
 * "write" and denies "write" (bytes 100, 101, 201); a read-only one uses
 * "consistent read" and denies "write" (100, 201): writers exclude each
 * other and readers, readers share.  The locks belong to the open file
 * description: closing it (or the process ending) drops them.
 *
 * OFD locks do not say who holds them (F_OFD_GETLK answers l_pid = -1), so
 * image_lock_holder() looks through /proc for a process with a descriptor
 * of the same file whose fdinfo lists a lock on the byte.
 */
#ifndef GODWIT_COMMON_IMAGE_LOCK_H
#define GODWIT_COMMON_IMAGE_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/util.h"

#define IMAGE_LOCK_PERM_BASE   100 /* QEMU's RAW_LOCK_PERM_BASE */
#define IMAGE_LOCK_SHARED_BASE 200 /* QEMU's RAW_LOCK_SHARED_BASE */

/* QEMU's permission bits (include/block/block-common.h), as byte offsets. */
enum image_lock_perm {
    IMAGE_PERM_CONSISTENT_READ = 0,
    IMAGE_PERM_WRITE = 1,
    IMAGE_PERM_WRITE_UNCHANGED = 2,
    IMAGE_PERM_RESIZE = 3,
    IMAGE_PERM_COUNT,
};

/* -drive file.locking= (QEMU's spelling and values). */
enum image_lock_mode {
    IMAGE_LOCK_AUTO = 0, /* lock where the file system can (the default) */
    IMAGE_LOCK_ON,       /* lock, or refuse the image */
    IMAGE_LOCK_OFF,      /* never lock, never check */
};

/* "on", "off" or "auto"; 0 or -EINVAL. */
int image_lock_parse_mode(const char *s, enum image_lock_mode *out) gw_must_check;

/*
 * Take the locks of one user of the image open on fd (a description that
 * holds none yet): a writer's with write, a reader's without.  path names
 * the image in messages.  Returns 0; -EAGAIN if another user conflicts,
 * with QEMU's words and the holder in err ("Failed to get \"write\" lock:
 * process 4242 (godwit-vm) is using the image [disk.img]"); -ENOTSUP if
 * the file system takes no OFD locks; another -errno.  On failure fd holds
 * no lock.
 */
int image_lock_acquire(int fd, bool write, const char *path, char *err,
                       size_t errlen) gw_must_check;

/* Drop every lock byte fd's description holds (100..299); the image stays open. */
void image_lock_release(int fd);

/*
 * The process holding a lock on byte off of the file open on fd through a
 * description other than fd's: its pid, with its program name in name
 * (argv[0]'s base name, else /proc/PID/comm).  A POSIX lock's owner comes
 * from F_OFD_GETLK; an OFD lock's is found in /proc/PID/fdinfo (processes
 * whose /proc entries we may not read are skipped).  0 if none was found.
 */
pid_t image_lock_holder(int fd, off_t off, char *name, size_t namelen);

#endif
