#!/usr/bin/env bash
# Installs what Twofold needs on a Debian 12 machine to build, run the lab and run every test.
# Idempotent: installs only what is missing. Run as root.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "install-deps: run as root (the lab creates namespaces, bridges and mounts)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Runtime parts of the lab and the product (hosts, storage, transport, guest image).
LAB_PKGS=(libvirt-daemon-system libvirt-clients libvirt-dev qemu-system-x86 qemu-block-extra qemu-utils
  glusterfs-server glusterfs-client busybox-static cpio openssh-server openssh-client iproute2
  bridge-utils kmod psmisc procps libc6-dev gcc pkg-config fio)
# Desktop shell (Tauri v2) build and its end-to-end test harness: the WebDriver of WebKitGTK, a
# standalone tray (StatusNotifierItem host and watcher) to show the tray icon under Xvfb, and the
# X tools that click it, close the window as a window manager would (python3 with libX11) and take
# screenshots of the whole screen.
DESKTOP_PKGS=(libwebkit2gtk-4.1-dev build-essential file libxdo-dev libssl-dev
  libayatana-appindicator3-dev librsvg2-dev xvfb dbus dbus-x11 webkit2gtk-driver
  haskell-gtk-sni-tray-utils libglib2.0-bin xdotool x11-utils imagemagick python3)

missing=()
for p in "${LAB_PKGS[@]}" "${DESKTOP_PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# qemu-system-x86 from Debian 12 conflicts with a newer qemu-utils: install both from the same
# release in one command so apt picks matching versions.
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  apt-get update -qq
  qemu_ver=$(apt-cache policy qemu-system-x86 | awk '/Candidate:/ {print $2}')
  extra=()
  if [ -n "$qemu_ver" ] && [ "$qemu_ver" != "(none)" ]; then
    extra=("qemu-utils=$qemu_ver" "qemu-block-extra=$qemu_ver" "qemu-system-x86=$qemu_ver")
  fi
  filtered=()
  for p in "${missing[@]}"; do
    case "$p" in qemu-utils|qemu-block-extra|qemu-system-x86) ;; *) filtered+=("$p") ;; esac
  done
  apt-get install -y -qq --no-install-recommends --allow-downgrades "${filtered[@]}" "${extra[@]}" \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold
fi

# The lab's guest kernel: Debian's cloud kernel, unpacked (never installed) into the cache.
CACHE=${TWOFOLD_CACHE:-/var/cache/twofold}
mkdir -p "$CACHE/debs"
if ! ls "$CACHE"/debs/linux-image-*-cloud-amd64*.deb >/dev/null 2>&1; then
  apt-get update -qq || true
  pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image/ {print $2; exit}')
  (cd "$CACHE/debs" && apt-get -o APT::Sandbox::User=root download "$pkg")
fi
echo "install-deps: system packages present"
