#!/usr/bin/env bash
# Python package sets against the tools researchers use, on the same requirements and
# the same index (the machine's, as pip's configuration names it) in one run. Not a
# test: it prints the numbers of one run.
#
#   install  the locked wheels into a layer, all from warm caches:
#              pinfold build      a venv layer (`install "deps" to=…`) from a warm store;
#                                 SOURCE_DATE_EPOCH changes per run so the layer is made
#                                 again rather than taken from the layer cache
#              uv pip install --target, then tar --sort=name | gzip -n   (warm uv cache)
#              pip install --target, then tar --sort=name | gzip -n      (warm pip cache)
#   lock     pinfold lock against uv pip compile (both with warm metadata caches)
#
# and prints wall time (best of PINFOLD_BENCH_RUNS), peak RSS (largest of the runs) and
# the ratios with the goals of issue 15: install no slower than uv and at least 5x
# faster than pip, lock no slower than uv pip compile by more than 2x, peak memory
# under 200 MiB. Wall times are only meaningful on an idle machine: the load average is
# printed before and after.
#
# Usage: benches/python-speed.sh [REQUIREMENT…]   (default: numpy scikit-learn)
# Environment: PINFOLD_BENCH_RUNS (default 3); PINFOLD_BENCH_BIN, a pinfold binary to use
# instead of a release build (for a smoke run only). Needs uv and pip for the host's python3,
# whose X.Y is the version every tool resolves for.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${PINFOLD_BENCH_RUNS:-3}
if [ $# -eq 0 ]; then set -- numpy scikit-learn; fi

if [ -n "${PINFOLD_BENCH_BIN:-}" ]; then
    pinfold=$PINFOLD_BENCH_BIN
else
    cargo build --release --locked --quiet
    pinfold=${CARGO_TARGET_DIR:-$PWD/target}/release/pinfold
fi
command -v uv >/dev/null || { echo "uv is needed (pip install uv)" >&2; exit 2; }
python=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
work=$(mktemp -d "${TMPDIR:-/tmp}/pinfold-python-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
export PINFOLD_CACHE_DIR=$work/pinfold-cache UV_CACHE_DIR=$work/uv-cache PIP_CACHE_DIR=$work/pip-cache
# One index for all three: pip's own setting, handed to uv (which does not read pip.conf).
index=${PIP_INDEX_URL:-$(python3 -m pip config get global.index-url 2>/dev/null || true)}
if [ -n "$index" ]; then export PIP_INDEX_URL=$index UV_INDEX_URL=$index; fi

mkdir -p "$work/p"
printf '%s\n' "$@" > "$work/p/requirements.txt"
cat > "$work/p/pinfold.kdl" <<EOF
pinfold 1
platforms "linux/amd64"
python deps {
    requirements "requirements.txt"
    python "$python"
}
image py {
    from scratch
    layer py { install "deps" to="/opt/venv" }
}
EOF

declare -A wall rss
measure() { # NAME COMMAND: best wall time and largest peak RSS of $runs runs
    local name=$1 command=$2 best="" peak=0 seconds kib
    for i in $(seq "$runs"); do
        rm -rf "$work/target" "$work/layer.tar.gz"
        export run=$i
        /usr/bin/time -f '%e %M' -o "$work/timing" bash -c "$command" >/dev/null 2>"$work/stderr" \
            || { cat "$work/stderr" >&2; exit 1; }
        read -r seconds kib < <(tail -n 1 "$work/timing")
        if [ -z "$best" ] || awk -v a="$seconds" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$seconds; fi
        if [ "$kib" -gt "$peak" ]; then peak=$kib; fi
    done
    wall[$name]=$best
    rss[$name]=$peak
    printf '  %-24s %8.2f s %8.1f MiB\n' "$name" "$best" "$(awk -v k="$peak" 'BEGIN { print k / 1024 }')" >&2
}
export work pinfold python

# Warm every cache once: pinfold's store and metadata cache, uv's and pip's caches.
(cd "$work/p" && "$pinfold" lock >/dev/null 2>&1 && "$pinfold" build --locked >/dev/null 2>&1)
# The versions pinfold locked, for uv and pip to install the same ones.
python3 - "$work/p/pinfold.lock" > "$work/locked.txt" <<'PY'
import json, sys
lock = json.load(open(sys.argv[1]))
for w in lock["python"]["deps"]["platforms"]["linux/amd64"]:
    print(f"{w['name']}=={w['version']}")
PY
uv pip install --target "$work/target" --python python3 -r "$work/locked.txt" >/dev/null 2>&1
rm -rf "$work/target"
python3 -m pip install -q --target "$work/target" -r "$work/locked.txt" >/dev/null 2>&1
rm -rf "$work/target"
uv pip compile --python-version "$python" --python-platform x86_64-manylinux_2_28 \
    "$work/p/requirements.txt" -o /dev/null >/dev/null 2>&1

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
measure "pinfold install (layer)" \
    'cd "$work/p" && SOURCE_DATE_EPOCH=$((1700000000 + run)) "$pinfold" build --locked -o "oci:$work/out-$run"'
measure "uv install + tar|gzip" \
    'uv pip install --target "$work/target" --python python3 -r "$work/locked.txt" &&
     tar --sort=name -cf - -C "$work/target" . | gzip -n > "$work/layer.tar.gz"'
measure "pip install + tar|gzip" \
    'python3 -m pip install -q --target "$work/target" -r "$work/locked.txt" &&
     tar --sort=name -cf - -C "$work/target" . | gzip -n > "$work/layer.tar.gz"'
measure "pinfold lock" 'cd "$work/p" && "$pinfold" lock'
measure "uv pip compile" \
    'uv pip compile --python-version "$python" --python-platform x86_64-manylinux_2_28 "$work/p/requirements.txt" -o /dev/null'
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
check() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN { ok = (op == ">=") ? v >= t : v <= t; print ok ? "ok" : "MISSED" }'; }
echo
echo "python speed: $* for Python $python on linux/amd64, $(nproc) cores, best of $runs runs"
echo "load average before: $load_before, after: $load_after"
printf '%-24s %9s %10s\n' contender "wall s" "peak MiB"
for name in "pinfold install (layer)" "uv install + tar|gzip" "pip install + tar|gzip" "pinfold lock" "uv pip compile"; do
    awk -v n="$name" -v w="${wall[$name]}" -v r="${rss[$name]}" 'BEGIN { printf "%-24s %9.2f %10.1f\n", n, w, r / 1024 }'
done
echo
vs_uv=$(ratio "${wall[uv install + tar|gzip]}" "${wall[pinfold install (layer)]}")
vs_pip=$(ratio "${wall[pip install + tar|gzip]}" "${wall[pinfold install (layer)]}")
lock_ratio=$(ratio "${wall[pinfold lock]}" "${wall[uv pip compile]}")
peak=$(awk -v a="${rss[pinfold install (layer)]}" -v b="${rss[pinfold lock]}" 'BEGIN { printf "%.1f", (a > b ? a : b) / 1024 }')
echo "install speed vs uv     : $vs_uv  (goal >= 1.0: $(check "$vs_uv" '>=' 1.0))"
echo "install speed vs pip    : $vs_pip  (goal >= 5.0: $(check "$vs_pip" '>=' 5.0))"
echo "lock time / uv compile  : $lock_ratio  (goal <= 2.0: $(check "$lock_ratio" '<=' 2.0))"
echo "pinfold peak RSS MiB    : $peak  (goal < 200: $(check "$peak" '<=' 200))"
