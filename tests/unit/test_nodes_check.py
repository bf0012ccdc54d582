"""Reading a node's answer, and refusing a node that may not take a shard."""

from __future__ import annotations

import pytest

from provision.nodes import check
from provision.nodes.check import NodeCheck, NodeNotReadyError, VersionSkewError

ANSWER = """\
cores=4
mem_kb=8047616
disk_free_kb=51200000
worker=yes
ansible_core={core}
ansible_runner={runner}
mitogen={mitogen}
worker_rc=0
info: {{cpu_count: 4, errors: [], mem_in_bytes: 8240758784, runner_version: {runner}, uuid: u-1}}
reach:gaz-003-lab01=0:
reach:gaz-003-lab02=255:ssh: connect to host 10.1.2.11 port 22: No route to host
"""


def answer(core: str = "", runner: str = "", mitogen: str = "0.3.54") -> str:
    control = check.control_versions()
    return ANSWER.format(
        core=core or control["ansible-core"],
        runner=runner or control["ansible-runner"],
        mitogen=mitogen,
    )


def test_the_probe_answer_is_read() -> None:
    got = check._parse("gazipur", "gaz-001-fs01", answer(), served=12)
    assert got.ready and got.reachable and got.worker
    assert (got.cpu_cores, got.memory_mb, got.disk_free_mb) == (4, 7859, 50000)
    assert got.worker_info["uuid"] == "u-1"
    assert got.ansible_core == check.control_versions()["ansible-core"]
    assert [(s.host, s.ok) for s in got.sites] == [
        ("gaz-003-lab01", True),
        ("gaz-003-lab02", False),
    ]
    assert "No route to host" in got.sites[1].message
    assert got.skew(check.control_versions()) == []
    check.refuse_unready([got])


def test_version_skew_names_both_versions_and_what_to_do() -> None:
    control = check.control_versions()
    got = check._parse("gazipur", "gaz-001-fs01", answer(core="2.16.3"), served=1)
    with pytest.raises(VersionSkewError) as caught:
        check.refuse_unready([got])
    assert f"ansible-core 2.16.3 (control node {control['ansible-core']})" in caught.value.message
    assert "ansible-runner" not in caught.value.message
    assert (
        caught.value.hint
        == "install the control node's versions on it with provision nodes setup gazipur"
    )


def test_a_node_without_a_worker_or_unreachable_is_not_ready() -> None:
    bare = check._parse("g", "h", "cores=2\nmem_kb=1024\ndisk_free_kb=1024\nworker=no\n", served=1)
    assert bare.reachable and not bare.ready
    with pytest.raises(NodeNotReadyError, match="no worker set up"):
        check.refuse_unready([bare])
    broken = check._parse("g", "h", answer().replace("worker_rc=0", "worker_rc=1"), served=1)
    assert not broken.worker and "worker-info failed" in broken.message
    down = NodeCheck("g", "h", reachable=False, message="timed out")
    with pytest.raises(NodeNotReadyError, match="cannot be reached: timed out"):
        check.refuse_unready([down])
    check.refuse_unready([down], allow_unreachable=True)


def test_the_sample_is_spread_over_the_served_hosts() -> None:
    hosts = [f"h{i}" for i in range(10)]
    assert check.sample(hosts, 3) == ["h0", "h4", "h9"]
    assert check.sample(hosts, 1) == ["h0"]
    assert check.sample(hosts[:2], 5) == ["h0", "h1"]
    assert check.sample(hosts, 0) == []


def test_a_node_runs_fast_only_with_the_control_node_s_own_mitogen() -> None:
    got = check._parse("gazipur", "gaz-001-fs01", answer(mitogen="0.3.54"), served=1)
    assert got.mitogen == "0.3.54"
    assert got.fast("0.3.54")
    assert not got.fast("0.3.55")  # another release: plain, and not refused
    assert not got.fast(None)  # a control node without mitogen runs plain everywhere
    without = check._parse("gazipur", "gaz-001-fs01", answer(mitogen=""), served=1)
    assert without.mitogen == "" and not without.fast("0.3.54")
    check.refuse_unready([without])  # mitogen is never a reason to refuse a node
