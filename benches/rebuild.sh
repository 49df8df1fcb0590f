#!/usr/bin/env bash
# Whole builds, cold and warm, on the benchmark tree of layer-speed.sh: `pinfold build`
# of one image that copies the tree, first with an empty cache (every layer tarred,
# compressed and hashed), then again with nothing changed (the target: under 5% of the
# cold build), and once more after touching one file's content. Prints one table.
#
#   benches/rebuild.sh [PINFOLD_BINARY]      (PINFOLD_BENCH_MIB sizes the tree, default 1024)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
pinfold=${1:-$here/../target/release/pinfold}
[ -x "$pinfold" ] || { echo "build it first: cargo build --release" >&2; exit 2; }
mib=${PINFOLD_BENCH_MIB:-1024}
work=${PINFOLD_BENCH_DIR:-/tmp/pinfold-bench}
tree=$work/tree-$mib-20240601
mkdir -p "$work"
[ -d "$tree" ] || python3 "$here/gen_tree.py" "$tree" "$mib" >/dev/null
rm -rf "$work/rebuild-cache" "$work/rebuild-out"
# The build file sits beside the tree: `copy` reads only below its build file.
cat > "$work/rebuild.kdl" <<KDL
pinfold 1
epoch 1704067200
image big {
    from scratch
    layer tree {
        copy "$(basename "$tree")/" to="/data/"
    }
}
KDL
# Fingerprints are trusted only for files older than 2 s (racy-clean rule).
sleep 3
run() {
  /usr/bin/time -f '%e %M' -o "$work/time.txt" "$pinfold" build -f "$work/rebuild.kdl" \
    --cache-dir "$work/rebuild-cache" -o "oci:$work/rebuild-out" >/dev/null 2>"$work/stderr.txt"
  read -r secs kib < "$work/time.txt"
  echo "$secs $((kib / 1024))"
}
read -r cold cold_mem < <(run)
read -r warm warm_mem < <(run)
first=$(find "$tree" -type f | LC_ALL=C sort | sed -n 1p)
cp "$first" "$work/saved-first"
printf 'changed' >> "$first"
sleep 3
read -r touched touched_mem < <(run)
cp "$work/saved-first" "$first"
printf '%-28s %8s %9s %8s\n' "build" "wall s" "peak MiB" "vs cold"
printf '%-28s %8s %9s %8s\n' "cold (empty cache)" "$cold" "$cold_mem" "1.000"
printf '%-28s %8s %9s %8.3f\n' "nothing changed" "$warm" "$warm_mem" "$(echo "$warm / $cold" | bc -l)"
printf '%-28s %8s %9s %8.3f\n' "one file changed" "$touched" "$touched_mem" "$(echo "$touched / $cold" | bc -l)"
