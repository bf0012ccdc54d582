"""A rollout's vars_file (how portal deploys hand the register to Ansible) reaches the
play as extravars, is recorded by path only, and is kept by a retry."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from provision.infra.store import open_store
from provision.rollout import RolloutOptions, plan_retry, plan_rollout, run_rollout
from provision.settings import load_settings
from tests.helpers.local import LOCAL_HOST
from tests.helpers.workspace import make_workspace

PLAYBOOK = """\
- name: Write the variable
  hosts: all
  gather_facts: false
  tasks:
    - name: Write it
      ansible.builtin.copy:
        content: "{{ portal_test_value }}"
        dest: "{{ out }}/{{ inventory_hostname }}"
        mode: "0644"
    - name: Fail on h2
      ansible.builtin.fail:
        msg: on purpose
      when: inventory_hostname == 'h2'
"""


@pytest.mark.slow
def test_vars_file_reaches_the_play_and_is_recorded_by_path(tmp_path: Path) -> None:
    workspace = make_workspace(tmp_path / "workspace")
    folder = workspace / "inventories" / "lab"
    folder.mkdir(parents=True)
    out = tmp_path / "out"
    out.mkdir()
    hosts = {
        h: {
            **LOCAL_HOST,
            "out": str(out),
        }
        for h in ("h1", "h2")
    }
    (folder / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    settings = load_settings(workspace=workspace, environ={})
    playbook = tmp_path / "write.yml"
    playbook.write_text(PLAYBOOK)
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text("portal_test_value: from-the-vars-file\n")

    plan = plan_rollout(settings, RolloutOptions(str(playbook), "", vars_file=str(vars_file)))
    result = run_rollout(settings, plan)
    assert (out / "h1").read_text() == "from-the-vars-file"
    assert result.results["h2"].outcome == "failed"
    with open_store(settings) as store:
        run = store.get_run(result.run_id)
    assert run.options["vars_file"] == str(vars_file)
    assert "from-the-vars-file" not in str(run.options)

    (out / "h2").unlink()
    retry = plan_retry(settings, result.run_id, ["failed"])
    assert retry.options.vars_file == str(vars_file)
    run_rollout(settings, retry)
    assert (out / "h2").read_text() == "from-the-vars-file"
