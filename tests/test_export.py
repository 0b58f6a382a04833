"""Self-contained HTML exports (xaiwidgets.export): the widget manager, RequireJS and anywidget's
front end are in the page, nothing is loaded from a CDN. That the pages draw offline is
checked in Chromium in tests/browser/test_export_offline_browser.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xaiwidgets import Explanation
from xaiwidgets.export import export_html, inline_widget_manager, script_tag

ROOT = Path(__file__).resolve().parents[1]
STATE = "application/vnd.jupyter.widget-state+json"
VIEW = "application/vnd.jupyter.widget-view+json"
XSS = '<img src=x onerror="window.__xss=1"></script><!--'


@pytest.fixture(autouse=True)
def _built(tmp_path):
    from xaiwidgets.widgets._base import STATIC_DIR

    if not (STATIC_DIR / "embed-amd.js").is_file():
        pytest.fail("xaiwidgets/static/embed-amd.js is missing: run `npm run build`")


def _explanation() -> Explanation:
    rng = np.random.default_rng(0)
    return Explanation(
        values=rng.normal(size=(2, 6, 6, 1, 3)),
        data=rng.random((2, 6, 6, 1)),
        class_names=["$5-$10", XSS, "c"],
        probabilities=np.full((2, 3), 1 / 3),
    )


def _external_script_srcs(page: str) -> list[str]:
    return [
        src
        for src in re.findall(r"<script\b[^>]*\bsrc=[\"']([^\"']+)", page, re.IGNORECASE)
        if not src.startswith("data:")
    ]


def _assert_self_contained(page: str, mathjax: bool = False) -> None:
    """No script from the network, except (nbconvert pages) MathJax for Markdown math, which
    offline leaves the TeX source as text and draws no widget."""
    external = _external_script_srcs(page)
    if mathjax:
        external = [src for src in external if "/mathjax/" not in src.lower()]
    assert external == []
    require = page.index("RequireJS 2.3")
    anywidget = page.index('args.unshift("anywidget")')
    manager = page.index("@jupyter-widgets/html-manager")
    assert require < anywidget < manager  # RequireJS first, the manager's loader last


def test_explanation_to_html_is_self_contained(tmp_path):
    e = _explanation()
    path = e.to_html(tmp_path / "sub" / "grid.html")
    page = path.read_text(encoding="utf-8")
    _assert_self_contained(page)
    states = re.findall(f'<script type="{re.escape(STATE)}">(.*?)</script>', page, re.DOTALL)
    assert len(states) == 1
    models = json.loads(states[0])["state"].values()
    grids = [m for m in models if m["model_name"] == "AnyModel" and "_esm" in m["state"]]
    assert len(grids) == 1 and grids[0]["buffers"], "arrays travel as base64 buffers"
    # user strings stay inside JSON strings: no markup from them reaches the page
    assert XSS not in page and "<img src=x" not in page
    assert "<title>xaiwidgets: explanation</title>" in page


def test_export_html_takes_widgets_and_lists(tmp_path):
    e = _explanation()
    path = export_html([e, e.widget(cell_size=40)], tmp_path / "two.html", title="<b>two</b>")
    page = path.read_text(encoding="utf-8")
    _assert_self_contained(page)
    assert page.count(f'<script type="{VIEW}">') == 2
    assert "<title>&lt;b&gt;two&lt;/b&gt;</title>" in page
    with pytest.raises(TypeError, match="expected an ipywidgets widget"):
        export_html(np.zeros(3), tmp_path / "bad.html")
    with pytest.raises(ValueError, match="empty list"):
        export_html([], tmp_path / "bad.html")


def test_script_tag_never_lets_the_source_end_the_element():
    assert script_tag("var a = 1;") == "<script>\nvar a = 1;\n</script>"
    tag = script_tag('var s = "</script><b>";')
    assert tag.startswith('<script src="data:text/javascript;base64,') and "<b>" not in tag


def _nbconvert_page(widget) -> str:
    """What `jupyter nbconvert --to html` writes for a notebook that displayed ``widget``."""
    nbformat = pytest.importorskip("nbformat")
    nbconvert = pytest.importorskip("nbconvert")
    from ipywidgets.embed import dependency_state, embed_data

    data = embed_data(views=[widget], state=dependency_state([widget], drop_defaults=False))
    cell = nbformat.v4.new_code_cell("e")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", data={VIEW: data["view_specs"][0], "text/plain": "grid"}
        )
    ]
    nb = nbformat.v4.new_notebook(cells=[cell])
    nb.metadata["widgets"] = {STATE: data["manager_state"]}
    html, _ = nbconvert.HTMLExporter(template_name="lab").from_notebook_node(nb)
    return html


def test_nbconvert_page_gets_the_manager_inlined(tmp_path):
    raw = _nbconvert_page(_explanation().widget())
    assert "addWidgetsRenderer" in raw and _external_script_srcs(raw)  # the CDN loader
    page = inline_widget_manager(raw)
    _assert_self_contained(page, mathjax=True)
    assert "addWidgetsRenderer" not in page
    assert inline_widget_manager(page) == page  # idempotent

    # the demo's script rewrites files in place and leaves pages without widgets alone
    report, plain = tmp_path / "report.html", tmp_path / "plain.html"
    report.write_text(raw, encoding="utf-8")
    plain.write_text("<html><body>no widgets</body></html>", encoding="utf-8")
    res = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "inline_widget_manager.py"),
            str(report),
            str(plain),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert report.read_text(encoding="utf-8") == page
    assert plain.read_text(encoding="utf-8") == "<html><body>no widgets</body></html>"


def test_ipywidgets_embed_page_gets_the_manager_inlined(tmp_path):
    from ipywidgets.embed import embed_minimal_html

    w = _explanation().widget()
    embed_minimal_html(tmp_path / "min.html", views=[w], title="w")
    raw = (tmp_path / "min.html").read_text(encoding="utf-8")
    assert _external_script_srcs(raw)
    _assert_self_contained(inline_widget_manager(raw))


def test_a_page_with_widgets_but_no_known_loader_is_refused():
    page = f'<html><script type="{STATE}">{{}}</script></html>'
    with pytest.raises(ValueError, match="no widget-manager script"):
        inline_widget_manager(page)


def _bqplot_heat_map():
    bqplot = pytest.importorskip("bqplot")
    names = ["$5-$10", "b", "c"]
    heat = bqplot.GridHeatMap(
        color=np.arange(9.0).reshape(3, 3),
        scales={
            "row": bqplot.OrdinalScale(domain=names),
            "column": bqplot.OrdinalScale(domain=names),
            "color": bqplot.ColorScale(),
        },
    )
    return bqplot.Figure(marks=[heat], axes=[bqplot.Axis(scale=heat.scales["column"])])


def test_every_widget_library_of_the_state_is_inlined(tmp_path):
    """MetricsView's bqplot figures need bqplot's and bqscales' front ends in the page too."""
    from ipywidgets.embed import dependency_state, embed_data

    from xaiwidgets.export import widget_modules

    fig = _bqplot_heat_map()
    state = embed_data(views=[fig], state=dependency_state([fig], drop_defaults=False))
    assert widget_modules(state["manager_state"]) == ["bqplot", "bqscales"]
    page = export_html([fig, _explanation()], tmp_path / "mixed.html").read_text("utf-8")
    _assert_self_contained(page)
    for module in ("anywidget", "bqplot", "bqscales"):
        assert f'args.unshift("{module}")' in page, module
    # an nbconvert page of the same figure gets them too
    inlined = inline_widget_manager(_nbconvert_page(fig))
    assert 'args.unshift("bqplot")' in inlined and 'args.unshift("bqscales")' in inlined


def test_a_library_without_installed_front_end_is_named(tmp_path):
    from xaiwidgets.export import widget_manager_script

    with pytest.warns(UserWarning, match="'no-such-widgets'.*will not draw offline"):
        scripts = widget_manager_script(["no-such-widgets"])
    assert "no-such-widgets" not in scripts and "@jupyter-widgets/html-manager" in scripts


def test_module_names_from_a_page_are_not_paths():
    from xaiwidgets.export import _front_end_file

    assert _front_end_file("anywidget") is not None
    for name in ("../../etc", "a/../../b", "/etc/passwd", "x y", "os.path"):
        assert _front_end_file(name) is None, name
