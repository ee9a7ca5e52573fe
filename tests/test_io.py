"""HDF5 store: round trips, safe appends, interrupted writes, corruption, schema versions."""

import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

import phasetools.theory as th
from phasetools.io import (SCHEMA_VERSION, CorruptFileError, IncompleteResultError, SchemaVersionError, StoreError,
                           file_provenance, find, list_results, load, save, save_many)
from phasetools.results import deep_equal


def every_theory_result():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(64, 2))
    Y = X * [0.9, 0.8] + 0.5 * rng.normal(size=(64, 2))
    with pytest.warns(th.MisalignmentWarning):
        emp = th.empirical_modes(3, X, Y, gamma=0.32, convention="paper")
    return {
        "critical_scalar": th.critical_points(3, 1.0),
        "critical_array": th.critical_points(4, np.linspace(0.1, 2, 7), a=2.0, convention="paper"),
        "landscape_scalar": th.landscape(3, 0.8, 0.32, convention="paper"),
        "landscape_absent": th.landscape(3, 1.0, 0.9),
        "landscape_array_width": th.landscape(3, 1.0, [0.1, 0.3, 0.6], width=2),
        "landscape_2d": th.landscape(3, np.array([[0.5], [1.0]]), np.array([[0.05, 0.2, 0.5]])),
        "modes_no_gamma": th.modes(3, [3, 2, 1, 0.5]),
        "modes_gamma": th.modes(3, [3, 2, 1, 0.5], gamma=0.15),
        "modes_n2": th.modes(2, [3.0, 1.0], gamma=1.5),
        "phase_diagram": th.phase_diagram(3, [0.9, 0.8], np.linspace(0, 0.5, 51), convention="paper"),
        "nonaligned": th.nonaligned_critical_points(3, np.diag([1.0, 3.0]), [1.0, 1.0]),
        "empirical": emp,
    }


@pytest.fixture(scope="module")
def results():
    return every_theory_result()


def test_every_result_round_trips(tmp_path, results):
    path = tmp_path / "all.h5"
    names = save_many(results.values(), path, names=list(results))
    assert names == list(results)
    for name, r in results.items():
        back = load(path, name)
        assert type(back) is type(r)
        assert back == r, name
        assert deep_equal(back.config, r.config)
        assert back.stats == r.stats and back.seeds == r.seeds
    info = {i.name: i for i in list_results(path)}
    assert all(i.complete for i in info.values())
    assert info["modes_gamma"].kind == "Modes"
    assert info["landscape_scalar"].config["convention"]["name"] == "paper"


def test_to_hdf5_from_hdf5_in_memory_and_file_agree(tmp_path, results):
    r = results["phase_diagram"]
    with h5py.File("mem.h5", "w", driver="core", backing_store=False) as f:
        r.to_hdf5(f.create_group("x"))
        in_memory = type(r).from_hdf5(f["x"])
    save(r, tmp_path / "f.h5", name="x")
    assert in_memory == load(tmp_path / "f.h5", "x") == r


def test_dimension_scales_and_units(tmp_path, results):
    path = tmp_path / "d.h5"
    save(results["phase_diagram"], path, name="pd")
    with h5py.File(path, "r") as f:
        g = f["results/pd"]
        E = g["energies"]
        assert [d.label for d in E.dims] == ["gamma", "state"]
        assert E.dims[0][0].name == g["gammas"].name   # attached coordinate scale
        assert E.attrs["units"] == "energy[convention]"
        assert g["gammas"].attrs["units"] == "coupling[convention]"


def test_provenance_on_file_and_result(tmp_path, results):
    path = tmp_path / "p.h5"
    save(results["critical_scalar"], path, command="unit-test call")
    prov = file_provenance(path)
    assert prov["schema_version"] == SCHEMA_VERSION and prov["format"] == "phasetools"
    for key in ("created_utc", "phasetools_version", "python_version", "numpy_version", "scipy_version",
                "sympy_version", "numba_version", "h5py_version", "platform", "git_commit"):
        assert key in prov
    assert prov["command"] == "unit-test call"
    assert prov["created_utc"].endswith("+00:00")
    assert list_results(path)[0].command == "unit-test call"


def test_append_keeps_earlier_results_and_names_are_unique(tmp_path, results):
    path = tmp_path / "a.h5"
    n1 = save(results["critical_scalar"], path)
    n2 = save(results["critical_array"], path)
    assert (n1, n2) == ("criticalpoints_0001", "criticalpoints_0002")
    assert load(path, n1) == results["critical_scalar"]
    with pytest.raises(StoreError, match="already exists"):
        save(results["critical_scalar"], path, name=n1)
    assert [i.name for i in list_results(path)] == [n1, n2]
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_find_by_configuration(tmp_path):
    path = tmp_path / "f.h5"
    save_many([th.landscape(3, 0.8, g, convention="paper") for g in (0.29, 0.32, 0.35)]
              + [th.landscape(4, 0.8, 0.32)], path)
    assert find(path, "Landscape", gamma=0.32, convention="paper") == ["landscape_0002"]
    assert find(path, n_layers=4) == ["landscape_0004"]
    assert len(find(path, "Landscape")) == 4 and find(path, "Modes") == []
    r = load(path, find(path, gamma=0.35)[0])
    assert r.gamma == 0.35


def test_load_needs_a_name_for_many(tmp_path, results):
    path = tmp_path / "m.h5"
    save_many([results["critical_scalar"], results["modes_gamma"]], path)
    with pytest.raises(StoreError, match="holds 2 results"):
        load(path)
    with pytest.raises(StoreError, match="no result named"):
        load(path, "nope")


def test_incomplete_group_is_reported_and_others_load(tmp_path, results):
    path = tmp_path / "i.h5"
    save(results["critical_scalar"], path, name="good")
    with h5py.File(path, "a") as f:           # a writer that died before its marker
        g = f["results"].create_group("partial")
        g.attrs["kind"] = "Landscape"
        g.attrs["complete"] = False
    info = {i.name: i for i in list_results(path)}
    assert info["good"].complete and not info["partial"].complete
    with pytest.raises(IncompleteResultError, match="partial.*incomplete"):
        load(path, "partial")
    assert load(path, "good") == results["critical_scalar"]
    assert find(path) == ["good"]


WRITER = textwrap.dedent("""
    import sys, numpy as np
    import phasetools.theory as th
    from phasetools.io import save
    path = sys.argv[1]
    big = th.landscape(3, 1.0, np.linspace(0.01, 0.6, 400_000))
    print("ready", flush=True)
    for i in range(1000):
        save(big, path)
""")


def test_killed_writer_never_damages_the_file(tmp_path, results):
    path = tmp_path / "k.h5"
    save(results["modes_gamma"], path, name="first")
    with subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.5)                   # let it be in the middle of some write
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    infos = list_results(path)            # the file opens and lists cleanly
    assert infos[0].name == "first" and all(i.complete for i in infos)
    assert load(path, "first") == results["modes_gamma"]
    for i in infos[1:]:
        assert load(path, i.name).b_min.shape == (400_000,)
    # a temporary copy left behind by the killed writer, if any, holds an incomplete result
    for tmp in tmp_path.glob(".k.h5.*.tmp"):
        try:
            partial = [i for i in list_results(tmp) if not i.complete]
        except CorruptFileError:
            continue
        for i in partial:  # a group cut mid-write is incomplete, or damaged when its header was cut too
            with pytest.raises(CorruptFileError if i.damage else IncompleteResultError):
                load(tmp, i.name)


def test_truncated_copy_is_detected(tmp_path, results):
    path = tmp_path / "t.h5"
    save(th.landscape(3, 1.0, np.linspace(0.01, 0.6, 50_000)), path, name="big")
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match="cut.h5"):
        load(cut, "big")
    with pytest.raises(CorruptFileError, match="cut.h5"):
        save(results["critical_scalar"], cut)        # refuses to append to a damaged file
    assert cut.stat().st_size == len(data) // 2      # and leaves it untouched


def test_flipped_bytes_fail_the_checksum(tmp_path):
    path = tmp_path / "c.h5"
    values = np.linspace(0.01, 0.6, 20_000)
    save(th.landscape(3, 1.0, values), path, name="x")
    with h5py.File(path, "r") as f:
        offset = f["results/x/b_min"].id.get_offset() or f["results/x/b_min"].id.get_chunk_info(0).byte_offset
    raw = bytearray(path.read_bytes())
    for k in range(64):
        raw[offset + 100 + k] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match=r"c.h5.*/results/x"):
        load(path, "x")


def test_newer_schema_version_is_refused(tmp_path, results):
    path = tmp_path / "v.h5"
    save(results["critical_scalar"], path, name="x")
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaVersionError, match=f"schema_version {SCHEMA_VERSION + 1}.*upgrade phasetools"):
        load(path, "x")
    with pytest.raises(SchemaVersionError):
        save(results["critical_scalar"], path)


def test_not_a_phasetools_file(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["x"] = 1
    with pytest.raises(StoreError, match="not a phasetools results file"):
        list_results(path)
    with pytest.raises(StoreError, match="no such file"):
        load(tmp_path / "missing.h5")


def test_no_pickle_in_the_io_layer():
    """Nothing the package reads is unpickled: no pickle/cloudpickle load anywhere, no
    ``allow_pickle=True``. (Pickling *out* is allowed: rare/_executor.py dumps an engine once
    to check, before any work, that a process pool or Dask can ship it.)"""
    import pathlib
    import re

    import phasetools

    root = pathlib.Path(phasetools.__file__).parent
    reading = re.compile(r"pickle\.(load|loads|Unpickler)\b|allow_pickle\s*=\s*True|pd\.read_pickle")
    for py in root.rglob("*.py"):
        text = py.read_text()
        assert not reading.search(text), (py, reading.search(text))
        if "import pickle" in text or "cloudpickle" in text:
            assert py.relative_to(root).as_posix() == "rare/_executor.py", py
