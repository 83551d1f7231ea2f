#!/usr/bin/env bash
# Installs the Debian packages the project needs when they are missing.
# As root it runs apt-get; otherwise it names the exact command to run and fails.
#   scripts/system-deps.sh        # a development machine or CI: everything the tests use
#   scripts/system-deps.sh edge   # a Raspberry Pi installed from a release bundle: what the agent needs
set -euo pipefail

# command or file that proves the package is there -> Debian package
declare -A wanted=(
  [/usr/sbin/mosquitto]=mosquitto
  [/usr/bin/mosquitto_passwd]=mosquitto-clients
  [/usr/include/portaudio.h]=portaudio19-dev
  [/usr/bin/espeak-ng]=espeak-ng
  [/usr/bin/ffmpeg]=ffmpeg
  # scripts/install.sh edge --bundle: Debian's python3 checks the bundle and makes the release's venv
  [/usr/share/doc/python3-venv/copyright]=python3-venv
  [/usr/lib/python3/dist-packages/cryptography/__init__.py]=python3-cryptography
  [/usr/bin/chromium]=chromium            # the web UI's browser tests (headless)
  [/usr/bin/chromedriver]=chromium-driver
  [/usr/bin/gammu-smsd]=gammu-smsd         # SMS through a GSM modem (tests: Gammu's dummy driver)
  [/usr/bin/gammu]=gammu
  [/usr/include/gammu/gammu.h]=libgammu-dev
  # a real RTSP server for the camera tests (gst-rtsp-server run by Debian's python3, H.264, clock)
  [/usr/lib/python3/dist-packages/gi/__init__.py]=python3-gi
  [/usr/share/doc/gir1.2-gst-rtsp-server-1.0/copyright]=gir1.2-gst-rtsp-server-1.0
  [/usr/share/doc/gstreamer1.0-plugins-base/copyright]=gstreamer1.0-plugins-base
  [/usr/share/doc/gstreamer1.0-plugins-good/copyright]=gstreamer1.0-plugins-good
  [/usr/share/doc/gstreamer1.0-plugins-ugly/copyright]=gstreamer1.0-plugins-ugly
  [/usr/share/doc/gstreamer1.0-x/copyright]=gstreamer1.0-x
)
if [ "${1:-}" = edge ]; then
  declare -A wanted=(
    [/usr/share/doc/python3-venv/copyright]=python3-venv
    [/usr/lib/python3/dist-packages/cryptography/__init__.py]=python3-cryptography
    [/usr/share/doc/libportaudio2/copyright]=libportaudio2   # PyAudio's library
  )
fi
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
