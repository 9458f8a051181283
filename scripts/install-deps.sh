#!/usr/bin/env bash
# Installs the Debian 12 packages liverecord needs, only when something is missing.
# Run as root (or with sudo available). Safe to run again.
set -euo pipefail

PKGS=(
  pkg-config
  libglib2.0-dev
  libgstreamer1.0-dev
  libgstreamer-plugins-base1.0-dev
  libgstreamer-plugins-bad1.0-dev
  gstreamer1.0-tools
  gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly
  gstreamer1.0-libav
  ffmpeg
  # The end-to-end tests (tests/real_ingest.rs) run their own nginx-rtmp on a
  # free loopback port; srtsrc and rtmp2src come with gstreamer1.0-plugins-bad.
  nginx
  libnginx-mod-rtmp
  # tests/cli_record.rs serves RTSP on loopback with GstRtspServer from Python.
  python3-gi
  gir1.2-gst-rtsp-server-1.0
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all system packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

echo "install-deps: installing ${missing[*]}"
# Debian's nginx would start a system service on port 80 when installed: the
# tests start their own instance, so keep services from starting during the
# install (the standard policy-rc.d mechanism), unless a policy is already set.
POLICY=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  own_policy=1
fi
cleanup() { if [ -n "$own_policy" ]; then $SUDO rm -f "$POLICY"; fi; }
trap cleanup EXIT
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
