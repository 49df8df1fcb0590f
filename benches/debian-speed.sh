#!/usr/bin/env bash
# pinfold's Debian package sets against the plain tools, on the machine's own mirror
# (the first `deb` URI of its apt sources for the suite: no host is written here).
# Not a test: it prints the numbers of one run (issue 14's goals beside them):
#
#   lock, cold index cache   pinfold lock of python3 python3-numpy ca-certificates
#   lock, warm index cache   the same again (InRelease fetched, indexes from the cache)
#   build, cold store        pinfold build of that set `from scratch`, empty store
#                            goal: at least 3x faster than the next line
#   debootstrap + umoci      debootstrap --variant=minbase --include=python3,python3-numpy
#                            into a rootfs, then umoci packing it as one layer
#   no-op rebuild            pinfold build again, nothing changed (goal < 0.1 s)
#   peak RSS                 of each pinfold run (/usr/bin/time -v; goal < 200 MiB)
#
# Wall times mean something only on an idle machine: the load average is printed
# before and after. debootstrap needs root (it chroots); without it that line is left
# out. Needs: cargo, debootstrap, umoci, /usr/bin/time, python3.
#
# Usage: benches/debian-speed.sh [SUITE]   (default bookworm)
set -euo pipefail
cd "$(dirname "$0")/.."
suite=${1:-bookworm}
uptime

cargo build --release --locked --quiet
pinfold=${CARGO_TARGET_DIR:-$PWD/target}/release/pinfold
work=$(mktemp -d "${TMPDIR:-/tmp}/pinfold-debian-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The mirror apt uses for the suite, read from its sources (one-line or deb822).
mirror=$(python3 - "$suite" <<'PY'
import glob, sys
suite = sys.argv[1]
def one_line(path):
    for line in open(path):
        words = line.split("#")[0].split()
        if len(words) >= 3 and words[0] == "deb":
            words = [w for w in words[1:] if not w.startswith("[")]
            if len(words) >= 2 and words[1] == suite:
                return words[0]
def deb822(path):
    for stanza in open(path).read().split("\n\n"):
        fields = {}
        for line in stanza.splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                fields[k.strip()] = v.strip()
        if "deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split():
            return fields.get("URIs", "").split()[0]
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*")):
    try:
        found = deb822(path) if path.endswith(".sources") else one_line(path) if path.endswith(".list") else None
    except OSError:
        found = None
    if found:
        print(found)
        break
PY
)
[ -n "$mirror" ] || { echo "no apt source serves $suite" >&2; exit 2; }

mkdir -p "$work/project"
cat >"$work/project/pinfold.kdl" <<EOF
pinfold 1
epoch 1704067200
platforms "linux/amd64"

debian os {
    suite "$suite"
    components "main"
    packages "python3" "python3-numpy" "ca-certificates"
}

image py {
    from scratch
    layer os { install "os" }
}
EOF

# timed LABEL CMD…: wall seconds and peak RSS (MiB) of CMD.
timed() {
    local label=$1
    shift
    /usr/bin/time -v -o "$work/time" "$@" >/dev/null 2>"$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$work/time")
    rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$work/time")
    printf '%-28s %8.2f s  %6s MiB\n' "$label" "$wall" "$rss"
    echo "$wall" >"$work/last"
}

cd "$work/project"
export PINFOLD_CACHE_DIR=$work/cache
timed "lock, cold index cache" "$pinfold" lock
timed "lock, warm index cache" "$pinfold" lock
timed "build, cold store" "$pinfold" build --locked
cold=$(cat "$work/last")
timed "no-op rebuild" "$pinfold" build --locked

if [ "$(id -u)" = 0 ]; then
    timed "debootstrap minbase" debootstrap --variant=minbase --include=python3,python3-numpy,ca-certificates \
        "$suite" "$work/rootfs" "$mirror"
    boot=$(cat "$work/last")
    umoci init --layout "$work/layout" >/dev/null
    umoci new --image "$work/layout:py" >/dev/null
    umoci unpack --rootless --image "$work/layout:py" "$work/bundle" >/dev/null
    rm -rf "$work/bundle/rootfs" && mv "$work/rootfs" "$work/bundle/rootfs"
    timed "umoci repack" umoci repack --image "$work/layout:py" "$work/bundle"
    pack=$(cat "$work/last")
    python3 -c "b=$boot+$pack; print(f'debootstrap + umoci {b:.2f} s; pinfold cold build is {b/$cold:.1f}x faster (goal: 3x)')"
else
    echo "debootstrap needs root: left out"
fi
uptime
