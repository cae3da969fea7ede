#ifndef MALLOC_COUNTER_H
#define MALLOC_COUNTER_H
#include <stdint.h>
/* Number of malloc/calloc/realloc/posix_memalign calls in this process since start. Linking this target
   interposes those functions (they forward to glibc's __libc_* entry points). */
uint64_t malloc_counter_total(void);
#endif
