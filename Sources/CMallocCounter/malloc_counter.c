#define _GNU_SOURCE
#include "malloc_counter.h"
#include <errno.h>
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static uint64_t counter;

uint64_t malloc_counter_total(void) { return __atomic_load_n(&counter, __ATOMIC_RELAXED); }

void *malloc(size_t n) { __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); return __libc_realloc(p, n); }
int posix_memalign(void **out, size_t align, size_t n) {
    __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
void *aligned_alloc(size_t align, size_t n) { __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); return __libc_memalign(align, n); }
void *memalign(size_t align, size_t n) { __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); return __libc_memalign(align, n); }
