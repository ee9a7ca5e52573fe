"""A results file is data, never code; the kernel cache is private.

Code planted in the strings of stored results must never run (load, show, plot, replay);
the folder numba loads compiled kernels from must be writable by its owner only.
"""

import os
import stat

import pytest

from phasetools.langevin import _codegen

# -- the kernel cache folder -------------------------------------------------------------


def test_cache_dir_is_created_owner_only(tmp_path, monkeypatch):
    monkeypatch.setenv("PHASETOOLS_CACHE_DIR", str(tmp_path / "new"))
    path = _codegen.cache_dir()
    assert path == tmp_path / "new" / "kernels"
    for folder in (path, path.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@pytest.mark.parametrize("which", ["kernels", "base"])
@pytest.mark.parametrize("mode", [0o777, 0o770, 0o1777, 0o702])
def test_cache_dir_writable_by_others_is_refused(tmp_path, monkeypatch, which, mode):
    monkeypatch.setenv("PHASETOOLS_CACHE_DIR", str(tmp_path / "c"))
    path = _codegen.cache_dir()
    os.chmod(path if which == "kernels" else path.parent, mode)
    with pytest.raises(RuntimeError, match="writable by group or others.*PHASETOOLS_CACHE_DIR"):
        _codegen.cache_dir()


def test_kernel_load_refuses_a_shared_cache(tmp_path, monkeypatch):
    from phasetools.langevin import double_well

    monkeypatch.setenv("PHASETOOLS_CACHE_DIR", str(tmp_path))
    (tmp_path / "kernels").mkdir(mode=0o700)
    os.chmod(tmp_path / "kernels", 0o777)
    source = _codegen.kernel_source(double_well()) + "\n# never loaded before\n"
    with pytest.raises(RuntimeError, match="PHASETOOLS_CACHE_DIR"):
        _codegen._load(_codegen.module_name(source), source)


@pytest.mark.skipif(not hasattr(os, "getuid") or os.getuid() != 0, reason="chown needs root")
def test_cache_dir_owned_by_another_user_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("PHASETOOLS_CACHE_DIR", str(tmp_path / "c"))
    path = _codegen.cache_dir()
    os.chown(path, 65534, 65534)
    with pytest.raises(RuntimeError, match="owned by another user.*PHASETOOLS_CACHE_DIR"):
        _codegen.cache_dir()


def test_xdg_cache_home_is_honoured(tmp_path, monkeypatch):
    monkeypatch.delenv("PHASETOOLS_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _codegen.cache_dir() == tmp_path / "xdg" / "phasetools" / "kernels"
    assert stat.S_IMODE((tmp_path / "xdg" / "phasetools").stat().st_mode) == 0o700


def test_relative_xdg_cache_home_is_ignored(tmp_path, monkeypatch):
    monkeypatch.delenv("PHASETOOLS_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _codegen.cache_dir() == tmp_path / ".cache" / "phasetools" / "kernels"


def test_env_cache_dir_wins_over_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("PHASETOOLS_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _codegen.cache_dir() == tmp_path / "mine" / "kernels"
