"""worker/device.py: what memory a worker publishes."""

from worker import device


def test_the_setting_wins(monkeypatch):
    monkeypatch.setenv("SEQLAB_DEVICE_MEMORY_BYTES", "12345")
    assert device.device()["memory_bytes"] == 12345


def test_without_a_gpu_it_is_the_host_memory(monkeypatch):
    monkeypatch.delenv("SEQLAB_DEVICE_MEMORY_BYTES", raising=False)
    monkeypatch.setattr(device, "gpu_memory_bytes", lambda: None)
    found = device.device()
    assert found == {"device": "cpu", "memory_bytes": device.host_memory_bytes()}
    assert found["memory_bytes"] > 1 << 30


def test_a_cgroup_limit_below_the_host_counts(monkeypatch, tmp_path):
    limit = tmp_path / "memory.max"
    limit.write_text("1048576\n")
    monkeypatch.setattr(device, "CGROUP_MEMORY_MAX", limit)
    assert device.host_memory_bytes() == 1048576
    limit.write_text("max\n")
    assert device.host_memory_bytes() > 1048576


def test_nvidia_smi_memory_is_read_in_mib(monkeypatch, tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 81559\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert device.gpu_memory_bytes() == 81559 * 1024 * 1024
    monkeypatch.setenv("PATH", "/nonexistent")
    assert device.gpu_memory_bytes() is None
