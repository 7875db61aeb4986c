"""WORKERS=auto inside a container: the CPU limit is read from cgroup v2 and v1 trees alike (fake
trees here, laid out as the kernel and Docker lay them out)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app.core.workers import cgroup_cpu_quota, cgroup_cpuset_size, parse_cpu_list, usable_cpus

AFFINITY = len(os.sched_getaffinity(0))


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def _proc_cgroup(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "proc-self-cgroup"
    path.write_text(text)
    return path


V1_PROC = "12:cpuset:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n"


def test_v1_container_quota_is_read_at_the_mount(tmp_path: Path) -> None:
    """Docker on a cgroup v1 host: the container's own cgroup is mounted at /sys/fs/cgroup/cpu,
    while /proc/self/cgroup still names the host's path (no cgroup namespace)."""
    root = tmp_path / "cgroup"
    _write(root, {"cpu,cpuacct/cpu.cfs_quota_us": "150000", "cpu,cpuacct/cpu.cfs_period_us": "100000"})
    proc = _proc_cgroup(tmp_path, V1_PROC)
    assert cgroup_cpu_quota(root, proc) == pytest.approx(1.5)
    assert usable_cpus(root, proc) == min(AFFINITY, 2)  # 1.5 cores: two workers' worth


def test_v1_one_cpu_gives_one_worker(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(root, {"cpu/cpu.cfs_quota_us": "100000", "cpu/cpu.cfs_period_us": "100000"})
    assert usable_cpus(root, _proc_cgroup(tmp_path, V1_PROC)) == 1


def test_v1_host_limit_is_found_below_the_root(tmp_path: Path) -> None:
    """Outside a container the mount is the whole hierarchy: the process's own folder, and its
    ancestors', carry the limits; the root says -1 (none)."""
    root = tmp_path / "cgroup"
    _write(
        root,
        {
            "cpu/cpu.cfs_quota_us": "-1",
            "cpu/cpu.cfs_period_us": "100000",
            "cpu/kubepods/cpu.cfs_quota_us": "300000",  # the pod
            "cpu/kubepods/cpu.cfs_period_us": "100000",
            "cpu/kubepods/c1/cpu.cfs_quota_us": "50000",  # the container, the tightest
            "cpu/kubepods/c1/cpu.cfs_period_us": "100000",
        },
    )
    proc = _proc_cgroup(tmp_path, "3:cpu,cpuacct:/kubepods/c1\n")
    assert cgroup_cpu_quota(root, proc) == pytest.approx(0.5)
    assert usable_cpus(root, proc) == 1


def test_v1_without_limit_leaves_the_affinity(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(root, {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"})
    proc = _proc_cgroup(tmp_path, V1_PROC)
    assert cgroup_cpu_quota(root, proc) is None
    assert usable_cpus(root, proc) == AFFINITY


def test_v1_cpuset_caps_the_count(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(root, {"cpuset/cpuset.cpus": "0", "cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"})
    proc = _proc_cgroup(tmp_path, V1_PROC)
    assert cgroup_cpuset_size(root, proc) == 1
    assert usable_cpus(root, proc) == 1


def test_v2_quota_and_max(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(root, {"cgroup.controllers": "cpuset cpu io memory pids", "cpu.max": "100000 100000"})
    proc = _proc_cgroup(tmp_path, "0::/\n")
    assert cgroup_cpu_quota(root, proc) == pytest.approx(1.0)
    assert usable_cpus(root, proc) == 1
    _write(root, {"cpu.max": "max 100000"})
    assert cgroup_cpu_quota(root, proc) is None
    assert usable_cpus(root, proc) == AFFINITY


def test_v2_nested_limits_take_the_tightest(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    _write(
        root,
        {
            "cgroup.controllers": "cpu",
            "kubepods.slice/cpu.max": "100000 100000",
            "kubepods.slice/pod1/cpu.max": "max 100000",
            "kubepods.slice/pod1/cpuset.cpus.effective": "0-3",
        },
    )
    proc = _proc_cgroup(tmp_path, "0::/kubepods.slice/pod1\n")
    assert cgroup_cpu_quota(root, proc) == pytest.approx(1.0)
    assert cgroup_cpuset_size(root, proc) == 4
    assert usable_cpus(root, proc) == 1


def test_unreadable_or_absent_trees_mean_no_limit(tmp_path: Path) -> None:
    nothing = tmp_path / "none"
    assert cgroup_cpu_quota(nothing, nothing / "cgroup") is None
    assert cgroup_cpuset_size(nothing, nothing / "cgroup") is None
    assert usable_cpus(nothing, nothing / "cgroup") == AFFINITY
    root = tmp_path / "cgroup"
    _write(root, {"cgroup.controllers": "cpu", "cpu.max": "garbage"})
    assert cgroup_cpu_quota(root, _proc_cgroup(tmp_path, "0::/\n")) is None


def test_cpu_list_format() -> None:
    assert parse_cpu_list("0-3,8,10-11") == {0, 1, 2, 3, 8, 10, 11}
    assert parse_cpu_list("5") == {5}
    assert parse_cpu_list("") == set()
