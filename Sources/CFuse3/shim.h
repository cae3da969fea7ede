// libfuse 3 (Debian's libfuse3-dev, 3.14), high-level API. Swift cannot call the macros fuse.h maps its versioned
// entry points through, so these inline wrappers do. 3.12's loop configuration lets the multithreaded loop run
// more than its default 10 workers.
#define FUSE_USE_VERSION 312
#include <fuse.h>
#include <errno.h>

static inline struct fuse *vmbus_fuse_new(struct fuse_args *args, const struct fuse_operations *op, void *data) {
    return fuse_new(args, op, sizeof(*op), data);
}

// The multithreaded loop: each kernel request may be served on its own worker, up to `max_threads` of them.
static inline int vmbus_fuse_loop_mt(struct fuse *f, unsigned int max_threads) {
    struct fuse_loop_config *config = fuse_loop_cfg_create();
    if (!config) return -ENOMEM;
    fuse_loop_cfg_set_max_threads(config, max_threads);
    fuse_loop_cfg_set_idle_threads(config, max_threads);
    int r = fuse_loop_mt(f, config);
    fuse_loop_cfg_destroy(config);
    return r;
}

static inline void *vmbus_fuse_private_data(void) {
    struct fuse_context *c = fuse_get_context();
    return c ? c->private_data : 0;
}

// Poll handles belong to the low-level API; the high-level poll callback hands them to us to notify later.
#include <fuse_lowlevel.h>

static inline void vmbus_fuse_notify_poll(void *ph) {
    fuse_notify_poll((struct fuse_pollhandle *)ph);
}

static inline void vmbus_fuse_pollhandle_destroy(void *ph) {
    fuse_pollhandle_destroy((struct fuse_pollhandle *)ph);
}
