#!/bin/bash
# Runs as root on each managed host (dhk-*), from the Vagrantfile.
# Trusts the control node's automation key for the vagrant user, the way
# `provision bootstrap` trusts it on a real host. Safe to run again: the key is
# added once.
set -euo pipefail

: "${PROVISION_PUBLIC_KEY:?the Vagrantfile passes the control node public key}"

user=vagrant
ssh_dir=$(getent passwd "$user" | cut -d: -f6)/.ssh
authorized_keys=$ssh_dir/authorized_keys

install -d -m 0700 -o "$user" -g "$user" "$ssh_dir"
touch "$authorized_keys"
chown "$user:$user" "$authorized_keys"
chmod 0600 "$authorized_keys"
if grep -qxF "$PROVISION_PUBLIC_KEY" "$authorized_keys"; then
    echo "==> control node key already trusted on $(hostname)"
else
    printf '%s\n' "$PROVISION_PUBLIC_KEY" >>"$authorized_keys"
    echo "==> control node key trusted on $(hostname)"
fi
