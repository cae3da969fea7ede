#define _GNU_SOURCE
#include "vmbus_shims.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <linux/falloc.h>

int vmbus_shim_memfd_create(const char *name, unsigned int flags) { return memfd_create(name, flags); }
int vmbus_shim_eventfd(unsigned int initval, int flags) { return eventfd(initval, flags); }
int vmbus_shim_efd_cloexec(void) { return EFD_CLOEXEC; }
int vmbus_shim_efd_nonblock(void) { return EFD_NONBLOCK; }
int vmbus_shim_efd_semaphore(void) { return EFD_SEMAPHORE; }
unsigned int vmbus_shim_mfd_cloexec(void) { return MFD_CLOEXEC; }
unsigned int vmbus_shim_mfd_allow_sealing(void) { return MFD_ALLOW_SEALING; }

#define VMBUS_SHIM_MAX_FDS 64

ssize_t vmbus_shim_send_with_fds(int sock, const void *buf, size_t len, const int *fds, int nfds, int flags) {
    if (nfds < 0 || nfds > VMBUS_SHIM_MAX_FDS) { errno = EINVAL; return -1; }
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int) * VMBUS_SHIM_MAX_FDS)]; } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (nfds > 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
    }
    ssize_t r;
    do { r = sendmsg(sock, &msg, MSG_NOSIGNAL | flags); } while (r < 0 && errno == EINTR);
    return r;
}

ssize_t vmbus_shim_recv_with_fds(int sock, void *buf, size_t len, int *fds, int maxfds, int *nfds, int flags) {
    *nfds = 0;
    struct iovec iov = { .iov_base = buf, .iov_len = len };
    union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(int) * VMBUS_SHIM_MAX_FDS)]; } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t r;
    do { r = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC); } while (r < 0 && errno == EINTR);
    if (r < 0) return r;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int n = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *src = (int *)CMSG_DATA(c);
        for (int i = 0; i < n; i++) {
            if (*nfds < maxfds) fds[(*nfds)++] = src[i];
            else close(src[i]); /* never leak descriptors a peer pushed beyond what we accept */
        }
    }
    if (msg.msg_flags & MSG_CTRUNC) { errno = EMSGSIZE; /* caller sees a short fd list */ }
    return r;
}

int vmbus_shim_peer_credentials(int sock, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred cred;
    socklen_t l = sizeof cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &l) != 0) return -1;
    *pid = cred.pid; *uid = cred.uid; *gid = cred.gid;
    return 0;
}

int vmbus_shim_pin_to_cpu(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

int vmbus_shim_cpu_count(void) { return (int)sysconf(_SC_NPROCESSORS_ONLN); }

void vmbus_shim_full_barrier(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

uint64_t vmbus_shim_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void vmbus_shim_set_thread_name(const char *name) {
    char n[16];
    strncpy(n, name, 15);
    n[15] = 0;
    pthread_setname_np(pthread_self(), n);
}

int vmbus_shim_add_seals(int fd, int seals) { return fcntl(fd, F_ADD_SEALS, seals); }
int vmbus_shim_get_seals(int fd) { return fcntl(fd, F_GET_SEALS); }
int vmbus_shim_seal_shrink(void) { return F_SEAL_SHRINK; }
int vmbus_shim_seal_grow(void) { return F_SEAL_GROW; }
int vmbus_shim_seal_seal(void) { return F_SEAL_SEAL; }

int vmbus_shim_accept_cloexec(int sock) { return accept4(sock, NULL, NULL, SOCK_CLOEXEC); }

int vmbus_shim_signal_socketpair(int fds[2]) { return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds); }

int vmbus_shim_signal_send(int fd) {
    static const char one = 1;
    for (;;) {
        ssize_t r = send(fd, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r == 1) return 1;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return -1;
    }
}

ssize_t vmbus_shim_signal_drain(int fd, void *buf, size_t len, int rounds) {
    ssize_t total = 0;
    for (int i = 0; i < rounds; i++) {
        ssize_t r = recv(fd, buf, len, MSG_DONTWAIT);
        if (r > 0) { total += r; if ((size_t)r < len) break; continue; }
        if (r == 0) { errno = 0; return -1; }
        if (errno == EINTR) { i--; continue; }
        if (errno == EAGAIN || errno == EWOULDBLOCK) { if (total == 0) errno = EAGAIN; return total; }
        return -1;
    }
    return total;
}

int vmbus_shim_socket_kind(int fd, int *domain, int *type) {
    socklen_t l = sizeof *domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, domain, &l) != 0) return -1;
    l = sizeof *type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, type, &l) != 0) return -1;
    return 0;
}
int vmbus_shim_af_unix(void) { return AF_UNIX; }
int vmbus_shim_sock_stream(void) { return SOCK_STREAM; }

unsigned long vmbus_shim_fs_magic(int fd) {
    struct statfs s;
    if (fstatfs(fd, &s) != 0) return 0;
    return (unsigned long)s.f_type;
}
unsigned long vmbus_shim_tmpfs_magic(void) { return 0x01021994ul; }

int vmbus_shim_punch_hole(int fd, int64_t offset, int64_t length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}
int vmbus_shim_zero_range(int fd, int64_t offset, int64_t length) {
    return fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, length);
}
ssize_t vmbus_shim_preadv_nowait(int fd, const struct iovec *iov, int count, int64_t offset) {
    return preadv2(fd, iov, count, offset, RWF_NOWAIT);
}
int vmbus_shim_open(const char *path, int flags, unsigned int mode) { return open(path, flags | O_CLOEXEC, mode); }
