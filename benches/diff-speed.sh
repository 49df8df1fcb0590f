#!/usr/bin/env bash
# How long `pinfold diff` takes on two real images with thousands of files, next to
# the time it takes just to read them. Not a test: it prints the numbers of one run.
#
# The two images are built from a generated tree (benches/gen_tree.py: thousands of
# files, text, binaries and random data) copied into one layer; B has a few files
# changed and one added, so its layer differs and diff must read every entry of both
# layers (decompress, sha256 of every file, compare). The floors it is compared with:
#   cat        every blob of both layouts to /dev/null (the bytes off the disk)
#   sha256sum  every blob (what checking the blobs' digests alone costs)
#   tar -tzf   every layer of both (gunzip and walk the tar: no file hashing)
# and `pinfold diff` of an image with a copy of itself (the fast path: digests only).
#
# Usage: benches/diff-speed.sh [MIB] [SEED]   (default 256 MiB of files)
set -euo pipefail
cd "$(dirname "$0")/.."
mib=${1:-256}
seed=${2:-20240601}

cargo build --release --quiet
pinfold=$PWD/target/release/pinfold
work=$(mktemp -d "${TMPDIR:-/tmp}/pinfold-diff-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export PINFOLD_CACHE_DIR=$work/cache

python3 benches/gen_tree.py "$work/src/tree" "$mib" "$seed"
# gen_tree.py makes few, large files; a real image also has thousands of small ones.
python3 - "$work/src/tree/small" "$seed" <<'PY'
import os, random, sys
root, rng = sys.argv[1], random.Random(int(sys.argv[2]))
words = ["fn", "let", "return", "import", "class", "def", "self", "value", "index", "config"]
for i in range(6000):
    d = os.path.join(root, f"pkg{i % 40:02}", f"mod{i % 7}")
    os.makedirs(d, exist_ok=True)
    lines = (" ".join(rng.choice(words) for _ in range(rng.randint(3, 12))) for _ in range(rng.randint(5, 120)))
    with open(os.path.join(d, f"file{i:05}.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
PY
cat > "$work/src/pinfold.kdl" <<'EOF'
pinfold 1
epoch 1704067200
image big {
    from scratch
    layer tree {
        copy "tree/" to="/srv/tree/"
    }
}
EOF
files=$(find "$work/src/tree" -type f | wc -l)
"$pinfold" build -f "$work/src/pinfold.kdl" -o "oci:$work/a" >/dev/null 2>&1
cp -r "$work/a" "$work/a-copy"
# B: three files changed, one added.
# (awk, not head: head would end the pipe early, and pipefail would end the script)
find "$work/src/tree" -type f -name '*.txt' | sort | awk 'NR <= 3' | while read -r f; do printf 'changed\n' >> "$f"; done
printf 'new\n' > "$work/src/tree/added.txt"
"$pinfold" build -f "$work/src/pinfold.kdl" -o "oci:$work/b" >/dev/null 2>&1

blobs() { ls "$work/a/blobs/sha256/"* "$work/b/blobs/sha256/"*; }
layers() {
  for layout in "$work/a" "$work/b"; do
    python3 - "$layout" <<'PY'
import json, sys
layout = sys.argv[1]
top = json.load(open(f"{layout}/index.json"))["manifests"][0]["digest"].split(":")[1]
manifest = json.load(open(f"{layout}/blobs/sha256/{top}"))
for l in manifest["layers"]:
    print(f"{layout}/blobs/sha256/{l['digest'].split(':')[1]}")
PY
  done
}
bytes=$(blobs | xargs cat | wc -c)

TIMEFORMAT=%R
# diff exits 1 when the images differ: that is its answer, not a failure of the run.
measure() { { time "$@" >/dev/null 2>&1 || true; } 2>&1; }
blobs | xargs cat >/dev/null # warm the page cache: every row reads from memory
t_cat=$(measure sh -c "ls $work/a/blobs/sha256/* $work/b/blobs/sha256/* | xargs cat")
t_sha=$(measure sh -c "ls $work/a/blobs/sha256/* $work/b/blobs/sha256/* | xargs sha256sum")
t_tar=$(measure sh -c "$(layers | sed 's/^/tar -tzf /; s/$/;/' | tr '\n' ' ')")
t_same=$(measure "$pinfold" diff "oci:$work/a" "oci:$work/a-copy")
t_diff=$(measure "$pinfold" diff "oci:$work/a" "oci:$work/b")
"$pinfold" diff "oci:$work/a" "oci:$work/b" | tail -n 8 >&2 || true
# Memory: the layers are streamed, so this stays far below a layer's size.
/usr/bin/time -f %M -o "$work/rss" "$pinfold" diff "oci:$work/a" "oci:$work/b" >/dev/null 2>&1 || true
rss=$(tail -n 1 "$work/rss")
layer_mib=$(( $(layers | awk 'NR == 1' | xargs wc -c | cut -d' ' -f1) >> 20 ))

printf '\n%s files, %s MiB of blobs in the two images, %s cores\n' "$files" "$((bytes >> 20))" "$(nproc)"
printf '%-44s %8s s\n' \
  "cat every blob of both" "$t_cat" \
  "sha256sum every blob of both" "$t_sha" \
  "tar -tzf every layer of both" "$t_tar" \
  "pinfold diff A A' (same blobs: digests only)" "$t_same" \
  "pinfold diff A B (layers differ: every file)" "$t_diff"
printf '%-44s %8s MiB (a layer is %s MiB)\n' "max RSS of pinfold diff A B" "$((${rss:-0} >> 10))" "$layer_mib"
