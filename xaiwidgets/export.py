"""Self-contained HTML exports: widgets that draw with no network.

A static page shows a widget only if it carries a *widget manager*: RequireJS, the embed bundle
of ``@jupyter-widgets/html-manager`` (which reads the ``widget-state+json`` and
``widget-view+json`` script tags of the page and draws the views), and the front end of every
widget library the state names (``anywidget``, whose models carry our ESM bundles in their
state; ``bqplot`` and ``bqscales`` for ``MetricsView``). ``jupyter nbconvert --to html`` and
``ipywidgets.embed`` load all of them from CDNs, so their pages stay blank offline. This module
writes them into the page instead:

- ``require.js`` (RequireJS 2.3, MIT) and ``embed-amd.js`` (html-manager 1.0, BSD-3-Clause),
  copied from ``node_modules`` into ``xaiwidgets/static/`` by ``npm run build`` (a wheel
  carries them);
- the AMD front end of each widget library in the state, as its Python package installs it
  for the classic notebook (``share/jupyter/nbextensions/<module>/index.js``), defined under
  its module name so that the manager's loader finds it in the page before it would try a
  CDN. A library without such a file is named in a warning (the page then still loads it
  from a CDN).

Entry points:

- :func:`export_html(obj, path) <export_html>` writes one page for a widget, an
  :class:`~xaiwidgets.Explanation` (its :class:`~xaiwidgets.AttributionGrid`) or a list of them;
  ``Explanation.to_html(path)`` calls it.
- :func:`inline_widget_manager` rewrites an nbconvert (or ``ipywidgets.embed``) HTML page so
  that it loads nothing from a CDN for its widgets; ``scripts/inline_widget_manager.py`` applies
  it to the reports of ``make demo``.

Each inlined script is written as raw text, or as a ``data:`` URL when its text holds
``</script`` or ``<!--`` (which would end or confuse the HTML script element).
"""

from __future__ import annotations

import base64
import html
import importlib.util
import json
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .widgets._base import STATIC_DIR, MissingBundleError

#: files of ``xaiwidgets/static/`` that ``npm run build`` copies from node_modules
REQUIRE_JS = "require.js"
EMBED_AMD_JS = "embed-amd.js"

_UNSAFE_IN_SCRIPT = re.compile(r"</script|<!--", re.IGNORECASE)
# <script ... src=".../require.js" or ".../require.min.js" ...></script>
_REQUIRE_TAG = re.compile(
    r"<script\b[^>]*\bsrc=[\"'][^\"']*/require(?:\.min)?\.js[^\"']*[\"'][^>]*>\s*</script>",
    re.IGNORECASE,
)
# <script ... src=".../html-manager.../embed-amd.js" (ipywidgets.embed) ...></script>
_EMBED_TAG = re.compile(
    r"<script\b[^>]*\bsrc=[\"'][^\"']*/embed(?:-amd)?\.js[^\"']*[\"'][^>]*>\s*</script>",
    re.IGNORECASE,
)
# nbconvert's jupyter_widgets macro: a script that appends the CDN embed-amd.js on load
_NBCONVERT_LOADER = re.compile(
    r"<script>\s*\(function\(\)\s*\{\s*function addWidgetsRenderer\(\).*?</script>",
    re.DOTALL,
)
_NPM_NAME = re.compile(r"(@[A-Za-z0-9._-]+/)?[A-Za-z0-9._-]+")
_SOURCE_MAP = re.compile(r"^//# sourceMappingURL=.*$", re.MULTILINE)
_BUILT_IN = frozenset(
    {"@jupyter-widgets/base", "@jupyter-widgets/controls", "@jupyter-widgets/output"}
)
# JupyterLab's light-theme variables that widget styles read (a notebook export has the whole
# theme; a bare page needs these or, e.g., bqplot figures draw on black)
_THEME_CSS = """
:root {
  --jp-layout-color0: white; --jp-layout-color1: white; --jp-layout-color2: #eeeeee;
  --jp-border-color0: #616161; --jp-border-color1: #bdbdbd; --jp-border-color2: #e0e0e0;
  --jp-border-width: 1px; --jp-brand-color1: #1976d2;
  --jp-ui-font-color0: rgba(0, 0, 0, 1); --jp-ui-font-color1: rgba(0, 0, 0, 0.87);
  --jp-ui-font-color2: rgba(0, 0, 0, 0.54); --jp-ui-font-color3: rgba(0, 0, 0, 0.38);
  --jp-content-font-color0: rgba(0, 0, 0, 1); --jp-content-font-color1: rgba(0, 0, 0, 0.87);
  --jp-content-font-color2: rgba(0, 0, 0, 0.54); --jp-content-font-color3: rgba(0, 0, 0, 0.38);
  --jp-ui-font-family: system-ui, -apple-system, "Segoe UI", helvetica, arial, sans-serif;
  --jp-content-font-family: var(--jp-ui-font-family); --jp-ui-font-size1: 13px;
}
body {
  margin: 16px; background: var(--jp-layout-color0); color: var(--jp-ui-font-color1);
  font-family: var(--jp-ui-font-family); font-size: var(--jp-ui-font-size1);
}
"""
#: marks a page whose widget manager is inlined (so that inlining twice changes nothing)
_INLINED = "<!-- xaiwidgets: widget manager inlined -->"
_STATE_TYPE = "application/vnd.jupyter.widget-state+json"
_VIEW_TYPE = "application/vnd.jupyter.widget-view+json"


def _static_file(name: str) -> str:
    path = STATIC_DIR / name
    if not path.is_file():
        raise MissingBundleError(
            f"the widget manager of HTML exports is not built: {path} is missing. Run "
            "`npm install && npm run build` in the xaiwidgets source folder (or install a "
            "released wheel, which carries it)."
        )
    return path.read_text(encoding="utf-8")


def _front_end_file(module: str) -> Path | None:
    """The AMD front end (classic-notebook extension) of widget library ``module``: the
    ``nbextensions/<module>/index.js`` that its Python package installs in a Jupyter data
    folder, or the copy inside the package. ``None`` when there is none (or the name is not
    an npm package name, e.g. holds ``..``)."""
    from jupyter_core.paths import jupyter_path

    if not _NPM_NAME.fullmatch(module) or ".." in module:
        return None
    for folder in jupyter_path("nbextensions"):
        path = Path(folder) / module / "index.js"
        if path.is_file():
            return path
    package_name = module.replace("-", "_")
    if package_name.isidentifier():  # a top-level name: find_spec imports nothing
        spec = importlib.util.find_spec(package_name)
        if spec is not None and spec.origin is not None:
            package = Path(spec.origin).parent
            for sub in ("nbextension", "nbextension/static", "static"):
                if (package / sub / "index.js").is_file():
                    return package / sub / "index.js"
    return None


def _named_amd(module: str, source: str) -> str:
    """``source`` (an AMD module whose ``define`` is anonymous) defined as ``module``: RequireJS
    refuses anonymous modules written inline, and the widget manager asks for it by name."""
    source = _SOURCE_MAP.sub("", source)
    return (
        "(function (amdDefine) {\n"
        "var define = function () {\n"
        "  var args = Array.prototype.slice.call(arguments);\n"
        f"  if (typeof args[0] !== 'string') args.unshift({json.dumps(module)});\n"
        "  return amdDefine.apply(this, args);\n"
        "};\n"
        "define.amd = amdDefine.amd;\n"
        f"{source}\n"
        "})(window.define);"
    )


def widget_modules(state: dict[str, Any]) -> list[str]:
    """Widget libraries named by a widget-manager ``state`` (``{"state": {id: model}}``) that
    the html-manager does not carry itself (``@jupyter-widgets/base|controls|output``)."""
    modules = set()
    for model in state.get("state", {}).values():
        for key in ("_model_module", "_view_module"):
            name = model.get("state", {}).get(key) or model.get(key.lstrip("_"))
            if isinstance(name, str) and name:
                modules.add(name)
    return sorted(m for m in modules if m not in _BUILT_IN)


def _module_scripts(modules: Sequence[str]) -> str:
    tags = []
    for module in modules:
        path = _front_end_file(module)
        if path is None:
            warnings.warn(
                f"the page's widgets use {module!r}, whose front end (nbextensions/{module}/"
                "index.js) is not installed here: the page will load it from a CDN and its "
                "widgets will not draw offline",
                stacklevel=3,
            )
            continue
        tags.append(script_tag(_named_amd(module, path.read_text(encoding="utf-8"))))
    return "\n".join(tags)


def script_tag(source: str) -> str:
    """A ``<script>`` element that runs ``source`` (a data URL when it cannot sit inline)."""
    if _UNSAFE_IN_SCRIPT.search(source):
        data = base64.b64encode(source.encode("utf-8")).decode("ascii")
        return f'<script src="data:text/javascript;base64,{data}"></script>'
    return f"<script>\n{source}\n</script>"


def require_js_script() -> str:
    """The ``<script>`` element of RequireJS (it must come before the manager's)."""
    return script_tag(_static_file(REQUIRE_JS))


def widget_manager_script(modules: Sequence[str] = ("anywidget",)) -> str:
    """The ``<script>`` elements of the front ends of ``modules`` (widget libraries, see
    :func:`widget_modules`) and of the html-manager embed bundle, which draws the page's widget
    views once it has loaded. RequireJS must run before them."""
    scripts = _module_scripts(modules)
    return scripts + "\n" + script_tag(_SOURCE_MAP.sub("", _static_file(EMBED_AMD_JS)))


def _page_modules(page: str) -> list[str]:
    """:func:`widget_modules` of every widget-state script of an HTML page."""
    modules: set[str] = set()
    pattern = rf'<script type="{re.escape(_STATE_TYPE)}">(.*?)</script>'
    for text in re.findall(pattern, page, re.DOTALL):
        try:
            modules.update(widget_modules(json.loads(text)))
        except json.JSONDecodeError as exc:
            raise ValueError(f"the page's widget state is not valid JSON: {exc}") from None
    return sorted(modules)


def inline_widget_manager(page: str) -> str:
    """``page`` (HTML from ``jupyter nbconvert --to html`` or ``ipywidgets.embed``) with its
    CDN copies of RequireJS, the widget manager and the widget libraries its state names
    (anywidget, bqplot...) replaced by inline scripts.

    A page without widget state is returned unchanged. Raises ``ValueError`` when the page has
    widget state but no widget-manager loader this function knows how to replace; warns when
    a widget library's front end is not installed (the page then still loads it from a CDN).
    """
    if _STATE_TYPE not in page or _INLINED in page:
        return page  # nothing to draw, or done already
    manager = _INLINED + "\n" + widget_manager_script(_page_modules(page))
    page, n_loader = _NBCONVERT_LOADER.subn(lambda _: manager, page, count=1)
    if n_loader == 0:
        page, n_loader = _EMBED_TAG.subn(lambda _: manager, page, count=1)
    if n_loader == 0:
        raise ValueError(
            "the page has widget state but no widget-manager script to replace: expected "
            "nbconvert's jupyter_widgets loader or a <script src=.../embed-amd.js> tag"
        )
    require = require_js_script()
    page, n_require = _REQUIRE_TAG.subn(lambda _: require, page, count=1)
    if n_require == 0:  # RequireJS must run before the manager: put it in front of it
        page = page.replace(manager, require + "\n" + manager, 1)
    return page


def inline_widget_manager_file(path: str | Path) -> bool:
    """Rewrite an exported HTML file in place with :func:`inline_widget_manager`. Returns
    whether the file changed (a page without widgets is left as it was)."""
    path = Path(path)
    page = path.read_text(encoding="utf-8")
    new = inline_widget_manager(page)
    if new != page:
        path.write_text(new, encoding="utf-8")
    return new != page


def _json_script(obj: Any) -> str:
    # '<' appears in JSON only inside strings, where \u003c is the same character
    return json.dumps(obj).replace("<", "\\u003c")


def _as_widgets(obj: Any) -> list[Any]:
    import ipywidgets

    items = list(obj) if isinstance(obj, (list, tuple)) else [obj]
    if not items:
        raise ValueError("export_html: expected a widget or an Explanation, got an empty list")
    widgets = []
    for item in items:
        if not isinstance(item, ipywidgets.Widget) and callable(getattr(item, "widget", None)):
            item = item.widget()
        if not isinstance(item, ipywidgets.DOMWidget):
            raise TypeError(
                "export_html: expected an ipywidgets widget, an Explanation (or any result with "
                f".widget()), or a list of them, got {type(item).__name__}"
            )
        widgets.append(item)
    return widgets


def export_html(
    obj: Any | Sequence[Any], path: str | Path, *, title: str = "xaiwidgets export"
) -> Path:
    """Write a self-contained HTML page that draws ``obj`` with no network.

    Parameters
    ----------
    obj : a widget (``AttributionGrid``, ``ShapleyExplorer``, any ipywidgets ``DOMWidget``), an
        :class:`~xaiwidgets.Explanation` or other result with ``.widget()`` (drawn as that
        widget with its defaults), or a list of these (drawn one below the other).
    path : the ``.html`` file to write (parents are created).
    title : the page title (set as text).

    The page holds the widgets' current state (arrays as base64 buffers), RequireJS, the
    html-manager embed bundle and anywidget's front end (about 4 MB of script): it draws in
    any browser, from a file, with no server and no network. Widgets that re-run in Python
    (masker toggles, sliders) show their last result; they cannot compute in a static page.
    Returns the path written.
    """
    from ipywidgets.embed import dependency_state, embed_data

    widgets = _as_widgets(obj)
    data = embed_data(views=widgets, state=dependency_state(widgets, drop_defaults=False))
    manager = widget_manager_script(widget_modules(data["manager_state"]))
    views = "\n".join(
        f'<script type="{_VIEW_TYPE}">{_json_script(spec)}</script>' for spec in data["view_specs"]
    )
    page = (
        "<!DOCTYPE html>\n<html>\n<head>\n"
        '<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"<style>{_THEME_CSS}</style>\n"
        f"{require_js_script()}\n"
        f"{_INLINED}\n{manager}\n"
        f'<script type="{_STATE_TYPE}">{_json_script(data["manager_state"])}</script>\n'
        "</head>\n<body>\n"
        f"{views}\n"
        "</body>\n</html>\n"
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
