#!/usr/bin/env bash
# Measures pinfold's layer writer against the usual ways of making a layer, on one
# deterministic (seeded) tree of about PINFOLD_BENCH_MIB MiB in thousands of files:
#
#   tar --sort=name | gzip -n     the single-threaded baseline
#   tar --sort=name | pigz -n     parallel gzip
#   tar --sort=name | zstd -T0    multithreaded zstd (level 3)
#   umoci insert                  a layer tool (Go, parallel gzip)
#   pinfold gzip / zstd           examples/layer_bench.rs: LayerTree -> write_layer
#
# and prints wall time (best of PINFOLD_BENCH_RUNS), CPU time (user + system, least
# of the runs), peak RSS (largest of the runs), output size, and pinfold's ratios to
# the baselines with the targets they must meet. Wall times are only meaningful on an
# otherwise idle machine: the load average is printed before and after, and CPU
# times, which other load disturbs much less, are printed beside them.
#
# Environment: PINFOLD_BENCH_MIB (default 1024), PINFOLD_BENCH_RUNS (default 3),
# PINFOLD_BENCH_SEED (default 20240601), PINFOLD_BENCH_DIR (where the tree and
# outputs go; default $TMPDIR/pinfold-bench; the tree is kept and reused),
# PINFOLD_BENCH_EXTRA (more pinfold compressions to show, e.g. "gzip:4 gzip:6").
# Needs: python3, GNU tar, gzip, pigz, zstd, umoci, /usr/bin/time, cargo.
set -euo pipefail

mib=${PINFOLD_BENCH_MIB:-1024}
runs=${PINFOLD_BENCH_RUNS:-3}
seed=${PINFOLD_BENCH_SEED:-20240601}
work=${PINFOLD_BENCH_DIR:-${TMPDIR:-/tmp}/pinfold-bench}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

for tool in python3 tar gzip pigz zstd umoci /usr/bin/time cargo; do
    command -v "$tool" >/dev/null || { echo "layer-speed: $tool is not installed" >&2; exit 1; }
done

mkdir -p "$work"
tree=$work/tree-$mib-$seed
if [ ! -e "$tree.done" ]; then
    echo "generating $mib MiB tree in $tree (seed $seed)..." >&2
    rm -rf "$tree"
    python3 "$repo/benches/gen_tree.py" "$tree" "$mib" "$seed"
    touch "$tree.done"
fi

echo "building examples/layer_bench (release)..." >&2
cargo build --quiet --release --example layer_bench --manifest-path "$repo/Cargo.toml"
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
pinfold_bench=$target_dir/release/examples/layer_bench

# The uncompressed size, and a warm page cache for every contender alike.
input_bytes=$(tar --sort=name -cf - -C "$tree" . | wc -c)
files=$(find "$tree" -type f | wc -l)
out=$work/out
timing=$work/time.txt

# measure NAME SETUP-COMMAND COMMAND: best wall time of $runs runs, largest peak RSS,
# size of $out (or of the largest blob of the umoci layout) after the last run.
declare -A wall cpu rss size
measure() {
    local name=$1 setup=$2 command=$3 best="" least="" peak=0 seconds kib user system
    for _ in $(seq "$runs"); do
        rm -rf "$out" "$work/layout"
        bash -c "$setup"
        /usr/bin/time -f '%e %M %U %S' -o "$timing" bash -c "$command" >/dev/null
        read -r seconds kib user system < <(tail -n 1 "$timing")
        user=$(awk -v u="$user" -v s="$system" 'BEGIN { print u + s }')
        if [ -z "$best" ] || awk -v a="$seconds" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$seconds; fi
        if [ -z "$least" ] || awk -v a="$user" -v b="$least" 'BEGIN { exit !(a < b) }'; then least=$user; fi
        if [ "$kib" -gt "$peak" ]; then peak=$kib; fi
    done
    cpu[$name]=$least
    if [ -d "$work/layout" ]; then
        size[$name]=$(find "$work/layout/blobs" -type f -printf '%s\n' | sort -n | tail -n 1)
    else
        size[$name]=$(stat -c %s "$out")
    fi
    wall[$name]=$best
    rss[$name]=$peak
    printf '  %-16s %8.2f s wall %8.2f s cpu\n' "$name" "$best" "$least" >&2
}

export tree out work pinfold_bench
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
measure "tar|gzip -n" true 'tar --sort=name -cf - -C "$tree" . | gzip -n > "$out"'
measure "tar|pigz -n" true 'tar --sort=name -cf - -C "$tree" . | pigz -n > "$out"'
measure "tar|zstd -T0" true 'tar --sort=name -cf - -C "$tree" . | zstd -q -T0 > "$out"'
measure "umoci insert" 'umoci init --layout "$work/layout" && umoci new --image "$work/layout:bench"' \
    'umoci insert --image "$work/layout:bench" "$tree" /data'
measure "pinfold gzip" true '"$pinfold_bench" "$tree" gzip "$out"'
measure "pinfold zstd" true '"$pinfold_bench" "$tree" zstd "$out"'
extra=()
for compression in ${PINFOLD_BENCH_EXTRA:-}; do
    extra+=("pinfold $compression")
    measure "pinfold $compression" true "\"\$pinfold_bench\" \"\$tree\" $compression \"\$out\""
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
rm -rf "$out" "$work/layout"

echo
echo "layer speed: $files files, $((input_bytes / 1048576)) MiB of tar, $(nproc) cores, best of $runs runs"
printf '%-16s %9s %9s %9s %10s %8s %9s\n' contender "wall s" "cpu s" "MB/s" "peak MiB" "out MiB" "out/in"
for name in "tar|gzip -n" "tar|pigz -n" "tar|zstd -T0" "umoci insert" "pinfold gzip" "pinfold zstd" "${extra[@]}"; do
    awk -v n="$name" -v w="${wall[$name]}" -v c="${cpu[$name]}" -v r="${rss[$name]}" -v s="${size[$name]}" \
        -v i="$input_bytes" 'BEGIN { printf "%-16s %9.2f %9.2f %9.1f %10.1f %8.1f %9.4f\n",
            n, w, c, i / w / 1e6, r / 1024, s / 1048576, s / i }'
done
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
check() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v < t; print ok ? "ok" : "MISSED" }'; }
gzip_speedup=$(ratio "${wall[tar|gzip -n]}" "${wall[pinfold gzip]}")
umoci_speedup=$(ratio "${wall[umoci insert]}" "${wall[pinfold gzip]}")
pigz_speedup=$(ratio "${wall[tar|pigz -n]}" "${wall[pinfold gzip]}")
zstd_speedup=$(ratio "${wall[tar|zstd -T0]}" "${wall[pinfold zstd]}")
peak=$(awk -v a="${rss[pinfold gzip]}" -v b="${rss[pinfold zstd]}" 'BEGIN { printf "%.1f", (a > b ? a : b) / 1024 }')
echo "pinfold gzip speed / tar|gzip -n : $gzip_speedup  (target >= 2.5: $(check "$gzip_speedup" '>=' 2.5))"
echo "pinfold gzip speed / umoci insert: $umoci_speedup  (target >= 1.0: $(check "$umoci_speedup" '>=' 1.0))"
echo "pinfold gzip speed / tar|pigz -n : $pigz_speedup"
echo "pinfold gzip cpu / umoci cpu     : $(ratio "${cpu[pinfold gzip]}" "${cpu[umoci insert]}")"
echo "pinfold zstd speed / tar|zstd -T0: $zstd_speedup  (target >= 0.9: $(check "$zstd_speedup" '>=' 0.9))"
echo "pinfold gzip size / gzip -n size : $(ratio "${size[pinfold gzip]}" "${size[tar|gzip -n]}")"
echo "pinfold gzip size / umoci size   : $(ratio "${size[pinfold gzip]}" "${size[umoci insert]}")"
echo "pinfold zstd size / zstd size    : $(ratio "${size[pinfold zstd]}" "${size[tar|zstd -T0]}")"
echo "pinfold peak RSS                 : $peak MiB  (target < 100: $(check "$peak" '<' 100))"
echo "load average before / after      : $load_before / $load_after"
