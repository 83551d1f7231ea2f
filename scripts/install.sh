#!/usr/bin/env bash
# Installs the project as systemd services on this machine (run as root from a checkout):
#   scripts/install.sh edge --hub URL --code CODE   # a Raspberry Pi enrolled with IT's one-time code
#   scripts/install.sh edge --bundle B.tar --release-key release.pub [--hub URL --code CODE]
#                       # the same from a signed release bundle (thanthien release build), checked first
#   scripts/install.sh edge   # a Raspberry Pi edge node configured by hand: /etc/thanthien/edge.toml
#   scripts/install.sh hub    # the hub server: broker + hub, /etc/thanthien/hub.toml
# Code goes to /opt/thanthien (a copy of this checkout with its own .venv), state to
# /var/lib/thanthien-*, configs to /etc/thanthien. Re-running upgrades in place; re-running with
# a new code enrolls the node again (the hub rotates its identity).
set -euo pipefail
role=${1:-}
usage="usage: $0 edge [--hub URL --code CODE] [--bundle B.tar --release-key P] [--hardware gpio|mock] | hub"
case "$role" in edge|hub) ;; *) echo "$usage" >&2; exit 2 ;; esac
shift
hub_url= code= bundle= release_key= hardware=gpio
while [ $# -gt 0 ]; do
  case "$1" in
    --hub) hub_url=${2:?--hub needs the hub address}; shift 2 ;;
    --code) code=${2:?--code needs the enrollment code}; shift 2 ;;
    --bundle) bundle=$(realpath "${2:?--bundle needs a release bundle}"); shift 2 ;;
    --hardware) hardware=${2:?--hardware needs gpio or mock}; shift 2 ;;
    --release-key) release_key=$(realpath "${2:?--release-key needs the release public key}"); shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
if [ -n "$hub_url$code" ] && { [ "$role" != edge ] || [ -z "$hub_url" ] || [ -z "$code" ]; }; then
  echo "--hub and --code go together, for an edge node" >&2; exit 2
fi
if [ -n "$bundle$release_key" ] && { [ "$role" != edge ] || [ -z "$bundle" ] || [ -z "$release_key" ]; }; then
  echo "--bundle and --release-key go together, for an edge node" >&2; exit 2
fi
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0 $role)" >&2; exit 1; }
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/thanthien

if [ "$role" = edge ] && [ -n "$bundle" ]; then
  bash "$src/scripts/system-deps.sh" edge  # a Pi: only what the agent needs
else
  bash "$src/scripts/system-deps.sh"
fi
id thanthien >/dev/null 2>&1 || useradd --system --home-dir /var/lib/thanthien --shell /usr/sbin/nologin thanthien
if [ "$role" = edge ]; then
  for group in gpio audio; do
    getent group "$group" >/dev/null && usermod -aG "$group" thanthien
  done
fi

mkdir -p "$prefix" /etc/thanthien
if [ "$src" != "$prefix" ]; then
  tar -C "$src" --exclude=.venv --exclude=var --exclude=.git -cf - . | tar -C "$prefix" -xf -
fi
bin="$prefix/.venv/bin"
if [ "$role" = edge ]; then
  # releases side by side (edge/update): releases/<version>/venv, current -> the one in force
  if [ -n "$bundle" ]; then
    # checked (signature, every digest) before anything is installed, then installed offline
    # (Debian's python3 with python3-cryptography, the checkout's code: its folders are the
    # packages of the thanthien namespace, as pyproject.toml maps them)
    python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import thanthien
thanthien.__path__.append(sys.argv[1]); from thanthien.edge.update.install import main
sys.exit(main(sys.argv[2:]))' "$src" --root "$prefix" --bundle "$bundle" --public-key "$release_key"
  else
    python3 -m venv "$prefix/releases/checkout/venv"
    "$prefix/releases/checkout/venv/bin/pip" install --quiet --upgrade pip
    "$prefix/releases/checkout/venv/bin/pip" install --quiet "$prefix[$role]"
    touch "$prefix/releases/checkout/.installed"
    ln -sfn releases/checkout "$prefix/current"
  fi
  chown -R thanthien: "$prefix/releases" "$prefix/current"
  chown thanthien: "$prefix"  # the agent installs its next releases here
  bin="$prefix/current/venv/bin"
else
  python3 -m venv "$prefix/.venv"
  "$prefix/.venv/bin/pip" install --quiet --upgrade pip
  "$prefix/.venv/bin/pip" install --quiet "$prefix[$role]"
fi

if [ "$role" = edge ] && [ -n "$code" ]; then
  # the node's key is made here and stays here; the hub answers with its identity and config
  install -d -o thanthien -g thanthien -m 750 /var/lib/thanthien-edge
  "$bin/thanthien" edge enroll --hub "$hub_url" --code "$code" --releases "$prefix" --hardware "$hardware" \
    --data /var/lib/thanthien-edge --config /etc/thanthien/edge.toml --owner thanthien
  units=(thanthien-edge.service)
elif [ "$role" = edge ]; then
  [ -f /etc/thanthien/edge.toml ] || cp "$prefix/config/edge.example.toml" /etc/thanthien/edge.toml
  units=(thanthien-edge.service)
else
  [ -f /etc/thanthien/hub.toml ] || cp "$prefix/config/hub.example.toml" /etc/thanthien/hub.toml
  if [ ! -f /etc/thanthien/pki/server.crt ]; then
    "$prefix/.venv/bin/thanthien" provision ca --dir /etc/thanthien/pki
    "$prefix/.venv/bin/thanthien" provision server --dir /etc/thanthien/pki --host "$(hostname -f)"
  fi
  chown thanthien: /etc/thanthien/pki/server.key   # the CA key stays root-only
  # enrollment: the hub writes node passwords into the broker's file and signals it to reload
  install -d /etc/systemd/system/thanthien-hub.service.d
  printf '[Service]\nReadWritePaths=/var/lib/thanthien-broker\n' \
    > /etc/systemd/system/thanthien-hub.service.d/enrollment.conf
  units=(thanthien-broker.service thanthien-hub.service)
fi
if [ -z "$code" ]; then  # an enrolled node's file is the service user's alone (0600), written by enroll
  chown root:thanthien "/etc/thanthien/$role.toml"
  chmod 640 "/etc/thanthien/$role.toml"
fi
"$bin/thanthien" config check "/etc/thanthien/$role.toml" || \
  echo "edit /etc/thanthien/$role.toml, then: systemctl restart ${units[-1]}"

for unit in "${units[@]}"; do
  install -m 644 "$prefix/systemd/$unit" /etc/systemd/system/
done
if [ ! -d /run/systemd/system ]; then  # a chroot or container without systemd (make pi-check)
  echo "installed (systemd is not running here: not started): ${units[*]}"
  exit 0
fi
systemctl daemon-reload
systemctl enable "${units[@]}"
systemctl restart "${units[@]}"
echo "installed: ${units[*]} (journalctl -u ${units[-1]} -f)"
