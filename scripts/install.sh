#!/usr/bin/env bash
# Installs the project as systemd services on this machine (run as root from a checkout):
#   scripts/install.sh edge   # a Raspberry Pi edge node: /etc/thanthien/edge.toml
#   scripts/install.sh hub    # the hub server: broker + hub, /etc/thanthien/hub.toml
# Code goes to /opt/thanthien (a copy of this checkout with its own .venv), state to
# /var/lib/thanthien-*, configs to /etc/thanthien. Re-running upgrades in place.
set -euo pipefail
role=${1:-}
case "$role" in edge|hub) ;; *) echo "usage: $0 edge|hub" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "run as root (sudo $0 $role)" >&2; exit 1; }
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=/opt/thanthien

bash "$src/scripts/system-deps.sh"
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
python3 -m venv "$prefix/.venv"
"$prefix/.venv/bin/pip" install --quiet --upgrade pip
"$prefix/.venv/bin/pip" install --quiet "$prefix[$role]"

if [ "$role" = edge ]; then
  [ -f /etc/thanthien/edge.toml ] || cp "$prefix/config/edge.example.toml" /etc/thanthien/edge.toml
  units=(thanthien-edge.service)
else
  [ -f /etc/thanthien/hub.toml ] || cp "$prefix/config/hub.example.toml" /etc/thanthien/hub.toml
  if [ ! -f /etc/thanthien/pki/server.crt ]; then
    "$prefix/.venv/bin/thanthien" provision ca --dir /etc/thanthien/pki
    "$prefix/.venv/bin/thanthien" provision server --dir /etc/thanthien/pki --host "$(hostname -f)"
  fi
  chown thanthien: /etc/thanthien/pki/server.key   # the CA key stays root-only
  units=(thanthien-broker.service thanthien-hub.service)
fi
chown root:thanthien /etc/thanthien/*.toml
chmod 640 /etc/thanthien/*.toml
"$prefix/.venv/bin/thanthien" config check "/etc/thanthien/$role.toml" || \
  echo "edit /etc/thanthien/$role.toml, then: systemctl restart ${units[-1]}"

for unit in "${units[@]}"; do
  install -m 644 "$prefix/systemd/$unit" /etc/systemd/system/
done
systemctl daemon-reload
systemctl enable --now "${units[@]}"
echo "installed: ${units[*]} (journalctl -u ${units[-1]} -f)"
