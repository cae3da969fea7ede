#!/bin/sh
# Builds the ring baselines of `vmbus-bench xproc-64B-baselines` (baselines.c, ours), with Linux 6.12's
# tools/hv/vmbus_bufring.c linked in when Debian's linux-source-6.12 is installed (extracted at build time by
# Scripts/foreign-ring/extract.sh, never committed), without it otherwise (then only the plain SPSC ring runs).
#
# Usage: build.sh <work-dir>    Prints the executable's path on its last line of stdout.
# Environment: CC overrides gcc; LINUX_SOURCE_TARBALL as for extract.sh.
set -eu
work=${1:?usage: build.sh <work-dir>}
here=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-gcc}
command -v "$cc" >/dev/null 2>&1 || { echo "ring-baselines: $cc not found (apt-get install -y gcc)" >&2; exit 4; }
mkdir -p "$work"
tmpexe=$(mktemp "$work/ring-baselines.XXXXXX")
if src=$("$here/../foreign-ring/extract.sh" "$work" 2>/dev/null); then
    "$cc" -O2 -Wall -Wno-unused-function -Wno-address-of-packed-member -DHAVE_VMBUS_BUFRING -I "$src" \
        -o "$tmpexe" "$here/baselines.c" "$src/vmbus_bufring.c" || { rm -f "$tmpexe"; exit 6; }
else
    "$cc" -O2 -Wall -o "$tmpexe" "$here/baselines.c" || { rm -f "$tmpexe"; exit 6; }
fi
mv -f "$tmpexe" "$work/ring-baselines"
echo "$work/ring-baselines"
