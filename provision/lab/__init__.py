"""The built-in lab: real Debian hosts booted with systemd inside systemd-nspawn."""
