"""Files written before a field was renamed still load under the new name."""

import json

import h5py
from phasetools import io
from phasetools.theory import critical_points


def _rename_stored_field(path, name, old, new):
    with h5py.File(path, "r+") as f:
        g = f["results"][name]
        types = json.loads(g.attrs["__types__"])
        types[old] = types.pop(new)
        g.attrs["__types__"] = json.dumps(types)
        if new in g.attrs:
            g.attrs[old] = g.attrs[new]
            del g.attrs[new]
        if new in g:
            g.move(new, old)
        # re-seal: the file stays valid, only written as an older version would have named it
        from phasetools.io._verify import DIGEST_ATTR, attrs_digest
        if DIGEST_ATTR in g.attrs:
            g.attrs[DIGEST_ATTR] = attrs_digest(g)


def test_critical_points_written_with_P_names_load_as_lam(tmp_path):
    cp = critical_points(3, 0.8, convention="paper")
    path = tmp_path / "old.h5"
    name = io.save(cp, path)
    for new, old in (("lam_c", "P_c"), ("lam_sp", "P_sp")):
        _rename_stored_field(path, name, old, new)
    back = io.load(path, name)
    assert back.lam_c == cp.lam_c and back.lam_sp == cp.lam_sp
