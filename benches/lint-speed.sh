#!/usr/bin/env bash
# How long `pinfold lint` takes over 1,000 varied Dockerfiles (a benchmark, not a
# test: it prints the time and fails only when lint itself cannot run).
#
#   benches/lint-speed.sh [COUNT]      # default 1000
#
# The Dockerfiles are generated into a temporary directory from a fixed seed, so
# every run lints the same files: multi-stage builds, build arguments in FROM, line
# continuations, heredocs, exec-form RUN, and pinned and unpinned apt, apk, dnf, pip,
# conda, R, npm, curl and git commands, some inside `$(…)`, `sh -c` and `sudo env`, and
# `pip install -r requirements.txt` (no COPY places it: reported, not followed).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000}
cargo build -j1 --release --quiet
bin=${CARGO_TARGET_DIR:-target}/release/pinfold
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

python3 - "$dir" "$count" <<'PY'
import random, sys
out, count = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
digest = "sha256:" + "7" * 64
bases = ["alpine:3.20", "debian:bookworm-slim", "python:3.12-slim", "node:22", "ubuntu", "golang:1.23@" + digest,
         "ruby:3.3", "rust:1.83-slim@" + digest, "nginx:latest", "${BASE}:${TAG:-1.0}"]
runs = [
    "apt-get update && apt-get install -y --no-install-recommends curl ca-certificates=20230311 \\\n    && rm -rf /var/lib/apt/lists/*",
    "apk add --no-cache bash git=2.45.2-r0 jq",
    "pip install --no-cache-dir flask==3.0.3 requests gunicorn>=22",
    "npm install -g typescript@5.6.3 pnpm",
    "curl -fsSLo /tmp/t.tgz https://example.org/t-{i}.tgz && tar -xzf /tmp/t.tgz -C /usr/local",
    "curl -fsSL https://example.org/install-{i}.sh | sh",
    "git clone https://github.com/example/repo{i} /src && git -C /src checkout 0123456789abcdef0123456789abcdef01234567",
    "go install golang.org/x/tools/gopls@latest",
    "cargo install ripgrep --version 14.1.1 --locked",
    "gem install bundler -v 2.5.22 && gem install rake",
    '["apt-get", "install", "-y", "make"]',
    "<<EOF\nset -eux\napt-get install -y vim\npip install black==24.10.0\nEOF",
    "set -eux; \\\n    echo building {i}; \\\n    make -j\"$(nproc)\" all",
    "dnf install -y --setopt=install_weak_deps=False gcc-11.4.1-3.el9 python3-devel && dnf upgrade -y",
    "conda install -y -c conda-forge python=3.11 numpy=1.26.4=py311h64a7726_0 scikit-learn",
    "R -e \"install.packages(c('dplyr', 'ggplot2'))\" && Rscript -e 'remotes::install_github(\"lab/tools\")'",
    "pip install --no-cache-dir -r requirements.txt && sh -c 'apt-get install -y htop'",
    "VERSION=$(pip install -q rich && rich --version) && sudo -E env A=1 pip install httpx",
]
for i in range(count):
    lines = ["# syntax=docker/dockerfile:1", "ARG BASE=alpine", "ARG TAG"]
    for stage in range(rng.randint(1, 3)):
        lines.append(f"FROM {rng.choice(bases)} AS stage{stage}")
        lines.append("WORKDIR /app")
        for _ in range(rng.randint(2, 8)):
            lines.append("RUN " + rng.choice(runs).replace("{i}", str(i)))
        if rng.random() < 0.3:
            lines.append(f"ADD https://example.org/data-{i}.csv /data/")
        if stage:
            lines.append(f"COPY --from=stage{stage - 1} /app /app")
    lines.append('CMD ["/app/run"]')
    with open(f"{out}/{i:04d}.Dockerfile", "w") as f:
        f.write("\n".join(lines) + "\n")
PY

bytes=$(cat "$dir"/*.Dockerfile | wc -c)
echo "linting $count Dockerfiles ($bytes bytes) with $bin"
# real: wall clock (other load on the machine shows here); user+sys: pinfold's CPU time.
TIMEFORMAT='%R s real, %U s user, %S s sys'
for format in human json sarif; do
  echo -n "--format $format: "
  set +e
  time "$bin" lint --format "$format" "$dir" >/dev/null
  code=$?
  set -e
  if [ "$code" -ge 2 ]; then
    echo "pinfold lint failed (exit $code)" >&2
    exit 1
  fi
done
