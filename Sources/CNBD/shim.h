// libnbd (Debian's libnbd-dev): the NBD client library behind `--disk nbd:…`.
#include <libnbd.h>
