"""The store against damaged and hostile files: attribute checksums, schema validation on load,
clear errors for impossible headers, and `save` refusing damaged, linked and read-only targets.

Every test here failed before the hardening (the bug it checks is named in its docstring).
"""

import json
import os
import stat
from dataclasses import dataclass, field

import h5py
import numpy as np
import pytest

import phasetools.theory as th
from phasetools.cli import main
from phasetools.io import (CorruptFileError, IncompleteResultError, StoreError, atomic_update, file_provenance, find,
                           list_results, load, save)
from phasetools.results import Result, register


@register
@dataclass(frozen=True, eq=False, repr=False)
class HardeningProbe(Result):
    """One field of every storage kind, and a long configuration."""

    n_layers: int
    temperature: float
    options: dict
    x: np.float64
    arr: np.ndarray
    items: tuple = field(default=())

    _config_fields = ("n_layers", "temperature", "options", "arr")


def probe():
    options = {f"option_{k}": list(range(30)) for k in range(12)}  # a covariance-like dict
    return HardeningProbe(n_layers=3, temperature=0.5, options=options, x=np.float64(1.5),
                          arr=np.linspace(0.0, 1.0, 200), items=(0.1, 0.2, 0.3))


@pytest.fixture
def stored(tmp_path):
    path = tmp_path / "r.h5"
    save(probe(), path, name="x")
    return path


def as_schema_v1(path):
    """What a file written before the attribute checksum looks like (version 1, no attrs_sha256)."""
    with h5py.File(path, "a") as f:
        f.attrs["schema_version"] = 1
        for g in f["results"].values():
            if "attrs_sha256" in g.attrs:
                del g.attrs["attrs_sha256"]


# ---------------------------------------------------------------------------------------
# attributes are checksummed
def test_edited_config_attribute_is_corruption(stored):
    """Before: show/find reported n_layers=7 from the edited config while load said 3."""
    with h5py.File(stored, "a") as f:
        cfg = json.loads(f["results/x"].attrs["config"])
        f["results/x"].attrs["config"] = json.dumps({**cfg, "n_layers": 7})
    with pytest.raises(CorruptFileError, match=r"r\.h5: group /results/x.*checksum"):
        load(stored, "x")
    (info,) = list_results(stored)
    assert info.damage and not info.complete and not info.verified
    assert find(stored, "HardeningProbe") == [] and find(stored, n_layers=7) == []


def test_edited_scalar_field_is_corruption(stored):
    """Scalar fields are attributes, which the Fletcher-32 data checksums never covered."""
    with h5py.File(stored, "a") as f:
        f["results/x"].attrs["n_layers"] = 7
    with pytest.raises(CorruptFileError, match="/results/x"):
        load(stored, "x")


def test_schema_v1_file_loads_unverified_and_v2_needs_the_checksum(stored):
    """Files written before the checksum existed load (marked unverified); a v2 group without it is damage."""
    with h5py.File(stored, "a") as f:
        del f["results/x"].attrs["attrs_sha256"]
    with pytest.raises(CorruptFileError, match="attrs_sha256.*missing"):
        load(stored, "x")
    as_schema_v1(stored)
    assert load(stored, "x") == probe()
    (info,) = list_results(stored)
    assert info.complete and not info.verified and not info.damage
    with h5py.File(stored, "a") as f:  # without a checksum, the config attribute is still checked
        cfg = json.loads(f["results/x"].attrs["config"])
        f["results/x"].attrs["config"] = json.dumps({**cfg, "n_layers": 7})
    with pytest.raises(CorruptFileError, match=r"/results/x, field 'n_layers'.*says 7"):
        load(stored, "x")


def test_complete_marker_is_parsed_strictly(stored):
    """Before: complete="no" counted as complete (bool("no") is True)."""
    with h5py.File(stored, "a") as f:
        f["results/x"].attrs["complete"] = "no"
    with pytest.raises(CorruptFileError, match="'complete' is 'no', not a boolean"):
        load(stored, "x")
    (info,) = list_results(stored)
    assert not info.complete and "not a boolean" in info.damage
    with h5py.File(stored, "a") as f:
        f["results/x"].attrs["complete"] = False
    with pytest.raises(IncompleteResultError):
        load(stored, "x")


# ---------------------------------------------------------------------------------------
# values are validated against the schema (files without a checksum rely on this alone)
def _tag(name, tag):
    def edit(g):
        types = json.loads(g.attrs["__types__"])
        types[name] = tag
        g.attrs["__types__"] = json.dumps(types)
    return edit


def _replace(name, **kwargs):
    def edit(g):
        del g[name]
        g.create_dataset(name, **kwargs)
    return edit


def _set(name, value):
    def edit(g):
        g.attrs[name] = value
    return edit


DAMAGE = {
    "unknown tag np:O": (_tag("x", "np:O"), "x", "unknown storage tag 'np:O'"),
    "unknown tag": (_tag("x", "pickle"), "x", "unknown storage tag"),
    "string dataset for an array": (_replace("arr", data=np.array(["a", "b"], dtype=object),
                                             dtype=h5py.string_dtype()), "arr", "dtype"),
    "wrong scalar dtype": (_set("x", np.int32(3)), "x", "int32"),
    "string for an int": (_set("n_layers", "3"), "n_layers", "tag 'int'"),
    "extra dimension": (_replace("items", data=np.ones((3, 2))), "items", "2 dimension"),
    "out of range": (_set("n_layers", -7), "n_layers", "out of range"),
    "negative temperature": (_set("temperature", -1.0), "temperature", "out of range"),
    "declared 1e11 long": (_replace("arr", shape=(10**11,), dtype="f8", chunks=(1000,)), "arr",
                           "declares shape"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_invalid_values_name_file_group_and_field(stored, case):
    """Before: unknown tags, wrong dtypes, extra dimensions, n_layers=-7 loaded silently; a dataset
    declared 10^11 long raised MemoryError."""
    edit, fieldname, text = DAMAGE[case]
    as_schema_v1(stored)
    with h5py.File(stored, "a") as f:
        edit(f["results/x"])
    with pytest.raises(CorruptFileError) as exc:
        load(stored, "x")
    msg = str(exc.value)
    assert "r.h5" in msg and "/results/x" in msg and f"field {fieldname!r}" in msg and text in msg, msg


def test_results_stored_as_a_dataset(tmp_path):
    """Before: AttributeError."""
    path = tmp_path / "d.h5"
    save(probe(), path, name="x")
    with h5py.File(path, "a") as f:
        del f["results"]
        f["results"] = np.arange(3)
    for call in (lambda: list_results(path), lambda: load(path, "x"), lambda: save(probe(), path)):
        with pytest.raises(CorruptFileError, match="/results is a Dataset, not a group"):
            call()


def test_damaged_attribute_values_give_store_errors(tmp_path):
    """Before: damage to attributes escaped as RuntimeError and friends (or was not seen at all).
    Bytes of stored attribute values (times, config JSON, names, kinds) are overwritten with
    junk: every reader either reads cleanly or raises a StoreError; damage inside the result
    group is caught by its attribute checksum."""
    import re

    path = tmp_path / "a.h5"
    save(th.critical_points(3, 1.0), path, name="x")
    raw = path.read_bytes()
    outcomes = []
    for pattern in (rb"20\d\d-\d\d-\d\dT[0-9:]+\+00:00", rb'\{"a": [^}]*\}', rb"phasetools", rb"CriticalPoints"):
        for match in re.finditer(pattern, raw):
            for junk in (b"\xff\xfe", b"\x00"):
                damaged = bytearray(raw)
                damaged[match.start():match.start() + len(junk)] = junk
                path.write_bytes(bytes(damaged))
                for call in (file_provenance, list_results, lambda p: load(p, "x")):
                    try:
                        call(path)
                        outcomes.append("ok")
                    except StoreError:
                        outcomes.append("error")
    assert outcomes.count("error") >= 10


def test_show_reports_damage_in_one_line(stored, capsys):
    with h5py.File(stored, "a") as f:
        f["results/x"].attrs["n_layers"] = 7
    assert main(["show", str(stored)]) == 0
    out = capsys.readouterr().out
    assert "DAMAGED (not loadable)" in out and "checksum" in out


# ---------------------------------------------------------------------------------------
# save refuses damaged, linked-away and read-only targets
def test_save_refuses_a_file_with_a_damaged_group(stored):
    """Before: only the header was checked, so a result was appended to a damaged file."""
    with h5py.File(stored, "a") as f:
        f["results/x"].attrs["n_layers"] = 7
    before = stored.read_bytes()
    with pytest.raises(CorruptFileError, match="/results/x.*Refusing to add"):
        save(probe(), stored, name="y")
    assert stored.read_bytes() == before


def test_save_refuses_flipped_data_bytes(stored):
    with h5py.File(stored, "r") as f:
        offset = f["results/x/arr"].id.get_chunk_info(0).byte_offset
    raw = bytearray(stored.read_bytes())
    raw[offset + 8] ^= 0xFF
    stored.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="/results/x"):
        save(probe(), stored, name="y")


def test_save_writes_through_a_symlink(tmp_path, stored):
    """Before: the link was replaced by a regular file and the target never changed."""
    link = tmp_path / "link.h5"
    link.symlink_to(stored)
    save(probe(), link, name="y")
    assert link.is_symlink() and os.readlink(link) == str(stored)
    assert [i.name for i in list_results(stored)] == ["x", "y"]


def test_save_refuses_a_read_only_file(stored):
    """Before: as root the rename replaced a file of mode 0444."""
    stored.chmod(0o444)
    try:
        with pytest.raises(StoreError, match="read-only"):
            save(probe(), stored, name="y")
        assert [i.name for i in list_results(stored)] == ["x"]
        assert stat.S_IMODE(stored.stat().st_mode) == 0o444
    finally:
        stored.chmod(0o644)


def test_atomic_update_keeps_the_file_on_error(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_update(path) as tmp:
            tmp.write_bytes(b"new")
            raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
    with atomic_update(path) as tmp:
        assert tmp.read_bytes() == b"old"
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new"


def test_one_copy_write_rename_for_every_hdf5_writer():
    """io and sweep each implemented copy-write-rename; one helper now does it."""
    import pathlib

    import phasetools

    root = pathlib.Path(phasetools.__file__).parent
    for sub in ("io", "sweep"):
        for py in (root / sub).glob("*.py"):
            text = py.read_text()
            if py.name != "_atomic.py":
                assert "os.replace(" not in text and "shutil.copy2(" not in text and "os.fsync(" not in text, py
    sweep_text = "".join(p.read_text() for p in (root / "sweep").glob("*.py"))
    assert "from ..io._" not in sweep_text and "io._" not in sweep_text


# ---------------------------------------------------------------------------------------
# listings stay readable
def test_show_lines_are_clipped(stored, capsys):
    """Before: whole dictionaries and arrays of the config were printed on one line."""
    (info,) = list_results(stored)
    line = info.config_summary(width=100)
    assert len(line) <= 100 and "arr=[0, ..., 1] (200)" in line and "options={option_0, option_1, option_10, ...}" in line
    assert main(["show", str(stored)]) == 0
    out = capsys.readouterr().out
    assert max(len(s) for s in out.splitlines()[3:]) <= 160, out
