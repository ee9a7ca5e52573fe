"""The first hour of a new user: visible progress, honest text, readable numbers, a README that works."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from phasetools import _progress
from phasetools._progress import compile_notice, plus_minus, progress, set_notices
from phasetools.cli import main

ROOT = Path(__file__).resolve().parents[1]


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self._tty = tty

    def isatty(self):
        return self._tty


# --------------------------------------------------------------------------- progress off a terminal
def test_progress_prints_a_line_per_task_and_a_summary_off_a_terminal():
    s = _Stream(False)
    assert list(progress(range(3), desc="E1 sweep", stream=s)) == [0, 1, 2]
    lines = s.getvalue().splitlines()
    assert [ln.split(" (")[0] for ln in lines[:3]] == ["E1 sweep: 1/3 done", "E1 sweep: 2/3 done", "E1 sweep: 3/3 done"]
    assert lines[3].startswith("E1 sweep: 3 tasks done in ") and len(lines) == 4


def test_manual_progress_off_a_terminal():
    s = _Stream(False)
    bar = progress(total=30, desc="sweep", stream=s)
    bar.update(0)          # resumed with nothing done: no line
    bar.update(2)
    bar.close()
    bar.close()            # the summary once
    assert s.getvalue().splitlines()[0].startswith("sweep: 2/30 done")
    assert len(s.getvalue().splitlines()) == 2


def test_progress_quiet_and_terminal():
    s = _Stream(False)
    assert list(progress(range(3), quiet=True, stream=s)) == [0, 1, 2] and s.getvalue() == ""
    bar = progress(range(3), desc="x", stream=_Stream(True))
    assert type(bar).__name__ == "tqdm" or "tqdm" in type(bar).__module__


# --------------------------------------------------------------------------- the compile notice
class _Dispatcher:
    def __init__(self, signatures=()):
        self.signatures = list(signatures)


def test_compile_notice_once_and_only_when_compiling(monkeypatch):
    monkeypatch.setattr(_progress, "_NOTICES", {"enabled": True, "shown": set()})
    s = io.StringIO()
    assert not compile_notice([_Dispatcher(["sig"])], stream=s)          # already compiled here
    assert compile_notice([_Dispatcher()], stream=s)
    assert not compile_notice([_Dispatcher()], stream=s)                 # once per process
    assert s.getvalue() == "phasetools: compiling simulation kernels, once, ~10 s\n"
    set_notices(False)
    assert not compile_notice([_Dispatcher()], what="training kernels", stream=s)


def test_compile_notice_skips_kernels_cached_on_disk(monkeypatch, tmp_path):
    monkeypatch.setattr(_progress, "_NOTICES", {"enabled": True, "shown": set()})
    index = tmp_path / "k.nbi"
    index.write_bytes(b"")
    d = _Dispatcher()
    d._cache = SimpleNamespace(_cache_file=SimpleNamespace(_index_path=str(index)))
    assert not compile_notice([d], stream=io.StringIO())


def test_cli_quiet_and_json_silence_the_notice(monkeypatch, capsys):
    seen = []
    import phasetools.cli._main as m

    monkeypatch.setattr(m, "_theory_critical", lambda args: seen.append(_progress._NOTICES["enabled"]))
    main(["theory", "critical", "--n-layers", "3", "--c", "1", "--json"])
    main(["theory", "critical", "--n-layers", "3", "--c", "1"])
    assert seen == [False, True]


# --------------------------------------------------------------------------- text and numbers
def test_no_internal_brief_in_user_facing_text():
    hits = []
    for path in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "phasetools").rglob("*.py"),
                 *(ROOT / "examples").glob("*.py")]:
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bbrief\b", line, re.I):
                hits.append(f"{path.relative_to(ROOT)}:{k}: {line.strip()}")
    assert not hits, "\n".join(hits)


@pytest.mark.parametrize("value, se, text", [
    (2001.3, 102.0, "2000 ± 100"), (0.01234, 0.0021, "0.0123 ± 0.0021"), (216.73, None, "216.7"),
    (1.0, 0.05, "1.000 ± 0.050"), (None, 1.0, "-"), (float("inf"), 1.0, "-"),
])
def test_plus_minus(value, se, text):
    assert plus_minus(value, se) == text


def test_report_numbers_use_the_errors_precision():
    from phasetools.reproduce._report import _pm

    assert _pm(2001.3, 102.0) == "2000 ± 100"


def test_log10_differences_are_factors_not_percentages():
    from phasetools.compare import check_value

    v = check_value("epochs to cross (log10, median)", 0.0, 1.0, tol=0.5)
    assert "%" not in v.detail and "a factor 0.1" in v.detail


def test_plot_kind_without_figure_lists_the_kinds_that_have_one():
    from phasetools.plot import plot
    from phasetools.stats import bootstrap_ci

    with pytest.raises(ValueError, match="figures exist for .*Landscape"):
        plot(bootstrap_ci([1.0, 2.0, 3.0], [False] * 3, n_resamples=10, rng=1))


def test_e2_title_and_e5_escape_definition():
    from phasetools.plot._protocols import escape_label, trap_title

    title = trap_title(SimpleNamespace(trap_weight_decays=(0.0, 0.392), target_weight_decay=0.32))
    assert "weight decay 0, then 0.392" in title and "released at weight decay 0.32" in title
    assert "trap (" not in title
    assert "> 0.001" in escape_label(SimpleNamespace(sv_threshold=1e-3))


# --------------------------------------------------------------------------- README and repository
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_example_prints_its_values_as_a_script():
    code = re.search(r"```python\n(.*?)```", README, re.S).group(1)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 4 and lines[0].startswith("0.39685026") and lines[3].startswith("216.7")


def test_quick_reproduction_time_is_the_same_everywhere(capsys):
    phrase = "about 1-5 minutes on 2 cores"
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    assert phrase in " ".join(capsys.readouterr().out.split())
    for page in ("README.md", "docs/reproduce.md", "docs/getting-started.md", "docs/reproduction.md"):
        text = (ROOT / page).read_text(encoding="utf-8")
        assert phrase in " ".join(text.split()), page
        assert not re.search(r"(3-5|under 10|a few) minutes on 2 cores", text), page


def test_readme_states_the_suite_duration_and_the_quick_subset():
    assert 'pytest -m "not slow"' in README and "minutes on 2 cores;" in README


def test_readme_lists_every_example():
    for script in sorted((ROOT / "examples").glob("*.py")):
        assert f"`{script.name}`" in README, script.name


def test_gitignore_covers_outputs_and_locks():
    ignore = (ROOT / ".gitignore").read_text().splitlines()
    assert "/reproduction/" in ignore and "*.h5.lock" in ignore


def test_no_lock_file_is_left_behind(tmp_path, capsys):
    out = tmp_path / "x.h5"
    for c in ("1", "2"):
        assert main(["theory", "critical", "--n-layers", "3", "--c", c, "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.h5"]


def test_modes_are_numbered_from_zero_everywhere():
    text = (ROOT / "examples" / "phase_diagram.py").read_text()
    assert "k + 1" not in text
    assert "(0,)" in README and "numbered from 0" in README


def test_resume_keeps_the_first_runs_wall_time_and_executor(tmp_path):
    from phasetools.reproduce._run import run_log

    assert run_log(tmp_path, 42.0, "process", resume=False) == (42.0, "process")
    total, text = run_log(tmp_path, 18.0, "inline", resume=True)
    assert total == 60.0 and text == "process (0.7 min)`, resumed with `inline (0.3 min)"
    assert run_log(tmp_path, 6.0, "dask", resume=False) == (6.0, "dask")      # a new run starts afresh
    (tmp_path / "runs.json").write_text("__import__('os').system('false')")   # damaged: never evaluated
    assert run_log(tmp_path, 6.0, "inline", resume=True) == (6.0, "inline")
