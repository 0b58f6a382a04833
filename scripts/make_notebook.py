"""Write a tutorial notebook from a plain-text source (cells separated by lines '# %%' for code
and '# %% [markdown]' for prose). Keeps notebooks reviewable as text: `notebooks/src/*.py`.

    python scripts/make_notebook.py notebooks/src/01_attribution_grid.py notebooks/
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def build(src: Path) -> nbformat.NotebookNode:
    cells, kind, lines = [], None, []

    def flush():
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(
                line[2:] if line.startswith("# ") else line.lstrip("#")
                for line in text.splitlines()
            )
            cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cells.append(nbformat.v4.new_code_cell(text))

    for line in src.read_text().splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        else:
            lines.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def main(argv: list[str]) -> None:
    out_dir = Path(argv[-1])
    for src in map(Path, argv[:-1]):
        nbformat.write(build(src), out_dir / (src.stem + ".ipynb"))


if __name__ == "__main__":
    main(sys.argv[1:])
