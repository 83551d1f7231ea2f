#!/usr/bin/env bash
# Installs the Debian packages the project needs when they are missing.
# As root it runs apt-get; otherwise it names the exact command to run and fails.
set -euo pipefail

# command or file that proves the package is there -> Debian package
declare -A wanted=(
  [/usr/sbin/mosquitto]=mosquitto
  [/usr/bin/mosquitto_passwd]=mosquitto-clients
  [/usr/include/portaudio.h]=portaudio19-dev
  [/usr/bin/espeak-ng]=espeak-ng
  [/usr/bin/ffmpeg]=ffmpeg
  [/usr/bin/chromium]=chromium            # the web UI's browser tests (headless)
  [/usr/bin/chromedriver]=chromium-driver
)
missing=()
for probe in "${!wanted[@]}"; do
  [ -e "$probe" ] || missing+=("${wanted[$probe]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "Missing system packages: ${missing[*]}" >&2
  echo "Install them with:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
