"""Real-browser fixtures: a JupyterLab on localhost driven by Debian Chromium via Playwright.

- ``chromium``: ``/usr/bin/chromium``, installed with apt-get when missing (never
  ``playwright install``).
- ``lab``: a session-wide ``jupyter lab`` on a free 127.0.0.1 port with a random token, its
  own root dir and settings dir (news and update checks off); it fails loudly if
  ``/api/status`` never answers.
- ``browser``: one headless Chromium for the session.
- ``run_notebook_in_lab(cells) -> page``: writes a notebook (kernelspec python3), opens it in
  the lab, runs all cells and waits until no prompt shows ``[*]``; a cell that raised fails
  the test with its traceback.
- ``exported_notebook(cells, name)``: the cells run by nbclient with the widget state stored,
  exported by nbconvert (template "lab") to a static HTML file; ``(notebook, path)``.
- ``offline_page(files)``: a page whose requests to the CDN (require.js, the widgets HTML
  manager, anywidget) are served from local files, everything else external is refused: a
  static HTML export draws without network.

Screenshots go to ``artifacts/`` (git-ignored); a failing test saves one of each open page.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # pragma: no cover - the browser fixture skips then
    PlaywrightTimeout = TimeoutError

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
RUN_TIMEOUT_MS = 90_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of Debian's chromium, installed with apt-get if it is missing."""
    if not Path(CHROMIUM).exists():
        apt = shutil.which("apt-get")
        if apt is None:
            pytest.fail(f"{CHROMIUM} is missing and apt-get is not available to install it")
        sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in ([apt, "update"], [apt, "install", "-y", "--no-install-recommends", "chromium"]):
            res = subprocess.run(sudo + cmd, capture_output=True, text=True, env=env)
            if res.returncode != 0:
                pytest.fail(f"`{' '.join(cmd)}` failed:\n{res.stderr[-2000:]}")
    return CHROMIUM


@pytest.fixture(scope="session")
def built_bundle() -> Path:
    """The widget bundles; built with `npm run build` when missing."""
    bundle = ROOT / "xaiwidgets" / "static" / "attribution_grid.js"
    if not bundle.exists():
        res = subprocess.run(["npm", "run", "build"], cwd=ROOT, capture_output=True, text=True)
        if res.returncode != 0 or not bundle.exists():
            pytest.fail(f"`npm run build` failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return bundle


class Lab:
    """A running JupyterLab: its base url, token and root dir."""

    def __init__(self, url: str, token: str, root: Path, proc: subprocess.Popen, log: Path):
        self.url, self.token, self.root, self.proc, self.log = url, token, root, proc, log

    def api(self, path: str) -> object:
        with urllib.request.urlopen(f"{self.url}{path}?token={self.token}", timeout=5) as r:
            return json.loads(r.read())


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory, built_bundle: Path) -> Iterator[Lab]:
    base = tmp_path_factory.mktemp("lab")
    root = base / "root"
    root.mkdir()
    user_settings = {
        "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        # start the notebook's kernel without the "Select Kernel" dialog
        "notebook-extension/tracker": {"autoStartDefaultKernel": True},
    }
    for key, value in user_settings.items():
        folder, name = key.split("/")
        path = base / "settings" / "@jupyterlab" / folder / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("ANYWIDGET_HMR", None)
    log = base / "lab.log"
    cmd = [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser", "--allow-root",
        "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.open_browser=False",
        "--LabApp.news_url=",
    ]  # fmt: skip
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root)
    server = Lab(f"http://127.0.0.1:{port}", token, root, proc, log)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            server.api("/api/status")
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"jupyter lab never answered /api/status:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
    yield server
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def browser(chromium: str):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep


@pytest.fixture
def new_page(browser, request) -> Iterator[Callable[[], object]]:
    """Factory of pages (1200x900) closed after the test; screenshots on failure."""
    pages = []

    def make():
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.console_messages = []  # type: ignore[attr-defined]
        page.on("console", lambda m: page.console_messages.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: page.console_messages.append(f"pageerror: {e}"))
        pages.append(page)
        return page

    yield make
    rep = getattr(request.node, "rep_call", None)
    for i, page in enumerate(pages):
        if rep is not None and rep.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"FAILED-{request.node.name}-{i}.png"))
            print("\n".join(page.console_messages[-30:]))
        page.context.close()


def new_notebook(cells: list[str]):
    """An nbformat notebook of code cells with the python3 kernelspec (no kernel chooser)."""
    import nbformat

    return nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(src) for src in cells],
        metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}},
    )


def _write_notebook(path: Path, cells: list[str]) -> None:
    import nbformat

    nbformat.write(new_notebook(cells), path)


@pytest.fixture
def exported_notebook(tmp_path: Path) -> Callable[..., tuple[object, Path]]:
    """``exported_notebook(cells, name="export.html") -> (notebook, path)``: the cells executed
    in a python3 kernel with the widget state stored (nbclient), then exported to static HTML
    (nbconvert, template "lab") at ``tmp_path / name``. Skips without nbclient / nbconvert."""
    nbclient = pytest.importorskip("nbclient")
    nbconvert = pytest.importorskip("nbconvert")

    def export(cells: list[str], name: str = "export.html") -> tuple[object, Path]:
        nb = new_notebook(cells)
        nbclient.NotebookClient(
            nb, timeout=120, kernel_name="python3", store_widget_state=True
        ).execute()
        html, _ = nbconvert.HTMLExporter(template_name="lab").from_notebook_node(nb)
        path = tmp_path / name
        path.write_text(html, encoding="utf-8")
        return nb, path

    return export


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """``artifacts/`` at the repository root (git-ignored), for screenshots."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


_ALL_PROMPTS_DONE = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')];
  return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""

#: a cell is queued ("[*]") or done ("[1]"): the Run All click reached the kernel
_SOMETHING_RAN = """() => {
  const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')];
  return prompts.some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent));
}"""


@pytest.fixture
def run_notebook_in_lab(lab: Lab, new_page) -> Callable[[list[str]], object]:
    """``run_notebook_in_lab(cells) -> page``: the notebook open in the lab, every cell run."""

    def run(cells: list[str]):
        name = f"nb-{uuid.uuid4().hex[:8]}.ipynb"
        _write_notebook(lab.root / name, cells)
        page = new_page()
        # a workspace of its own: the lab does not reopen notebooks of earlier tests
        workspace = name.removesuffix(".ipynb")
        page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{name}?reset&token={lab.token}")
        page.locator(".jp-Notebook .jp-CodeCell").first.wait_for()
        select = page.locator(".jp-Dialog").get_by_role("button", name="Select")
        try:  # should not show (autoStartDefaultKernel), but never let it block the run
            select.wait_for(timeout=1500)
            select.click()
        except PlaywrightTimeout:
            pass
        try:  # on a loaded machine the kernel may take a while: wait until it is idle
            page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').first.wait_for(
                timeout=60_000
            )
        except PlaywrightTimeout:
            pass  # a kernel that is still starting queues the execution anyway
        for _attempt in range(3):  # Run All through the menu; a click lost while the lab was
            # busy leaves every prompt empty ("[ ]:", nothing queued), so it is safe to repeat
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
            try:
                page.wait_for_function(_SOMETHING_RAN, timeout=20_000)
                break
            except PlaywrightTimeout:
                continue
        try:
            page.wait_for_function(_ALL_PROMPTS_DONE, timeout=RUN_TIMEOUT_MS)
        except PlaywrightTimeout:
            prompts = page.locator(".jp-InputArea-prompt").all_inner_texts()
            pytest.fail(f"cells did not finish in {RUN_TIMEOUT_MS / 1000:.0f} s: prompts {prompts}")
        errors = page.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        )
        tracebacks = [
            t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t.split("\n")[0]
        ]
        if tracebacks:
            pytest.fail("a notebook cell raised:\n" + "\n".join(tracebacks)[-4000:])
        return page

    return run


#: CDN paths of a static widget export and the local files that stand in for them
def _cdn_files() -> dict[str, Path]:
    import anywidget

    nm = ROOT / "node_modules"
    return {
        "require.min.js": nm / "requirejs" / "require.js",
        "require.js": nm / "requirejs" / "require.js",
        "embed-amd.js": nm / "@jupyter-widgets" / "html-manager" / "dist" / "embed-amd.js",
        "/npm/anywidget@": Path(anywidget.__file__).parent / "nbextension" / "index.js",
    }


@pytest.fixture
def offline_page(new_page) -> Callable[[dict[str, Path]], object]:
    """``offline_page({url: file})``: a page serving ``url -> file`` and the widget CDN files
    locally; every other external request is aborted (so a pass proves nothing came from
    the network)."""
    cdn = _cdn_files()
    missing = [str(p) for p in cdn.values() if not p.exists()]
    if missing:
        pytest.fail(f"missing local copies of the widget CDN files (run `npm install`): {missing}")

    def make(files: dict[str, Path]):
        page = new_page()
        page.served = []  # type: ignore[attr-defined]
        page.refused = []  # type: ignore[attr-defined]

        def handle(route):
            url = route.request.url
            if url in files:
                body, ctype = files[url].read_bytes(), "text/html"
            else:
                path = url.split("?")[0]
                hit = next((f for key, f in cdn.items() if path.endswith(key) or key in path), None)
                if hit is None:
                    page.refused.append(url)
                    return route.abort()
                body, ctype = hit.read_bytes(), "application/javascript"
            page.served.append(url)
            return route.fulfill(status=200, body=body, content_type=ctype)

        page.route("**/*", handle)
        return page

    return make
