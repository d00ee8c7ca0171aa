"""The worker's backend setup: a private, bounded JAX compilation cache."""

import os
import stat

import pytest

from worker import backend


def test_default_cache_is_under_the_users_cache_not_tmp(monkeypatch, tmp_path):
    monkeypatch.delenv("SEQLAB_JAX_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert backend.jax_cache_dir() == str(tmp_path / "seqlab" / "jax")


def test_private_directory_is_created_0700(tmp_path):
    path = backend.private_directory(str(tmp_path / "a" / "cache"))
    assert path == str(tmp_path / "a" / "cache")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700


@pytest.mark.parametrize("how", ["group_writable", "symlink", "other_owner"])
def test_unsafe_directory_is_not_used(tmp_path, how):
    target = tmp_path / "cache"
    target.mkdir()
    if how == "group_writable":
        target.chmod(0o770)
    elif how == "symlink":
        link = tmp_path / "link"
        link.symlink_to(target)
        target = link
    else:
        if os.getuid() != 0:
            pytest.skip("needs root to give a directory to another user")
        os.chown(target, 65534, 65534)
    with pytest.warns(RuntimeWarning, match="not a private directory"):
        path = backend.private_directory(str(target))
    assert path != str(target)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    os.rmdir(path)


def test_jax_cache_is_bounded(monkeypatch, tmp_path):
    jax = pytest.importorskip("jax")
    before = {
        key: getattr(jax.config, key)
        for key in ("jax_compilation_cache_dir", "jax_compilation_cache_max_size")
    }
    monkeypatch.setenv("SEQLAB_JAX_CACHE", str(tmp_path / "jax"))
    monkeypatch.setenv("SEQLAB_JAX_CACHE_MAX_BYTES", "12345")
    try:
        backend.configure_jax_cache()
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "jax")
        assert jax.config.jax_compilation_cache_max_size == 12345
    finally:
        for key, value in before.items():
            jax.config.update(key, value)
