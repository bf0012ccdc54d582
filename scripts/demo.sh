#!/usr/bin/env bash
# The main job of provision on the built-in lab, in a few screens (what `make demo` runs):
#
#   1. the lab: four real Debian hosts on this machine (booted if not up yet);
#   2. a first compliance run: each host's score, and the controls that fail and why;
#   3. the baseline (playbooks/site.yml) rolled out in waves: a canary site, then batches;
#   4. a second compliance run: every host at 100 %, and the HTML report to open.
#
# Run it again on a running lab: the rollout then changes nothing and both runs
# are at 100 %. Each step prints the command it runs, so it can be typed by hand.
#
#   bash scripts/demo.sh        (after `make setup`; `make demo` does both)
set -euo pipefail

cd "$(dirname "$0")/.."
PROVISION=${PROVISION:-.venv/bin/provision}
REPORTS=.provision/reports
started=$(date +%s)

step() { printf '\n\033[1m%s\033[0m\n' "$*"; }
# Print the command as a user would type it, then run it; its exit status is returned.
run() {
  printf '$ provision %s\n' "$*"
  "$PROVISION" "$@"
}
# Like run, but an exit status in the list given first is expected, not a failure.
run_expecting() {
  local allowed=$1 status=0
  shift
  run "$@" || status=$?
  if [[ " $allowed " != *" $status "* ]]; then
    echo "demo: 'provision $*' exited $status" >&2
    exit "$status"
  fi
  return 0
}

step "0. Is this machine fit to be a control node?"
if "$PROVISION" doctor >/dev/null 2>&1; then
  echo "provision doctor: every check passes"
else
  run doctor
fi

step "1. The lab: real Debian hosts (systemd-nspawn containers with sshd) on this machine"
if "$PROVISION" lab status --json 2>/dev/null | grep -q '"state": "up"'; then
  run lab status
else
  run lab up
fi

step "2. Audit the lab against the standard (read-only: one evidence pass per host)"
# 6 = some host is below the standard: expected on fresh hosts.
run_expecting "0 6" compliance run
first=$("$PROVISION" compliance runs --json | "${PROVISION%/*}/python" -c \
  'import json, sys; print(max(run["id"] for run in json.load(sys.stdin)))')
echo
run compliance show "$first" --failing

step "3. Bring the hosts to the standard: the baseline in waves, a canary site first"
run rollout site.yml --canary DHK-KAL-NAG-S01 --batch 2 --yes

step "4. Audit again: every host at 100 %, and the report for people"
run compliance run --report-dir "$REPORTS" --format html,json
report=$(ls -t "$REPORTS"/*.html | head -n 1)

elapsed=$(($(date +%s) - started))
step "Done in $((elapsed / 60)) min $((elapsed % 60)) s."
cat <<EOF
The HTML report (one file, works offline):
  $PWD/$report
Open it in a browser on this machine (chromium $PWD/$report), or copy it to
your PC first: scp root@$(hostname -f 2>/dev/null || hostname):$PWD/$report .

The lab stays up. Next:
  provision runs list                    the rollout just made, wave by wave
  provision compliance drift             what changed between the two audits
  provision lab ssh dhk-kal-lab01        a shell on a lab PC
  provision lab down                     when done
EOF
