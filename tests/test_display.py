"""How an Explanation displays: the widget, a PNG only when asked for, the user's matplotlib
backend untouched, and names drawn as text (never mathtext)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from xaiwidgets import Explanation

ROOT = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MATH_NAMES = ["$5-$10", "$x_$", r"a_b^c \alpha", "50%"]


def _grid(n: int, k: int, names: list[str] | None = None, h: int = 8) -> Explanation:
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(k), size=n).astype(np.float32)
    return Explanation(
        values=rng.normal(size=(n, h, h, 1, k)),
        data=rng.random((n, h, h, 1)),
        class_names=names,
        probabilities=probs,
        labels=np.arange(n) % k,
    )


def test_display_of_a_large_grid_renders_no_png(monkeypatch):
    """A 100 x 10 grid displays as the widget view alone: no PNG is drawn (it took seconds and
    1.5 MB on every display)."""
    e = _grid(100, 10, h=28)

    def no_png(self, *a, **kw):
        raise AssertionError("a PNG was rendered for a plain display")

    monkeypatch.setattr(Explanation, "to_png", no_png)
    bundle = e._repr_mimebundle_()
    assert set(bundle) == {WIDGET_VIEW, "text/plain"}
    assert len(json.dumps(bundle)) < 1000  # the state travels over the comm, not in the bundle
    assert bundle["text/plain"] == repr(e)


def test_png_only_when_asked_for_or_no_widget(monkeypatch):
    e = _grid(2, 3)
    asked = e._repr_mimebundle_(include=["image/png"])
    assert base64.b64decode(asked["image/png"])[:8] == PNG_MAGIC
    assert WIDGET_VIEW not in asked  # only what was asked for is made
    assert "image/png" not in e._repr_mimebundle_(exclude=["image/png"])

    monkeypatch.setattr(Explanation, "png_fallback", True)
    both = e._repr_mimebundle_()
    assert WIDGET_VIEW in both and base64.b64decode(both["image/png"])[:8] == PNG_MAGIC
    monkeypatch.setattr(Explanation, "png_fallback", False)

    def broken_widget(self, **kw):
        raise RuntimeError("no front end")

    monkeypatch.setattr(Explanation, "widget", broken_widget)
    fallback = e._repr_mimebundle_()
    assert base64.b64decode(fallback["image/png"])[:8] == PNG_MAGIC
    assert "widget unavailable: no front end" in fallback["text/plain"]


_BACKEND_SCRIPT = """
import sys
import matplotlib
matplotlib.use({backend!r})
{before}
import numpy as np
from xaiwidgets import Explanation

rng = np.random.default_rng(0)
e = Explanation(values=rng.normal(size=(2, 6, 6, 1, 3)), data=rng.random((2, 6, 6, 1)),
                class_names=["a", "b", "c"], probabilities=np.full((2, 3), 1 / 3))
rc_before = {{k: repr(v) for k, v in matplotlib.rcParams.items()}}
figs_before = plt.get_fignums() if "matplotlib.pyplot" in sys.modules else []
bundle = e._repr_mimebundle_()
bundle_png = e._repr_mimebundle_(include=["image/png"])
png = e.to_png()
assert "image/png" in bundle_png and png[:4] == b"\\x89PNG", sorted(bundle_png)
assert matplotlib.get_backend() == {backend!r}, matplotlib.get_backend()
changed = [k for k, v in matplotlib.rcParams.items() if repr(v) != rc_before[k]]
assert not changed, changed
{after}
print("OK")
"""


@pytest.mark.parametrize(
    "backend, before, after",
    [
        (  # a backend that is only a name: displaying must neither import pyplot nor resolve it
            "module://xaiwidgets_test_no_such_backend",
            "",
            'assert "matplotlib.pyplot" not in sys.modules',
        ),
        (  # Jupyter's inline backend with pyplot in use: later plt figures still work
            "module://matplotlib_inline.backend_inline",
            "import matplotlib.pyplot as plt\nplt.figure()",
            textwrap.dedent(
                """
                assert plt.get_fignums() == figs_before, (plt.get_fignums(), figs_before)
                fig = plt.figure()
                plt.plot([0, 1], [1, 0])
                assert plt.gcf() is fig and fig.number in plt.get_fignums()
                """
            ),
        ),
    ],
)
def test_display_keeps_the_users_matplotlib_backend(backend, before, after):
    if "inline" in backend:
        pytest.importorskip("matplotlib_inline")
    script = _BACKEND_SCRIPT.format(backend=backend, before=before, after=after)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(Path.home())}
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=180
    )
    assert res.returncode == 0 and res.stdout.strip().endswith("OK"), res.stderr[-3000:]


def _texts(fig) -> list:
    return [t for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()]


def _assert_drawn_literally(fig, expected: list[str]) -> None:
    texts = {t.get_text(): t for t in _texts(fig)}
    for s in expected:
        assert s in texts, (s, sorted(texts))
        # what matplotlib will draw for this Text: the string itself, not mathtext or TeX
        assert texts[s]._preprocess_math(s) == (s, False), s


def test_names_are_drawn_as_text_not_math(monkeypatch):
    import matplotlib

    e = _grid(2, 4, names=MATH_NAMES)
    probs = e.output_probabilities
    expected = [f"{MATH_NAMES[j]} {probs[i, j]:.2f}" for i in range(2) for j in range(4)]
    expected += [f"true: {MATH_NAMES[0]}", f"true: {MATH_NAMES[1]}"]

    fig = e.plot()  # the user's pyplot figure
    fig.canvas.draw()  # "$x_$" as mathtext raised here and made the Explanation undisplayable
    _assert_drawn_literally(fig, expected)
    matplotlib.pyplot.close(fig)

    # the same through the PNG fallback and a display that asks for it
    from matplotlib.figure import Figure

    drawn = []
    original = Figure.savefig

    def spy(self, *a, **kw):
        out = original(self, *a, **kw)
        drawn.append(self)
        return out

    monkeypatch.setattr(Figure, "savefig", spy)
    assert e.to_png()[:8] == PNG_MAGIC
    assert base64.b64decode(e._repr_mimebundle_(include=["image/png"])["image/png"])[:8] == (
        PNG_MAGIC
    )
    _assert_drawn_literally(drawn[0], expected)


def test_names_stay_text_when_rc_asks_for_tex():
    """``text.usetex=True`` in the user's rcParams does not turn class names into TeX."""
    import matplotlib

    e = _grid(1, 2, names=["$x_$", "a&b"])
    with matplotlib.rc_context({"text.usetex": True}):
        from matplotlib.figure import Figure

        from xaiwidgets.plotting import plot_grid

        fig = plot_grid(e, figure=Figure())
        names = [t for t in _texts(fig) if t.get_text().startswith(("$x_$", "a&b"))]
        assert len(names) == 2
        assert all(not t.get_usetex() and not t.get_parse_math() for t in names)


def test_static_plots_use_the_widgets_colours():
    """One palette (xaiwidgets/palette.json) for the canvas and the PNG: the colour map's ends are
    its colours, fully opaque, and 0 is transparent; the JS colour map reads the same file."""
    from xaiwidgets.plotting import diverging_cmap

    root = ROOT
    palette = json.loads((root / "xaiwidgets" / "palette.json").read_text())
    cmap = diverging_cmap()
    np.testing.assert_allclose(np.array(cmap(1.0)) * 255, [*palette["positive"], 255], atol=0.6)
    np.testing.assert_allclose(np.array(cmap(0.0)) * 255, [*palette["negative"], 255], atol=0.6)
    assert cmap(0.5)[3] < 0.01
    ts = (root / "js" / "src" / "lib" / "colormap.ts").read_text()
    assert "xaiwidgets/palette.json" in ts
    for rgb in (palette["positive"], palette["negative"]):
        assert ", ".join(map(str, rgb)) not in ts  # no second copy of the colours
