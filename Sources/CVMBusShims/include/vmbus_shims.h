#ifndef VMBUS_SHIMS_H
#define VMBUS_SHIMS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Thin wrappers for Linux calls and macros Swift's Glibc module does not import.
   Each returns what the underlying call returns (-1 and errno on failure). */

int vmbus_shim_memfd_create(const char *name, unsigned int flags);
int vmbus_shim_eventfd(unsigned int initval, int flags);
/* EFD_* and MFD_* flag values. */
int vmbus_shim_efd_cloexec(void);
int vmbus_shim_efd_nonblock(void);
int vmbus_shim_efd_semaphore(void);
unsigned int vmbus_shim_mfd_cloexec(void);
unsigned int vmbus_shim_mfd_allow_sealing(void);

/* Sends `len` bytes plus up to `nfds` file descriptors with SCM_RIGHTS on a socket. */
ssize_t vmbus_shim_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds, int flags);
/* Receives a message and up to `maxfds` descriptors; *nfds is set to how many arrived (MSG_CMSG_CLOEXEC). */
ssize_t vmbus_shim_recv_with_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds, int flags);

/* accept4(SOCK_CLOEXEC). */
int vmbus_shim_accept_cloexec(int sock);

/* Signal sockets (docs/TRANSPORT.md §6): an AF_UNIX SOCK_STREAM socketpair, close-on-exec. */
int vmbus_shim_signal_socketpair(int fds[2]);
/* Sends one byte with MSG_DONTWAIT | MSG_NOSIGNAL (retrying EINTR): 1 sent, 0 queue full (EAGAIN),
   -1 and errno otherwise. Never blocks, whatever O_NONBLOCK says. */
int vmbus_shim_signal_send(int fd);
/* Reads what is queued with MSG_DONTWAIT, at most `rounds` reads of `len` bytes into `buf`:
   returns the bytes read (>= 0; 0 with errno EAGAIN when nothing was queued), or -1 with errno
   0 at end-of-stream, or -1 with the recv error. Never blocks. */
ssize_t vmbus_shim_signal_drain(int fd, void *buf, size_t len, int rounds);
/* SO_DOMAIN and SO_TYPE of a socket; -1 and errno if `fd` is not a socket. */
int vmbus_shim_socket_kind(int fd, int *domain, int *type);
int vmbus_shim_af_unix(void);
int vmbus_shim_sock_stream(void);
/* f_type of fstatfs (TMPFS_MAGIC for memfd and tmpfs), or 0 and errno on failure. */
unsigned long vmbus_shim_fs_magic(int fd);
unsigned long vmbus_shim_tmpfs_magic(void);

/* SO_PEERCRED of a Unix socket. */
int vmbus_shim_peer_credentials(int sock, pid_t *pid, uid_t *uid, gid_t *gid);

/* Pins the calling thread to one CPU (benchmarks). */
int vmbus_shim_pin_to_cpu(int cpu);
int vmbus_shim_cpu_count(void);

/* A full memory barrier (mfence/dmb ish), for the ring's documented fences. */
void vmbus_shim_full_barrier(void);

/* Monotonic clock in nanoseconds. */
uint64_t vmbus_shim_monotonic_ns(void);

/* Sets the calling thread's name (shows in top/gdb). */
void vmbus_shim_set_thread_name(const char *name);

/* memfd seals: F_ADD_SEALS / F_GET_SEALS (fcntl is variadic). */
int vmbus_shim_add_seals(int fd, int seals);
int vmbus_shim_get_seals(int fd);
int vmbus_shim_seal_shrink(void);
int vmbus_shim_seal_grow(void);
int vmbus_shim_seal_seal(void);

/* Disk backends: fallocate modes Glibc's module does not import. Return 0 or -1 with errno. */
int vmbus_shim_punch_hole(int fd, int64_t offset, int64_t length);
int vmbus_shim_zero_range(int fd, int64_t offset, int64_t length);
/* preadv2(..., RWF_NOWAIT): a read that returns -1/EAGAIN (or fewer bytes) instead of waiting for a device,
   so it completes only from the page cache. */
ssize_t vmbus_shim_preadv_nowait(int fd, const struct iovec *iov, int count, int64_t offset);
/* open(2) is variadic: O_CREAT with a mode. */
int vmbus_shim_open(const char *path, int flags, unsigned int mode);

#endif
