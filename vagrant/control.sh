#!/bin/bash
# Runs as root on the control node, from the Vagrantfile, after the four
# managed hosts are up. It does what Rumana does on a new control node:
#   1. put the automation key where inventories/vagrant expects it;
#   2. install provision from the repository (`make setup`);
#   3. record each host's SSH host key in inventories/vagrant/.ssh/known_hosts;
#   4. run a playbook against the four hosts through the repository's venv.
# Safe to run again (`vagrant provision control`): every step converges.
set -euo pipefail

: "${PROVISION_MANAGED_ADDRESSES:?the Vagrantfile passes the managed host addresses}"
playbook=${PROVISION_VAGRANT_PLAYBOOK:-vagrant/smoke.yml}

repo=/vagrant
user=vagrant
home=$(getent passwd "$user" | cut -d: -f6)
upload=$home/.ssh/provision_upload
# Same repository-relative paths as inventories/vagrant/group_vars/all/connection.yml.
key=$repo/.vagrant/provision/id_ed25519
known_hosts=$repo/inventories/vagrant/.ssh/known_hosts

log() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
as_user() { sudo -u "$user" -H "$@"; }

cd "$repo"

log "installing the automation key at $key"
install -d -m 0700 -o "$user" -g "$user" "$(dirname "$key")"
if [ -f "$upload" ]; then
    install -m 0600 -o "$user" -g "$user" "$upload" "$key"
    rm -f "$upload"
fi
[ -s "$key" ] || die "no automation key at $key; run 'vagrant provision control' from the host"

log "installing provision (make setup)"
export DEBIAN_FRONTEND=noninteractive
# make is not in the box; `make setup` (scripts/setup.sh) installs the rest:
# the Debian packages it needs, .venv, and provision with its test tools.
if ! command -v make >/dev/null; then
    apt-get update -q
    apt-get install -y -q make
fi
make setup
# The venv and package metadata were written as root; the vagrant user runs them.
chown -R "$user:$user" "$repo"
as_user .venv/bin/provision --version

log "recording SSH host keys in $known_hosts"
scanned=$(mktemp)
one=$(mktemp)
trap 'rm -f "$scanned" "$one"' EXIT
for address in $PROVISION_MANAGED_ADDRESSES; do
    # A host that is still booting refuses connections: wait up to 5 minutes.
    for _ in $(seq 60); do
        ssh-keyscan -T 5 -t ed25519,ecdsa,rsa "$address" 2>/dev/null | grep -v '^#' >"$one" || true
        [ -s "$one" ] && break
        sleep 5
    done
    [ -s "$one" ] || die "no SSH host key from $address after 5 minutes; is it up? (vagrant status)"
    cat "$one" >>"$scanned"
done
# Replace the whole file: a host rebuilt with `vagrant destroy/up` has new keys.
install -d -m 0700 -o "$user" -g "$user" "$(dirname "$known_hosts")"
install -m 0644 -o "$user" -g "$user" "$scanned" "$known_hosts"

log "running $playbook against inventories/vagrant"
# ANSIBLE_CONFIG explicitly: Ansible ignores ansible.cfg in a world-writable
# working directory, which /vagrant is under some synced folder types.
as_user env ANSIBLE_CONFIG="$repo/ansible.cfg" \
    .venv/bin/ansible-playbook -i inventories/vagrant "$playbook"
