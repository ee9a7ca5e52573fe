"""Compute the theory results of the paper's set-up, store them in HDF5, reload and draw them.

    python examples/theory_figures.py [--out examples/output]

Writes ``theory.h5`` and one PNG per figure kind into the output folder. Runs in a few
seconds. The figures in docs/results.md are made by this script.
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402

import phasetools.plot as plot  # noqa: E402
import phasetools.theory as th  # noqa: E402
from phasetools.io import list_results, load, save_many  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="examples/output", help="output folder")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    h5 = out / "theory.h5"
    h5.unlink(missing_ok=True)

    # The paper's set-up: n_layers = 3 weight matrices, features eta = (0.9, 0.8), weight decay beta.
    results = {
        "potential": th.landscape(3, 0.8, [0.25, 0.32, 0.345, 0.38], convention="paper"),
        "barriers": th.landscape(3, 0.8, np.linspace(0.005, 0.36, 300), convention="paper"),
        "phase": th.critical_points(3, np.linspace(0.02, 1.2, 300), convention="paper"),
        "cascade": th.phase_diagram(3, [0.9, 0.8], np.linspace(0.25, 0.45, 801), convention="paper"),
        "levels": th.modes(3, [0.9, 0.8], gamma=0.32, convention="paper"),
    }
    save_many(results.values(), h5, names=list(results), command="examples/theory_figures.py")
    for info in list_results(h5):
        print(f"stored {info.name:<10} {info.kind}")

    for name in results:
        figure = plot.plot(load(h5, name), name)   # reload from the file, then draw
        (path,) = figure.save(out / f"{name}.png")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
