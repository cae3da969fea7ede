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
tarball=${LINUX_SOURCE_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
here=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-gcc}

if [ ! -f "$tarball" ]; then
    echo "foreign-ring: $tarball not found. The interop test needs Linux 6.12's tools/hv/vmbus_bufring.c:" >&2
    echo "foreign-ring: run 'apt-get install -y linux-source-6.12' (CI installs it)." >&2
    exit 3
fi
command -v "$cc" >/dev/null 2>&1 || { echo "foreign-ring: $cc not found (apt-get install -y gcc)" >&2; exit 4; }

mkdir -p "$work"
stamp=$(stat -c '%s-%Y' "$tarball")
src="$work/linux-$stamp"
if [ ! -f "$src/vmbus_bufring.c" ] || [ ! -f "$src/vmbus_bufring.h" ]; then
    tmp=$(mktemp -d "$work/extract.XXXXXX")
    tar -xJf "$tarball" -C "$tmp" --wildcards --no-wildcards-match-slash \
        '*/tools/hv/vmbus_bufring.c' '*/tools/hv/vmbus_bufring.h'
    mkdir -p "$tmp/out"
    find "$tmp" -path '*/tools/hv/vmbus_bufring.[ch]' -exec cp {} "$tmp/out/" \;
    [ -f "$tmp/out/vmbus_bufring.c" ] && [ -f "$tmp/out/vmbus_bufring.h" ] || {
        echo "foreign-ring: tools/hv/vmbus_bufring.[ch] not found in $tarball" >&2; rm -rf "$tmp"; exit 5; }
    # Publish atomically: concurrent builds either see nothing or the complete directory.
    if ! mv -T "$tmp/out" "$src" 2>/dev/null; then
        [ -f "$src/vmbus_bufring.c" ] || { echo "foreign-ring: could not publish $src" >&2; rm -rf "$tmp"; exit 5; }
    fi
    rm -rf "$tmp"
fi

tmpexe=$(mktemp "$work/foreign-ring-harness.XXXXXX")
"$cc" -O2 -g -pthread -Wall -Wno-unused-function -Wno-address-of-packed-member -I "$src" -o "$tmpexe" \
    "$here/harness.c" "$src/vmbus_bufring.c" || { rm -f "$tmpexe"; exit 6; }
# Rename over the previous build (atomic; a harness still running keeps its old file).
mv -f "$tmpexe" "$work/foreign-ring-harness"
echo "$work/foreign-ring-harness"
