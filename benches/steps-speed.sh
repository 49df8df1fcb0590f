#!/usr/bin/env bash
# Two numbers for steps (a benchmark, not a test: it prints the times of one run).
#   1. A no-op `pinfold build` in a generated repository of FILES files (default
#      100,000), all of them inputs of one step: what it costs to find that nothing
#      changed (walk, fingerprints, keys). The goal is under 0.3 s on a release build.
#   2. The same for an image whose layer copies those FILES files (`copy "tree"`):
#      walk, fingerprints, the layer's key.
#   3. The parallel speed-up of a graph of JOBS independent steps, each busy for about
#      a second, at -j 1 and at the default (the number of cores).
# Needs runc (or bwrap) and the busybox-static .deb of the tests.
#
# Usage: [PINFOLD=BINARY] benches/steps-speed.sh [FILES] [JOBS]
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-100000}
jobs=${2:-8}
debs=${PINFOLD_TEST_DEBS:-/var/cache/pinfold-test-debs}

# PINFOLD=path/to/pinfold uses that binary instead of a fresh release build.
if [ -z "${PINFOLD:-}" ]; then
  cargo build --release --quiet
fi
pinfold=${PINFOLD:-$PWD/target/release/pinfold}
work=$(mktemp -d "${TMPDIR:-/tmp}/pinfold-steps-bench.XXXXXX")
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
export PINFOLD_CACHE_DIR=$work/cache
src=$work/src
mkdir -p "$src"
dpkg-deb -x "$(ls "$debs"/busybox-static_*_amd64.deb | head -1)" "$work/deb"
cp "$work/deb/bin/busybox" "$src/busybox-amd64"

python3 - "$src/tree" "$files" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, f"d{i // 1000:03d}", f"e{(i // 100) % 10}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i}.txt"), "w") as f:
        f.write(f"file {i}\n")
PY

{
  cat <<'KDL'
pinfold 1
epoch 1704067200
image tools {
    from scratch
    layer busybox {
        copy "busybox-amd64" to="/bin/busybox" mode=0o755
        symlink "/bin/sh" target="busybox"
        symlink "/bin/find" target="busybox"
        symlink "/bin/wc" target="busybox"
    }
    env PATH="/bin"
}
step count {
    image tools
    inputs "tree"
    run "sh" "-c" "find tree -type f | wc -l > count.txt"
    outputs "count.txt"
}
image counted {
    from scratch
    layer l { copy step=count "count.txt" to="/count.txt" }
}
KDL
  for i in $(seq 1 "$jobs"); do
    cat <<KDL
step busy$i {
    image tools
    run "sh" "-c" "i=0; while [ \$i -lt 300000 ]; do i=\$((i+1)); done; echo $i > out.txt"
    outputs "out.txt"
}
KDL
  done
} > "$src/pinfold.kdl"
# In a build file of its own, so that each number is one kind of work.
cat > "$src/copied.kdl" <<'KDL'
pinfold 1
epoch 1704067200
image copied {
    from scratch
    layer tree { copy "tree" to="/tree" }
}
KDL

cd "$src"
t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
echo "first build of $files input files: $(t "$pinfold" build counted) s"
"$pinfold" build counted >/dev/null 2>&1
best_of_5() {
  local best=99 x
  for _ in 1 2 3 4 5; do x=$(t "$@"); best=$(echo "if ($x < $best) $x else $best" | bc); done
  echo "$best"
}
echo "no-op build, $files files as step inputs (best of 5): $(best_of_5 "$pinfold" build counted) s"
# Fingerprints are remembered only for files older than 2 s (racily clean files are
# hashed again), so the first no-op build may still hash; this one is warm.
"$pinfold" build -f copied.kdl >/dev/null 2>&1
"$pinfold" build -f copied.kdl >/dev/null 2>&1
echo "no-op build, $files files copied into a layer (best of 5): $(best_of_5 "$pinfold" build -f copied.kdl) s"

names=$(seq -f "busy%g" 1 "$jobs")
rm -rf "$PINFOLD_CACHE_DIR/steps"
# shellcheck disable=SC2086
one=$(t "$pinfold" build -j 1 $names)
rm -rf "$PINFOLD_CACHE_DIR/steps"
# shellcheck disable=SC2086
all=$(t "$pinfold" build $names)
echo "$jobs independent steps: -j 1 ${one} s, -j $(nproc) ${all} s (speed-up $(echo "scale=2; $one / $all" | bc))"
