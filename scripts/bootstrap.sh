#!/usr/bin/env bash
# Installs everything Tessera needs on a Debian 12 machine, as root. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv python3-dev gcc pkg-config
  golang-go golang-github-vmware-govmomi-dev
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-system libvirt-clients libvirt-dev
  qemu-system-x86 qemu-utils util-linux procps iproute2 iptables wrk
  slapd ldap-utils
  chromium fonts-wqy-microhei   # the portal's browser tests and benchmark; CJK glyphs
  qemu-block-extra   # qemu-img reads vCenter datastores over https (migration)
  syslinux syslinux-common mtools dosfstools busybox-static cpio   # the lab's tiny guest
  # virtio conversion (virt-v2v-in-place reads its disks through nbdkit; the libguestfs
  # appliance needs a host kernel) and the lab's Debian guest (debootstrap)
  libguestfs-tools virt-v2v nbdkit linux-image-amd64 debootstrap
  openvswitch-switch iputils-ping ethtool conntrack   # the network data plane and its tests
  frr strongswan-charon strongswan-swanctl libcharon-extra-plugins   # interconnects (kernel-libipsec)
  libstrongswan-extra-plugins   # IKE with curve25519 (x25519 key exchange)
)
# The portal's build: Debian's Node.js where none is installed (18 on Debian 12).
if ! command -v node >/dev/null; then
  APT_PACKAGES+=(nodejs npm)
elif ! command -v npm >/dev/null; then
  APT_PACKAGES+=(npm)
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  apt-get update -qq
  # Tessera starts its daemons itself (OVS, libvirtd...): keep the packages from starting
  # theirs, with a policy-rc.d of our own unless the machine has one.
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  /usr/bin/python3 -m venv .venv
fi
stamp=.venv/.tessera-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "==> installing Python packages"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi

echo "==> building the portal"
# Reinstall node_modules only when the lock file changed; rebuild only when a source did.
lock_hash=$(sha256sum portal/package-lock.json | cut -d' ' -f1)
if [ "$(cat portal/node_modules/.tessera-lock 2>/dev/null)" != "$lock_hash" ]; then
  (cd portal && npm ci --no-audit --no-fund)
  echo "$lock_hash" > portal/node_modules/.tessera-lock
fi
build_hash=$(cd portal && find package.json package-lock.json index.html tsconfig.json \
  vite.config.ts scripts src public -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum)
if [ ! -f portal/dist/index.html ] || [ "$(cat portal/.build-stamp 2>/dev/null)" != "$build_hash" ]; then
  (cd portal && npm run build)
  echo "$build_hash" > portal/.build-stamp
fi

# The lab guest's kernel (tessera/lab/guest.py): the package linux-image-amd64 points at,
# downloaded (not installed) into the lab cache.
guest_debs="${XDG_CACHE_HOME:-$HOME/.cache}/tessera/guest/debs"
kernel_pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [ -n "$kernel_pkg" ] && ! ls "$guest_debs/${kernel_pkg}"_*.deb >/dev/null 2>&1; then
  echo "==> downloading $kernel_pkg for the lab guest"
  mkdir -p "$guest_debs"
  (cd "$guest_debs" && apt-get download -qq "$kernel_pkg" 2>/dev/null || \
    { apt-get update -qq && apt-get download -qq "$kernel_pkg"; })
fi

echo "==> building the lab vCenter simulator"
.venv/bin/tessera lab build

# The lab's Debian guest for the slow virt-v2v test (tessera/lab/debian_guest.py): ~6 min
# the first time, then cached by a hash of its recipe. The test builds it itself if this
# fails, and says why.
echo "==> building the lab's Debian guest"
.venv/bin/python -m tessera.lab.debian_guest || echo "warning: the Debian lab guest was not built"
