#!/usr/bin/env python3
"""Executes the notebooks headlessly (nbclient) and checks the charts they save.

usage: run_notebooks.py [NOTEBOOK ...] [--out DIR] [--timeout SECONDS]
       run_notebooks.py --strip [NOTEBOOK ...]

--strip removes outputs, execution counts and execution timings from the notebooks in place
(run it before committing a notebook you ran in Jupyter); it executes nothing.

Runs each notebook (default: notebooks/*.ipynb) top to bottom in a fresh kernel of THIS
interpreter (run it with the project venv's python: .venv/bin/python), from the notebook's
folder, with the inputs from the environment (STOCKLAKE_LAKE, STOCKLAKE_BIN, STOCKLAKE_SAVED,
STOCKLAKE_FIGURES, ...; see each notebook's first cell). Then every PNG written to
$STOCKLAKE_FIGURES during the run is opened and measured.

Prints one line per notebook and per figure, for people and for tests/integration/notebooks.rs:
  notebook 01_explore_lake.ipynb ok seconds=5.1
  notebook 02_cross_check.ipynb FAILED seconds=3.0
  png 01_volume.png width=912 height=453 bytes=103130 std=41.2 colors=1874 ok
and, for a failed notebook, the failing cell's error. Exit status: 0 when every notebook ran
and every figure has content, 1 otherwise. --out DIR keeps the executed notebooks (with outputs)
for a look; they are never written over the committed ones.
"""
import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
from jupyter_client.kernelspec import KernelSpecManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "python3"


def check_kernel():
    """The kernel must be this interpreter (the venv's), not some other python3 kernelspec."""
    argv = KernelSpecManager().get_kernel_spec(KERNEL).argv
    exe = argv[0]
    if exe in ("python", "python3", "{sys.executable}"):
        return
    if Path(exe).resolve() != Path(sys.executable).resolve():
        sys.exit(
            f"run_notebooks: kernel {KERNEL!r} runs {exe}, not {sys.executable}; "
            "remove that kernelspec or run this script with the python it names"
        )


def run(path, timeout, out_dir):
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=timeout,
        resources={"metadata": {"path": str(path.parent)}},
    )
    started = time.monotonic()
    error = None
    try:
        client.execute()
    except CellExecutionError as e:
        error = re.sub(r"\x1b\[[0-9;]*m", "", str(e))  # IPython's colours
    except Exception as e:  # kernel died, timeout, ...
        error = f"{type(e).__name__}: {e}"
    seconds = time.monotonic() - started
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out_dir / path.name)
    return error, seconds


def strip(path):
    """Clears what running a notebook leaves behind; True when the file changed."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    after = nbformat.writes(nb)
    if after != before:
        path.write_text(after + "\n" if not after.endswith("\n") else after, encoding="utf-8")
    return after != before


def measure(png):
    """(width, height, pixel standard deviation, distinct colours) of an image."""
    with Image.open(png) as im:
        im.load()
        rgb = np.asarray(im.convert("RGB"))
    colors = len(np.unique(rgb.reshape(-1, 3), axis=0))
    return im.width, im.height, float(rgb.std()), colors


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", type=Path)
    ap.add_argument("--out", type=Path, help="folder for the executed notebooks")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per cell")
    ap.add_argument("--strip", action="store_true", help="clear outputs in place, run nothing")
    args = ap.parse_args()

    notebooks = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not notebooks:
        sys.exit("run_notebooks: no notebooks")
    if args.strip:
        for path in notebooks:
            print(f"{'stripped' if strip(path) else 'clean'} {path.name}")
        return 0
    figures = Path(os.environ.get("STOCKLAKE_FIGURES") or ROOT / "figures")
    check_kernel()

    started = time.time()
    failed = 0
    for path in notebooks:
        error, seconds = run(path, args.timeout, args.out)
        print(f"notebook {path.name} {'FAILED' if error else 'ok'} seconds={seconds:.1f}", flush=True)
        if error:
            failed += 1
            print(error, flush=True)

    # Figures written by this run (older files in the folder are not ours to judge).
    pngs = sorted(p for p in figures.glob("*.png") if p.stat().st_mtime >= started - 1)
    for png in pngs:
        try:
            width, height, std, colors = measure(png)
        except Exception as e:
            print(f"png {png.name} unreadable: {e}")
            failed += 1
            continue
        blank = width == 0 or height == 0 or std < 1.0 or colors < 3
        failed += blank
        print(
            f"png {png.name} width={width} height={height} bytes={png.stat().st_size} "
            f"std={std:.1f} colors={colors} {'BLANK' if blank else 'ok'}"
        )
    print(f"run_notebooks: {len(notebooks)} notebooks, {len(pngs)} figures, {failed} problems, "
          f"{time.time() - started:.1f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
