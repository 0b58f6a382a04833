"""Make exported notebook pages draw their widgets with no network.

`jupyter nbconvert --to html` writes pages that load RequireJS and the Jupyter widget manager
from CDNs; offline they show no widget. This rewrites such pages in place with those scripts
(and anywidget's front end) inlined, see `xaiwidgets.export.inline_widget_manager`. Pages
without widget state are left as they are. `make demo` runs it on its reports:

    python scripts/inline_widget_manager.py artifacts/notebooks/*.html
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's xaiwidgets

from xaiwidgets.export import inline_widget_manager_file  # noqa: E402


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    for name in paths:
        changed = inline_widget_manager_file(name)
        print(f"{name}: {'widget manager inlined' if changed else 'no widgets, unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
