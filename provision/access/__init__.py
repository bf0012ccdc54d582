"""Access to hosts: first contact (bootstrap), preflight sweeps, the control key, secrets."""
