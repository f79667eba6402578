#!/usr/bin/env bash
# Packs what bench/scaling.sh needs into DIR (default .bundle/) for a machine
# with nothing installed: the release binaries (stripped), redis-server,
# redis-benchmark and redis-cli, every library they load, and the loader.
# There, `DIR/wrap.sh` writes /tmp/wbin/<tool> wrappers that run each tool
# through the packed loader, so the host's libraries do not matter:
#
#   bench/bundle.sh [DIR] [EXTRA_BINARY...]     (here, after cargo build --release)
#   DIR/wrap.sh && PATH=/tmp/wbin:$PATH bench/scaling.sh   (there)
#
# An EXTRA_BINARY (an older strand, say) is packed under its file name.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.bundle}
shift || true
rm -rf "$dir" && mkdir -p "$dir/bin" "$dir/lib"
cp target/release/strand target/release/strand-bench "$dir/bin/"
for t in redis-server redis-benchmark redis-cli; do cp "$(command -v $t)" "$dir/bin/"; done
for b in "$@"; do
    case $(basename "$b") in
        strand | strand-bench | redis-*) echo "bundle: $b would replace a packed tool; copy it under another name (strand-before)" >&2; exit 1 ;;
    esac
    cp "$b" "$dir/bin/"
done
strip "$dir"/bin/strand* 2>/dev/null || true
for b in "$dir"/bin/*; do ldd "$b" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }'; done | sort -u |
    while read -r lib; do cp -L "$lib" "$dir/lib/"; done
cat >"$dir/wrap.sh" <<'WRAP'
#!/bin/sh
# Writes /tmp/wbin/<tool>: each runs the packed binary through the packed loader and libraries.
d=$(cd "$(dirname "$0")" && pwd)
mkdir -p /tmp/wbin
for b in "$d"/bin/*; do
    n=$(basename "$b")
    printf '#!/bin/sh\nexec %s/lib/ld-linux-x86-64.so.2 --library-path %s/lib %s "$@"\n' "$d" "$d" "$b" >/tmp/wbin/"$n"
    chmod +x /tmp/wbin/"$n"
done
WRAP
chmod +x "$dir/wrap.sh"
du -sh "$dir"
