"""A results file is data, never code; the kernel cache is private.

Code planted in the strings of stored results must never run (load, show, plot, replay);
the folder numba loads compiled kernels from must be writable by its owner only.
"""

import dataclasses
import json
import os
import shutil
import stat

import h5py
import numpy as np
import pytest
import sympy as sp

from phasetools import io, stats, theory
from phasetools.cli import main
from phasetools.langevin import (
    Potential,
    Threshold,
    _codegen,
    chain,
    double_well,
    from_sympy,
    network,
    replay,
    simulate,
)
from phasetools.langevin._expr import order_text, parse_expression
from phasetools.langevin._simulate import _stored_order

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


# -- expressions from text are parsed, never evaluated -----------------------------------



def _payloads(marker):
    """Texts that run ``touch marker`` when evaluated by Python (and so by sympify)."""
    return [f'__import__("os").system("touch {marker}") or x',
            f'x + __import__("os").system("touch {marker}")',
            f"Symbol('x') + Function(\"__import__\")('os').system('touch {marker}')",
            f'(lambda: __import__("os").system("touch {marker}"))()',
            f'x.__class__.__mro__[-1].__subclasses__() or __import__("os").system("touch {marker}")',
            f'Float(__import__("os").system("touch {marker}"))',
            f'Symbol(__import__("os").system("touch {marker}"))',
            f'exp(x, __import__("os").system("touch {marker}"))']


def test_sympify_would_run_the_payload(tmp_path):
    """The threat is real: sympify (which the old replay used) runs the planted code."""
    marker = tmp_path / "pwned"
    sp.sympify(_payloads(marker)[0], locals={"x": sp.Symbol("x")})
    assert marker.exists()


def test_parser_refuses_code(tmp_path):
    marker = tmp_path / "pwned"
    x = sp.Symbol("x", real=True)
    for text in _payloads(marker):
        for new_symbols in (False, True):
            with pytest.raises(ValueError, match="stop_order"):
                parse_expression(text, [x], new_symbols=new_symbols, what="stop_order")
    assert not marker.exists()


@pytest.mark.parametrize("text, why", [
    ("x.real", "Attribute"), ("x[0]", "Subscript"), ("'x'", "literal str"), ("x if x else x", "IfExp"),
    ("y", "unknown name 'y'"), ("eval(x)", "function 'eval'"), ("exp(x, base=2)", "keyword"),
    ("Symbol('y')", "unknown symbol 'y'"), ("Symbol('x', evaluate=True)", "assumption 'evaluate'"),
    ("Float('1e5; import os')", "decimal number"), ("Rational(1, 0)", "zero denominator"),
    ("Integer('7')", "int literal"), ("2**10**10", "exponent above"), ("1j*x", "literal complex"),
    ("x <= 1", "Compare"), ("[x]", "List"), ("x @ x", "MatMult"), ("", "not an expression"),
    ("(" * 300 + "x" + ")" * 300, "not an expression|nested"),
])
def test_parser_refuses_what_is_not_whitelisted(text, why):
    with pytest.raises(ValueError, match=why):
        parse_expression(text, [sp.Symbol("x")], what="stop_order")


def test_parser_reads_long_sums_and_both_formats():
    xs = sp.symbols("x0:3000", real=True)
    total = sp.Add(*[i * s for i, s in enumerate(xs)])
    assert parse_expression(order_text(total), xs) == total  # srepr: flat, any length
    short = sp.Add(*[i * s for i, s in enumerate(xs[:400])])  # str: as long as sympify could read
    assert parse_expression(str(short), xs) == short
    x = sp.Symbol("x", real=True)
    assert parse_expression("x^2/4 - sqrt(x)*exp(-x) + Abs(x) + pi", [x]) == x**2 / 4 - sp.sqrt(x) * sp.exp(-x) + sp.Abs(x) + sp.pi


@pytest.mark.parametrize("make", [
    double_well, lambda: chain(3, 0.8, 0.32), lambda: network(2, 2, np.eye(2), [[1.0, 0.3], [0.2, 0.5]], 0.1),
    lambda: network(2, 2, np.eye(2), [[1.0, 0.3], [0.2, 0.5]], 0.1, order="sv2")])
def test_stored_orders_read_back_exactly(make):
    """New files (srepr) rebuild the order exactly; old files (str) as sympify read them."""
    pot = make()
    assert sp.srepr(_stored_order(pot, order_text(pot.order))) == sp.srepr(pot.order)
    names = {str(s): s for s in (*pot.variables, *pot.params)}
    legacy = str(pot.order)
    assert sp.srepr(_stored_order(pot, legacy)) == sp.srepr(sp.sympify(legacy, locals=names))


def test_network_order_is_stored_without_rounding():
    """``str`` printed the order's float coefficients with 15 digits, so a replay stopped on a
    slightly different order parameter; the stored srepr text is exact."""
    pot = network(2, 1, np.eye(2), [[1.0, 0.3], [0.2, 0.5]], 0.1)
    ens = simulate(pot, np.zeros(pot.dim) + 0.1, temperature=0.05, dt=0.01, n_traj=2, max_steps=5,
                   stop=Threshold(0.5), rng=1)
    assert _stored_order(pot, ens.stop_order) == pot.order
    assert parse_expression(str(pot.order), (*pot.variables, *pot.params)) != pot.order


def test_user_strings_are_parsed_safely(tmp_path):
    marker = tmp_path / "pwned"
    payload = _payloads(marker)[0]
    with pytest.raises(ValueError):
        from_sympy(payload, ["x"])
    x = sp.Symbol("x", real=True)
    for kwargs in (dict(expr=payload, variables=(x,)), dict(expr=x**2, variables=(x,), order=payload),
                   dict(expr=x**2, variables=(x,), end_to_end=[[payload]])):
        with pytest.raises(ValueError):
            Potential("p", **kwargs)
    with pytest.raises(ValueError):
        simulate(double_well(), [-1.0], temperature=0.3, dt=0.01, n_traj=2, max_steps=5,
                 stop=Threshold(1.0, order=payload))
    assert not marker.exists()
    # ordinary text still works, with the same result as before
    pot = from_sympy("k*x**2/2 + 0.5*x**4", ["x"], {"k": 2.0}, order="x")
    assert pot.expr == sp.sympify("k*x**2/2 + 0.5*x**4", locals={"x": pot.variables[0]})
    assert pot.order == pot.variables[0]


# -- planted code in stored results ----------------------------------------------------------


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """Results of three kinds: an escape ensemble, a theory result and two stats results."""
    ens = simulate(double_well(), [-1.0], temperature=0.3, dt=0.01, n_traj=8, max_steps=400,
                   stop=Threshold(0.5), rng=1)
    return [ens, theory.critical_points(3, 0.8), ens.fit(), stats.kaplan_meier(ens.times, ens.censored)]


def _planted(value, payload):
    """``value`` with every string inside it (dict values included) replaced by ``payload``."""
    if isinstance(value, str):
        return payload
    if isinstance(value, dict):
        return {k: _planted(v, payload) for k, v in value.items()}
    return value


def _string_fields(result):
    return [f.name for f in dataclasses.fields(result)
            if isinstance(getattr(result, f.name), (str, dict)) and f.name != "stats" or f.name == "stop_order"]


def _use(path, name, tmp_path):
    """Everything a user does with a stored file; errors are fine, running code is not."""
    try:
        loaded = io.load(path, name)
    except Exception:  # noqa: BLE001 - a clean refusal is what we want
        loaded = None
    calls = [lambda: io.list_results(path), lambda: io.find(path), lambda: main(["show", str(path)]),
             lambda: main(["show", str(path), "--result", name])]
    if loaded is not None:  # the CLI's plot loads first: a refused file never gets further
        calls.append(lambda: main(["plot", str(path), "--result", name, "-o", str(tmp_path / "fig.png")]))
    for call in calls:
        try:
            call()
        except Exception:  # noqa: BLE001
            pass
    if loaded is None:
        return
    if type(loaded).__name__ == "EscapeEnsemble":
        try:
            replay(double_well(), loaded, 0)
        except Exception:  # noqa: BLE001
            pass


def test_planted_fields_never_run(stored, tmp_path, capsys):
    """Each string field of each result (and each string in its dicts) holds code: saving it
    through the API gives valid checksums, so every reader sees the text itself."""
    marker = tmp_path / "pwned"
    payload = _payloads(marker)[0]
    n = 0
    for result in stored:
        for field in _string_fields(result):
            try:
                bad = dataclasses.replace(result, **{field: _planted(getattr(result, field), payload)})
                path = tmp_path / f"{type(result).__name__}-{field}.h5"
                name = io.save(bad, path)
            except Exception:  # noqa: BLE001 - refused on the way in
                continue
            n += 1
            _use(path, name, tmp_path)
            assert not marker.exists(), f"{type(result).__name__}.{field} ran planted code"
    assert n >= 5  # the EscapeEnsemble's stop_order at least was stored and read back
    capsys.readouterr()


def _string_attrs(path):
    """(object path, attribute name) of every string attribute in the file."""
    found = []
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            for key, value in obj.attrs.items():
                if isinstance(value, (str, bytes)):
                    found.append((name, key))
        visit("/", f)
        f.visititems(visit)
    return found


def _plant_attr(path, obj, key, payload):
    with h5py.File(path, "r+") as f:
        value = f[obj].attrs[key]
        value = value.decode() if isinstance(value, bytes) else value
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            f[obj].attrs[key] = json.dumps(_planted(parsed, payload))
        else:
            f[obj].attrs[key] = payload


def test_planted_attributes_never_run(stored, tmp_path, capsys):
    """Every string attribute of a file (header, groups, nested objects), one at a time,
    replaced by code (inside JSON: every string value): load, show, plot, replay run none.
    The provenance attributes every group repeats (versions, command, ...) are planted in
    the header and the first group only, to keep the test short."""
    marker = tmp_path / "pwned"
    payload = _payloads(marker)[0]
    clean = tmp_path / "clean.h5"
    names = io.save_many(stored, clean)
    attrs = _string_attrs(clean)
    provenance = {key for obj, key in attrs if obj == "/"}
    first = f"results/{names[0]}"
    attrs = [(obj, key) for obj, key in attrs if obj in ("/", first) or key not in provenance]
    assert len(attrs) >= 40
    for i, (obj, key) in enumerate(attrs):
        path = tmp_path / f"planted-{i}.h5"
        shutil.copy(clean, path)
        _plant_attr(path, obj, key, payload)
        owners = [n for n in names if obj.startswith(f"results/{n}")] or names[:1]
        _use(path, owners[0], tmp_path)
        assert not marker.exists(), f"the attribute {key!r} of {obj!r} ran planted code"
    capsys.readouterr()
