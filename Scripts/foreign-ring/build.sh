#!/bin/sh
# Builds the foreign-ring interop harness: our harness.c linked with Linux 6.12's userspace VMBus ring
# (tools/hv/vmbus_bufring.c and vmbus_bufring.h, BSD-3-Clause), extracted at build time from Debian's
# linux-source-6.12 package. Nothing from Linux is committed to this repository.
#
# Usage: build.sh <work-dir>
#   Prints the path of the harness executable on its last line of stdout.
#   Exit 3 if the Linux source tarball is missing. The extraction (about 15 s) is cached in <work-dir>,
#   keyed by the tarball's size and modification time; the harness is recompiled every time (well under 1 s).
# Environment: LINUX_SOURCE_TARBALL overrides /usr/src/linux-source-6.12.tar.xz; CC overrides gcc.
set -eu

work=${1:?usage: build.sh <work-dir>}
here=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-gcc}

command -v "$cc" >/dev/null 2>&1 || { echo "foreign-ring: $cc not found (apt-get install -y gcc)" >&2; exit 4; }
src=$("$here/extract.sh" "$work") || exit $?

tmpexe=$(mktemp "$work/foreign-ring-harness.XXXXXX")
"$cc" -O2 -g -pthread -Wall -Wno-unused-function -Wno-address-of-packed-member -I "$src" -o "$tmpexe" \
    "$here/harness.c" "$src/vmbus_bufring.c" || { rm -f "$tmpexe"; exit 6; }
# Rename over the previous build (atomic; a harness still running keeps its old file).
mv -f "$tmpexe" "$work/foreign-ring-harness"
echo "$work/foreign-ring-harness"
