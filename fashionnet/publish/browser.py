"""The browser kit in a real browser: serve RUN/export/ on 127.0.0.1, drive headless Chromium with Playwright.

The one place that knows how to start the system's Chromium (no browser download: Debian's ``chromium``),
how the kit gets onnxruntime-web (``npm ci`` from its lock file) and the page's script API (export/web/app.js,
``window.fashionnet``). The web tests and ``fashionnet bench --web`` both go through here.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fashionnet.publish.web import RUNTIME_DIR, WEB_DIR_NAME

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# As root Chromium needs --no-sandbox; the others stop its background calls to Google, which this offline
# machine refuses (docs/web.md).
CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
PAGE_TIMEOUT_MS = 120_000


class BrowserError(RuntimeError):
    """No browser, no driver or no onnxruntime-web: the message says what to install."""


def find_chromium() -> str:
    """$FASHIONNET_CHROMIUM, else the first Chromium on PATH."""
    explicit = os.environ.get("FASHIONNET_CHROMIUM")
    if explicit:
        if not Path(explicit).is_file():
            raise BrowserError(f"FASHIONNET_CHROMIUM={explicit}: no such file")
        return explicit
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise BrowserError("no Chromium found: install it (Debian: apt-get install -y chromium) or set FASHIONNET_CHROMIUM")


def install_runtime(kit_dir: Path, cache_dir: Path | None = None) -> Path:
    """Give the kit its pinned onnxruntime-web: ``npm ci`` in the kit, or once in ``cache_dir`` and linked.

    The cache holds one install per lock file (the kit's package-lock.json is copied there), so tests that
    export many kits install the runtime once. Returns the runtime's dist folder.
    """
    kit_dir = Path(kit_dir)
    if (kit_dir / RUNTIME_DIR).is_dir():
        return kit_dir / RUNTIME_DIR
    npm = shutil.which("npm")
    if npm is None:
        raise BrowserError(
            "npm not found: the web kit installs onnxruntime-web with `npm ci` (Debian: apt-get install npm)"
        )
    target = kit_dir if cache_dir is None else Path(cache_dir)
    if cache_dir is not None:
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            source = (kit_dir / name).read_bytes()
            if not (target / name).is_file() or (target / name).read_bytes() != source:
                (target / name).write_bytes(source)
                shutil.rmtree(target / "node_modules", ignore_errors=True)
    if not (target / RUNTIME_DIR).is_dir():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=target, capture_output=True, text=True
        )
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise BrowserError(f"npm ci in {target} failed: {' | '.join(tail)}")
    if cache_dir is not None:
        (kit_dir / "node_modules").symlink_to((target / "node_modules").resolve(), target_is_directory=True)
    return kit_dir / RUNTIME_DIR


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".wasm": "application/wasm",
    }

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """A static file server for ``root`` on 127.0.0.1 at a free port; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class KitPage:
    """The kit's page open in headless Chromium; ``console`` and ``errors`` collect what the page printed."""

    def __init__(self, page, url: str, export_dir: Path):
        self.page = page
        self.url = url
        self.export_dir = export_dir
        self.console: list[tuple[str, str]] = []  # (type, text)
        self.errors: list[str] = []  # uncaught exceptions
        page.on("console", lambda message: self.console.append((message.type, message.text)))
        page.on("pageerror", lambda error: self.errors.append(str(error)))

    def open(self) -> bool:
        """Load the page and wait until its default model is ready; False when the page reported a failure."""
        self.page.goto(self.url)
        return bool(self.page.evaluate("window.fashionnet.ready"))

    @property
    def console_errors(self) -> list[str]:
        return [text for kind, text in self.console if kind == "error"] + self.errors

    def message(self) -> str:
        """The page's message line (errors shown to the user); empty when hidden."""
        box = self.page.locator("#message")
        return "" if box.is_hidden() else box.inner_text()

    def classify(self, model: str, images: np.ndarray, batch: int = 64) -> np.ndarray:
        """(N, 28, 28) uint8 images -> (N, 10) float32 probabilities computed in the page."""
        images = np.ascontiguousarray(images, dtype=np.uint8)
        encoded = base64.b64encode(images.tobytes()).decode("ascii")
        probs = self.page.evaluate(
            "([m, p, n, b]) => window.fashionnet.classify(m, p, n, b)", [model, encoded, len(images), batch]
        )
        return np.asarray(probs, dtype=np.float32).reshape(len(images), -1)

    def preprocess(self, data: bytes, name: str) -> np.ndarray | str:
        """A photo's bytes -> the (28, 28) uint8 input the page makes of it, or the page's error message."""
        encoded = base64.b64encode(data).decode("ascii")
        result = self.page.evaluate("([d, n]) => window.fashionnet.preprocess(d, n)", [encoded, name])
        if isinstance(result, dict):
            return result["error"]
        return np.asarray(result, dtype=np.uint8).reshape(28, 28)

    def benchmark(self, model: str, batch: int, blocks: int, per_block: int) -> list[float]:
        """Milliseconds per inference of ``batch`` images, one value per block of ``per_block`` runs."""
        return self.page.evaluate(
            "([m, b, k, r]) => window.fashionnet.benchmark(m, b, k, r)", [model, batch, blocks, per_block]
        )

    def ort_version(self) -> str:
        return self.page.evaluate("window.fashionnet.ortVersion")


@contextlib.contextmanager
def launch() -> Iterator[object]:
    """Headless system Chromium under Playwright; yields the Browser. One per thread (Playwright's sync API)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BrowserError("driving the browser needs Playwright: pip install 'fashionnet[webtest]'") from exc
    chromium = find_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=list(CHROMIUM_ARGS), chromium_sandbox=False)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def open_kit(export_dir: Path, browser=None) -> Iterator[KitPage]:
    """RUN/export/ served on 127.0.0.1, its web kit's page open in a fresh page of ``browser`` (default: a new
    headless Chromium) but not yet loaded: call ``.open()``."""
    export_dir = Path(export_dir)
    if not (export_dir / WEB_DIR_NAME / "index.html").is_file():
        raise BrowserError(f"{export_dir}: no web kit ({WEB_DIR_NAME}/index.html); run `fashionnet export` again")
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(serve(export_dir))
        if browser is None:
            browser = stack.enter_context(launch())
        context = browser.new_context()  # its own cache and storage: pages of different exports never mix
        stack.callback(context.close)
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        yield KitPage(page, f"{base}/{WEB_DIR_NAME}/index.html", export_dir)


def screenshot(export_dir: Path, photo: Path, out_png: Path, model: str = "fp32") -> Path:
    """The page after classifying ``photo`` with ``model``, its self-test and the test images, saved as a PNG."""
    with open_kit(export_dir) as kit:
        if not kit.open():
            raise BrowserError(f"the web kit did not load: {kit.message()}")
        kit.page.set_viewport_size({"width": 1100, "height": 1000})
        kit.page.locator(f'input[value="{model}"]').check()
        kit.page.wait_for_function("document.getElementById('model-status').textContent.includes(' ready')")
        kit.page.locator("#photo").set_input_files(str(photo))
        kit.page.wait_for_function(
            "!document.getElementById('photo-result').hidden || !document.getElementById('photo-error').hidden"
        )
        if kit.page.locator("#photo-error").is_visible():  # a bad photo's line sits under the drop zone
            raise BrowserError(f"the page reported: {kit.page.locator('#photo-error').inner_text()}")
        kit.page.locator("#run-selftest").click()
        kit.page.wait_for_function("document.getElementById('selftest-result').textContent.startsWith('selftest')")
        kit.page.locator("#classify-samples").click()
        kit.page.wait_for_function("document.getElementById('samples-summary').textContent.length > 0")
        if kit.message() or kit.console_errors:
            raise BrowserError(f"the page reported: {kit.message() or kit.console_errors}")
        kit.page.screenshot(path=str(out_png), full_page=True)
    return Path(out_png)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="python -m fashionnet.publish.browser", description="Screenshot the web kit classifying a photo."
    )
    parser.add_argument("run", type=Path, help="an exported run folder (RUN/export/web/)")
    parser.add_argument("photo", type=Path, help="a photo to upload")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--model", default="fp32", help="fp32 or int8 (default fp32)")
    args = parser.parse_args(argv)
    try:
        install_runtime(args.run / "export" / WEB_DIR_NAME)
        print(screenshot(args.run / "export", args.photo, args.out, args.model))
    except BrowserError as exc:
        print(f"fashionnet.publish.browser: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
