// libfuse 3 (Debian's libfuse3-dev), high-level API. Swift cannot call the macros fuse.h maps its versioned
// entry points through, so these inline wrappers do.
#define FUSE_USE_VERSION 31
#include <fuse.h>
#include <errno.h>

static inline struct fuse *vmbus_fuse_new(struct fuse_args *args, const struct fuse_operations *op, void *data) {
    return fuse_new(args, op, sizeof(*op), data);
}

// The multithreaded loop: each kernel request may be served on its own thread (up to libfuse's idle-thread cap).
static inline int vmbus_fuse_loop_mt(struct fuse *f) { return fuse_loop_mt(f, 0); }

static inline void *vmbus_fuse_private_data(void) {
    struct fuse_context *c = fuse_get_context();
    return c ? c->private_data : 0;
}
