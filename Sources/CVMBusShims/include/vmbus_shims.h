#ifndef VMBUS_SHIMS_H
#define VMBUS_SHIMS_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

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

#endif
