"""The widgets where learners use them: JupyterLab 4 in headless Chromium (end to end).

nbval runs the notebooks in a kernel but never renders a widget, so a slider that shows as the
text ``FloatSlider(...)``, a GIF that a slider does not redraw, or a button that does nothing all
pass there. This test starts JupyterLab on loopback (a free port, a random token, a temporary
folder: nothing is written into the repository), opens the learner copies in Chromium driven by
Playwright, and does what a learner does:

- lesson 04: *Run All* (CI parameters injected, as in tests/test_notebooks.py), then checks that
  the z sliders render as ipywidgets sliders, moves one with the keyboard and sees the video
  change;
- lesson 03's label-map editor (the lesson's set-up cells and its editor cell): presses
  *regenerate* without an edit (the picture must stay the same: no control moved), then moves the
  object and presses it again (the picture must change).

It needs Debian's ``chromium`` package (``apt-get install chromium``; or set ``SEG2VID_CHROMIUM``
to a Chromium/Chrome binary) and the ``playwright`` Python package (in the ``dev`` extra); it never
downloads a browser. Without either it skips, saying what to install.
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
from pathlib import Path

import nbformat
import pytest
from test_notebooks import CI_PARAMETERS, ROOT, _kernel_environ

pytestmark = pytest.mark.notebook

NOTEBOOKS = ROOT / "notebooks"
#: lesson 03's cells that the editor needs (set-up, parameters, the clip), then the editor itself
EDITOR_CELLS = ("install", "imports", "parameters", "seed", "editor")
SERVER_START_S = 90
RUN_ALL_S = 600  # generous: a loaded CI machine; the whole test takes about a minute on a quiet one
WIDGET_REPLY_S = 120


def _chromium() -> str | None:
    """The Chromium binary to drive: $SEG2VID_CHROMIUM, else Debian's / Ubuntu's on the PATH."""
    configured = os.environ.get("SEG2VID_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _learner_copy(stem: str, folder: Path, keep_ids: tuple[str, ...] | None = None) -> str:
    """Write notebooks/<stem>.ipynb into ``folder`` with its CI parameters injected; returns its name.

    ``keep_ids``: keep only these cells (by id), in the notebook's order, plus papermill's
    injected-parameters cell.
    """
    import papermill

    target = folder / f"{stem}.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{stem}.ipynb"), str(target), parameters=CI_PARAMETERS[stem],
        prepare_only=True, progress_bar=False,
    )  # fmt: skip
    nb = nbformat.read(target, as_version=4)
    if keep_ids is not None:
        kept = [
            c for c in nb.cells
            if c.get("id") in keep_ids or "injected-parameters" in c.metadata.get("tags", [])
        ]  # fmt: skip
        missing = set(keep_ids) - {c.get("id") for c in kept}
        assert not missing, f"notebooks/{stem}.ipynb has no cells with ids {sorted(missing)}"
        nb.cells = kept
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, target)
    return target.name


@pytest.fixture(scope="module")
def chromium_path() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("the browser test needs the Python package playwright: pip install -e '.[dev]' "
                    "(or pip install playwright; no browser download: it drives the system Chromium)")
    path = _chromium()
    if path is None:
        pytest.skip("the browser test needs Chromium: apt-get install chromium (Debian/Ubuntu), "
                    "or set SEG2VID_CHROMIUM to a Chromium or Chrome binary")
    return path


@pytest.fixture(scope="module")
def lab(chromium_path, tmp_path_factory):
    """A JupyterLab server on loopback serving a temporary folder: (base URL, token, folder)."""
    folder = tmp_path_factory.mktemp("lab")
    home = tmp_path_factory.mktemp("jupyter-home")  # config, data, runtime, workspaces: all throwaway
    port, token = _free_port(), secrets.token_hex(16)
    env = _kernel_environ()
    env.update({
        "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"), "JUPYTER_PLATFORM_DIRS": "1",
        "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"),  # a 2-core CI machine: no oversubscription
    })  # fmt: skip
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: Run All through its command
        "--allow-root",  # CI containers run as root; the server listens on loopback behind a token
        "--ServerApp.terminals_enabled=False",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]  # fmt: skip
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_S
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                log.close()
                why = f"exited with code {server.returncode}" if server.poll() is not None else (
                    f"did not answer in {SERVER_START_S} s")
                pytest.fail(f"JupyterLab {why}:\n"
                            + (home / "server.log").read_text()[-3000:])
            time.sleep(0.5)
    try:
        yield base, token, folder
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright passes --no-sandbox (its default), which Chromium needs when run as root (CI)
        chromium = playwright.chromium.launch(executable_path=chromium_path, headless=True)
        yield chromium
        chromium.close()


# JavaScript run in the page; `window.jupyterapp` is JupyterLab's application object.
_KERNEL_IDLE = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
        && panel.sessionContext.session.kernel;
    return !!kernel && kernel.status === 'idle' && panel.content.widgets.length > 0;
}"""
_RUN_ALL = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
# Run All is over: every code cell has run, or one raised where it should not (the rest is aborted).
_RUN_ALL_OVER = """() => {
    const cells = Array.from(window.jupyterapp.shell.currentWidget.content.model.cells).map(c => c.toJSON());
    const code = cells.filter(c => c.cell_type === 'code');
    const stray = code.some(c => (c.outputs || []).some(o => o.output_type === 'error')
        && !((c.metadata.tags || []).includes('raises-exception')));
    return stray || code.every(c => c.execution_count !== null);
}"""
_CELLS = "() => Array.from(window.jupyterapp.shell.currentWidget.content.model.cells).map(c => c.toJSON())"
# Records the kernel's status changes from now on (a widget's reply: busy, then idle).
_WATCH_KERNEL = """() => {
    const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    window.__statuses = [];
    kernel.statusChanged.connect((_, status) => window.__statuses.push(status));
}"""
_KERNEL_REPLIED = """() => {
    const s = window.__statuses || [];
    const busy = s.indexOf('busy');
    return busy >= 0 && s.indexOf('idle', busy) > busy;
}"""


def _open_and_run_all(page, lab, name: str) -> list[dict]:
    """Open ``name`` in JupyterLab, Run All, wait for the end; returns the cells as nbformat dicts."""
    base, token, _ = lab
    # a workspace of its own, reset: only this notebook open (no layout restored from a previous page)
    page.goto(f"{base}/lab/workspaces/{Path(name).stem}/tree/{name}?reset&token={token}")
    page.wait_for_function(_KERNEL_IDLE, timeout=SERVER_START_S * 1000)
    page.evaluate(_RUN_ALL)
    page.wait_for_function(_RUN_ALL_OVER, timeout=RUN_ALL_S * 1000, polling=500)
    page.wait_for_function(_KERNEL_IDLE, timeout=RUN_ALL_S * 1000)
    cells = page.evaluate(_CELLS)
    unrun = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and c.get("execution_count") is None]
    assert not unrun, f"{name}: Run All left cells {unrun} unrun"
    for i, cell in enumerate(cells):
        errors = [o for o in cell.get("outputs", []) if o["output_type"] == "error"]
        expected = "raises-exception" in cell.get("metadata", {}).get("tags", [])
        assert not errors or expected, (
            f"{name}: cell {i} raised {errors[0]['ename']}: {errors[0]['evalue']}" if errors else ""
        )
    return cells


def _shutdown_kernels(lab) -> None:
    """Stop every kernel of the server (each test's notebook leaves one behind)."""
    base, token, _ = lab
    with urllib.request.urlopen(f"{base}/api/kernels?token={token}", timeout=10) as reply:
        kernels = json.load(reply)
    for kernel in kernels:
        request = urllib.request.Request(f"{base}/api/kernels/{kernel['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


def _assert_widgets_rendered(page, name: str) -> None:
    text = page.locator(".jp-NotebookPanel-notebook").first.inner_text()
    for broken in ("Error displaying widget", "Loading widget...", "model not found"):
        assert broken not in text, f"{name}: a widget did not render ({broken!r} in the page)"


def _press(page, handle, key: str, times: int = 1) -> None:
    """Focus a slider's handle and press ``key``; waits for the kernel's reply to the change."""
    page.evaluate(_WATCH_KERNEL)
    handle.focus()
    for _ in range(times):
        handle.press(key)
    page.wait_for_function(_KERNEL_REPLIED, timeout=WIDGET_REPLY_S * 1000)


def test_lesson_04_sliders_redraw_the_video(browser, lab):
    name = _learner_copy("04_image_to_video", lab[2])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _open_and_run_all(page, lab, name)
        _assert_widgets_rendered(page, name)
        sliders = page.locator(".jp-OutputArea .widget-slider")
        assert sliders.count() == 2, (
            f"{name}: {sliders.count()} rendered ipywidgets sliders, expected the two z sliders "
            "(a slider shown as text means the widget front end is missing)"
        )
        box = page.locator(".jp-OutputArea .widget-vbox").filter(has=page.locator(".widget-slider")).first
        view = box.locator(".widget-html-content").first
        before = view.inner_html()
        assert "<img" in before or "<video" in before, f"{name}: no video under the sliders: {before[:200]}"
        readout = sliders.first.locator(".widget-readout")
        start = readout.inner_text()
        handle = sliders.first.locator(".noUi-handle").first
        handle.scroll_into_view_if_needed()
        _press(page, handle, "ArrowRight", times=2)
        assert readout.inner_text() != start, f"{name}: the slider did not move ({start!r})"
        _wait_until_changed(page, view, before)
    finally:
        page.close()
        _shutdown_kernels(lab)


def _wait_until_changed(page, element, old_html: str) -> None:
    """Wait (up to WIDGET_REPLY_S) until ``element``'s inner HTML differs from ``old_html``."""
    page.wait_for_function(
        "([el, old]) => el.innerHTML !== old", arg=[element.element_handle(), old_html],
        timeout=WIDGET_REPLY_S * 1000,
    )


def test_lesson_03_editor_regenerates_only_on_an_edit(browser, lab):
    name = _learner_copy("03_semantic_conditioning", lab[2], keep_ids=EDITOR_CELLS)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        cells = _open_and_run_all(page, lab, name)
        printed = "".join("".join(o.get("text", "")) for o in cells[-1].get("outputs", []))
        assert "move the sliders and press regenerate" in printed, (
            f"{name}: the editor cell did not build the editor: {printed[-500:]}"
        )
        _assert_widgets_rendered(page, name)
        button = page.locator(".jp-OutputArea button.widget-button", has_text="regenerate")
        assert button.count() == 1, f"{name}: no rendered 'regenerate' button"
        editor = page.locator(".jp-OutputArea .widget-vbox").filter(has=page.locator("button.widget-button"))
        editor = editor.first
        assert editor.locator(".widget-slider").count() == 4, f"{name}: the editor's sliders did not render"
        picture = editor.locator(".widget-output").first
        first = picture.inner_html()
        assert "<img" in first, f"{name}: the editor shows no picture: {first[:200]}"

        # No control moved: regenerating must draw the same picture (the road-width slider's
        # initial value sits on its step, so the browser does not move it on display).
        page.evaluate(_WATCH_KERNEL)
        button.first.click()
        page.wait_for_function(_KERNEL_REPLIED, timeout=WIDGET_REPLY_S * 1000)
        assert picture.inner_html() == first, f"{name}: 'regenerate' without an edit changed the picture"

        # Move the object 4 px to the left, then regenerate: the picture changes.
        x_slider = editor.locator(".widget-slider").filter(has_text="x").first
        _press(page, x_slider.locator(".noUi-handle").first, "ArrowLeft", times=4)
        page.evaluate(_WATCH_KERNEL)
        button.first.click()
        _wait_until_changed(page, picture, first)
    finally:
        page.close()
        _shutdown_kernels(lab)
