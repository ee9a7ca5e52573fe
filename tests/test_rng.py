"""The shared randomness module (``phasetools._rng``) and the cache keys of the kernels.

Seed handling: one normalisation of ``rng=`` (entropy, SeedSequence, Generator) and one
encoding of ``seeds``. Cache keys: an edit of a module a kernel calls (the generator)
must give a recompiled kernel, never numba's stale machine code.
"""

import importlib
import os
import sys

import numpy as np
import pytest

from phasetools import _numba, _rng
from phasetools.langevin import _codegen, double_well, simulate

BAD_RNG = [(-1, "rng must be an int >= 0"), (True, "rng must be None"), (1.5, "rng must be None"),
           ("7", "rng must be None")]


def test_entropy_of_each_kind():
    assert _rng.entropy_of(7) == 7
    assert _rng.entropy_of(np.int64(7)) == 7
    seq = np.random.SeedSequence(7)
    assert _rng.entropy_of(seq) == int.from_bytes(seq.generate_state(4, dtype=np.uint32).tobytes(), "little")
    assert _rng.entropy_of(np.random.default_rng(3)) == int(np.random.default_rng(3).integers(0, 2**63))
    assert _rng.entropy_of(None) != _rng.entropy_of(None)


def test_seed_sequence_is_consistent_with_entropy_of():
    seq = np.random.SeedSequence(5).spawn(2)[1]
    assert _rng.seed_sequence(seq) is seq  # passes through with its spawn key
    assert _rng.seed_sequence(11).entropy == 11
    assert _rng.seed_sequence(11).spawn_key == ()
    # a Generator gives the sequence of the entropy it records
    assert _rng.seed_sequence(np.random.default_rng(3)).entropy == _rng.entropy_of(np.random.default_rng(3))
    # the streams the protocols spawned before (SeedSequence(rng)) are unchanged
    assert (_rng.seed_sequence(11).spawn(1)[0].generate_state(4)
            == np.random.SeedSequence(11).spawn(1)[0].generate_state(4)).all()


def test_generator_keeps_numpy_streams():
    g = np.random.default_rng(0)
    assert _rng.generator(g) is g
    assert _rng.generator(4).random() == np.random.default_rng(4).random()
    seq = np.random.SeedSequence(9)
    assert _rng.generator(seq).random() == np.random.default_rng(np.random.SeedSequence(9)).random()
    assert isinstance(_rng.generator(None), np.random.Generator)


def test_seeds_record_rebuilds_the_sequence():
    seq = np.random.SeedSequence(123).spawn(3)[2].spawn(1)[0]
    rec = _rng.seeds_record(seq)
    assert rec == (123, 2, 0)
    assert all(type(v) is int for v in rec)
    again = np.random.SeedSequence(rec[0], spawn_key=rec[1:])
    assert (again.generate_state(4) == seq.generate_state(4)).all()
    with pytest.raises(ValueError, match="seq must be a numpy.random.SeedSequence"):
        _rng.seeds_record(123)


@pytest.mark.parametrize("bad, match", BAD_RNG)
@pytest.mark.parametrize("fn", [_rng.entropy_of, _rng.seed_sequence, _rng.generator])
def test_bad_rng_is_refused(fn, bad, match):
    with pytest.raises(ValueError, match=match):
        fn(bad)


def test_langevin_reexports_the_shared_entropy_of():
    import phasetools.langevin as langevin

    assert langevin.entropy_of is _rng.entropy_of


# -- cache keys ------------------------------------------------------------------------

GEN = '''
from phasetools._numba import jit


@jit
def value():
    return {value}
'''

KERN = '''
from phasetools._numba import jit
from gen_mod_{tag} import value


@jit
def kernel():
    return value() + 1
'''


def _import_fresh(*names):
    for name in names:
        sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return [importlib.import_module(name) for name in names]


def test_jit_cache_follows_an_edit_of_a_called_module(tmp_path, monkeypatch):
    """numba's disk cache checks only the kernel's own file: without the dependency hash in
    the cache folder, the second import loads the kernel compiled against value() == 1."""
    tag = f"{os.getpid()}_{abs(hash(str(tmp_path))) % 10**8}"
    gen_name, kern_name = f"gen_mod_{tag}", f"kern_mod_{tag}"
    gen = tmp_path / f"{gen_name}.py"
    gen.write_text(GEN.format(value=1))
    (tmp_path / f"{kern_name}.py").write_text(KERN.format(tag=tag))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(_numba, "KERNEL_DEPENDENCIES", (*_numba.KERNEL_DEPENDENCIES, str(gen)))

    _, kern = _import_fresh(gen_name, kern_name)
    assert kern.kernel() == 2
    first = kern.kernel.stats.cache_path
    _, kern = _import_fresh(gen_name, kern_name)  # unchanged sources: loaded from the disk cache
    assert kern.kernel() == 2
    assert sum(kern.kernel.stats.cache_hits.values()) == 1

    gen.write_text(GEN.format(value=41))  # edit the called module only
    _, kern = _import_fresh(gen_name, kern_name)
    assert kern.kernel.stats.cache_path != first
    assert kern.kernel() == 42
    assert sum(kern.kernel.stats.cache_hits.values()) == 0


def test_package_kernels_cache_in_a_dependency_folder():
    path = _rng.uniform.stats.cache_path
    assert os.path.basename(path) == f"deps-{_numba.dependency_hash()}"


def test_dependency_hash_covers_each_file(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 1\n")
    h = _numba.dependency_hash([str(a), str(b)])
    assert h == _numba.dependency_hash([str(a), str(b)])
    b.write_text("y = 2\n")
    assert _numba.dependency_hash([str(a), str(b)]) != h


def _package_copy(tmp_path):
    """The files of GENERATED_DEPENDENCIES copied into a folder laid out like the package."""
    for rel in _codegen.GENERATED_DEPENDENCIES:
        dest = tmp_path / "pkg" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((_numba._PACKAGE / rel).read_bytes())
    return tmp_path / "pkg"


def test_generated_kernel_name_follows_an_edit_of_the_generator(tmp_path, monkeypatch):
    """Editing (a copy of) ``_rng.py`` renames the generated kernel; the new one compiles and runs."""
    monkeypatch.setenv("PHASETOOLS_CACHE_DIR", str(tmp_path / "cache"))
    pkg = _package_copy(tmp_path)
    monkeypatch.setattr(_numba, "_PACKAGE", pkg)
    potential = double_well()
    source = _codegen.kernel_source(potential)
    before = _codegen.module_name(source)
    assert _codegen.module_name(source) == before
    with open(pkg / "_rng.py", "a") as f:
        f.write("\n# an edit of the generator\n")
    after = _codegen.module_name(source)
    assert after != before
    with open(pkg / "langevin" / "_codegen.py", "a") as f:
        f.write("\n# an edit of the intrinsics\n")
    assert _codegen.module_name(source) not in (before, after)

    module = _codegen.kernel_module(potential)
    assert module.__name__ == _codegen.module_name(source)
    assert (tmp_path / "cache" / "kernels" / f"{module.__name__}.py").exists()
    ens = simulate(potential, [-1.0], temperature=0.5, dt=0.01, n_traj=8, max_steps=200, rng=3)
    assert ens.n_traj == 8 and np.isfinite(ens.final).all()
