"""Driving the real app in Debian's chromium with Playwright: the server, the browser, and small
helpers for Gradio's widgets (found by elem_id or label, as a user finds them by their label)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from tests.helpers import free_port

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# How long a page may take to show what an event changes, for expect() as for every other page wait
# (page.set_default_timeout in the fixtures). On a loaded 2-core machine a page load costs chromium
# 11-13 s of CPU and its answers come late: playwright's 5 s for expect() failed CI (a stage answer),
# and 30 s failed two layout tests right after a reload with three workers.
PAGE_TIMEOUT_MS = 60_000
expect.set_options(timeout=PAGE_TIMEOUT_MS)


def start_server(saves: Path, log: Path, allow: list[Path] = (), tries: int = 3) -> tuple[subprocess.Popen, str]:
    """`python -m webui` on a free loopback port, as `make run` starts it, allowed to use the folders
    ``allow`` (--allow-dir) besides the default dataset folder and ``saves``; returns (process, url).
    A port some other process took in between is tried again with another."""
    for _ in range(tries):
        started = serve_once(saves, log, allow, free_port())
        if started:
            return started
    raise RuntimeError(f"the web UI found no free port in {tries} tries:\n{log.read_text()}")


def serve_once(saves: Path, log: Path, allow: list[Path], port: int) -> tuple[subprocess.Popen, str] | None:
    """The server on ``port``; None if the port was taken."""
    env = {**os.environ, "WORKBENCH_SAVES": str(saves), "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("WORKBENCH_ALLOWED_DIRS", None)  # only what the command line allows
    allowed = [arg for folder in allow for arg in ("--allow-dir", str(folder))]
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen([sys.executable, "-m", "webui", "--port", str(port), "--saves", str(saves), *allowed],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            if "Cannot find empty port" in log.read_text():
                return None
            raise RuntimeError(f"the web UI exited at start-up:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"the web UI did not answer on {url} within 120 s:\n{log.read_text()}")


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError("Debian's chromium is missing: `make browser` (part of `make test`) installs it")
    return path


def open_browser():
    """(playwright, browser); the caller closes both."""
    pw = sync_playwright().start()
    return pw, pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)


def field(page: Page, key: str):
    """A generated config field by its key (training.max_steps -> #wb-training-max_steps)."""
    return page.locator(f"#wb-{key.replace('.', '-')}")


def set_text(page: Page, key: str, value) -> None:
    fill(page, field(page, key).locator("input, textarea").first, value)


def same(shown: str, typed: str) -> bool:
    """A box shows what was typed (a number box may write 0.001 as 1e-3)."""
    try:
        return float(shown) == float(typed)
    except ValueError:
        return shown == typed


def fill(page: Page, box, value) -> None:
    """Type a value and leave the box (Gradio sends the change), once: a late answer to an earlier
    event no longer puts an old value back (webui.stage_answer), so the box must keep what was typed."""
    box.fill(str(value))
    box.press("Tab")
    wait_for(lambda: same(box.input_value(), str(value)), 10, f"the box to show {value!r}", poll=0.05)


def shows(locator, value: str) -> bool:
    """A dropdown shows ``value`` as its choice (in its box) or, a multiselect, as one of its chips."""
    return (locator.locator("input").first.input_value() == value
            or locator.locator(".token").filter(has_text=value).count() > 0)


def pick(page: Page, locator, value: str) -> None:
    """Choose a dropdown option by its visible label, once, and wait until the dropdown shows it (a
    click on an option not listed yet waits for the list to have it)."""
    box = locator.locator("input").first
    box.blur()  # a focused dropdown does not reopen its list on click
    box.click()
    option = page.get_by_role("option", name=value, exact=True).first
    if not option.is_visible():  # long lists: type to filter
        box.fill(value)
    option.click()
    page.keyboard.press("Escape")
    wait_for(lambda: shows(locator, value), 10, f"the dropdown to show {value!r}", poll=0.05)


def options(page: Page, locator) -> list[str]:
    """The option labels a dropdown offers (opens and closes it)."""
    box = locator.locator("input").first
    box.blur()
    box.click()
    page.get_by_role("option").first.wait_for()
    labels = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    box.blur()
    return [label.replace("✓", "").strip() for label in labels]


def option_containing(page: Page, locator, text: str, timeout: float = 30) -> str:
    """The first option label of a dropdown that contains ``text``, once the dropdown offers one (its list
    is re-read from disk when its tab opens, so a run made a moment ago may take that long to appear)."""
    return wait_for(lambda: next((o for o in options(page, locator) if text in o), None), timeout,
                    f"an option with {text!r}")


def pick_field(page: Page, key: str, value: str) -> None:
    pick(page, field(page, key), value)


def pick_stage(page: Page, stage: str) -> None:
    """Pick the Train tab's stage and wait for the answer to it: the stage's options shown, and with
    them its pickers refilled and defaulted (the parent run, PPO's reward model)."""
    pick_field(page, "stage", stage)
    expect(page.locator(f"#wb-section-{stage}")).to_be_visible()


def open_tab(page: Page, name: str) -> None:
    """Open a tab and wait until it is shown. Its lists are re-read from disk as it opens: what needs
    them waits for what it needs (a click on an option waits for it; option_containing polls)."""
    tab = page.get_by_role("tab", name=name, exact=True)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


def plot_traces(page: Page) -> list[dict]:
    """Every visible plotly trace on the page: {chart title, name, points}."""
    return page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')]
        .filter(el => el.offsetParent !== null)
        .flatMap(el => (el.data || []).map(t => ({
            title: (el.layout && el.layout.title && (el.layout.title.text || el.layout.title)) || '',
            name: t.name || '', points: (t.x || []).length})))""")


def points(page: Page, trace: str) -> int:
    return max((t["points"] for t in plot_traces(page) if t["name"] == trace), default=0)


def wait_for(predicate, timeout: float, what: str, poll: float = 0.5, shown=None):
    """Poll ``predicate`` until it returns something true (returned), for at most ``timeout`` seconds;
    ``shown``: what the page showed instead, for the failure message."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    instead = f"; the page showed: {shown()[-1500:]!r}" if shown is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{instead}")


def event_id(page: Page, api_name: str) -> int:
    """The id of the app's event with this API name (private ones have one too), from its /config."""
    config = page.request.get(page.url.split("?")[0].rstrip("/") + "/config").json()
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)


def joins(request, event: int, asks=lambda data: True) -> bool:
    """The request is the page's queue join for ``event`` whose inputs (``data``) ``asks`` accepts."""
    if "/queue/join" not in request.url or request.method != "POST":
        return False
    try:
        body = request.post_data_json or {}
    except ValueError:
        return False
    return body.get("fn_index") == event and asks(body.get("data") or [])


@contextmanager
def answer_held(page: Page, event: int, asks=lambda data: True):
    """Hold the page's first request for ``event`` (whose inputs ``asks`` accepts) until the block ends:
    its answer then arrives after everything the block did, as on a machine too busy to answer at once.
    Yields the list the held request goes in (empty if none came)."""
    held = []

    def route(request_route):
        if not held and joins(request_route.request, event, asks):
            held.append(request_route)  # let go below
        else:
            request_route.continue_()

    page.route("**/queue/join*", route)
    try:
        yield held
    finally:
        for request_route in held:  # before unroute, which would let it go by itself
            request_route.continue_()
        page.unroute("**/queue/join*", route)


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def upload_dataset(page: Page, path) -> None:
    """Upload a data file on the Datasets tab (clearing the one shown before)."""
    clear = page.locator("#wb-dataset-upload").get_by_label("Clear")
    if clear.count():  # a previous upload is still shown
        clear.first.click()
    page.locator("#wb-dataset-upload input[type=file]").set_input_files(str(path))


def set_short_run(page: Page, stage: str, steps: int, name: str | None = None, dataset: str | None = None) -> None:
    """The Train form set for a seconds-long run of the tiny model (named ``name``, default e2e-STAGE, on
    ``dataset`` when given)."""
    pick_stage(page, stage)
    set_text(page, "name", name or f"e2e-{stage}")
    set_text(page, "training.max_steps", steps)
    set_text(page, "training.logging_steps", 1)
    set_text(page, "training.per_device_train_batch_size", 2)
    set_text(page, "training.gradient_accumulation_steps", 1)
    set_text(page, "training.learning_rate", 0.001)
    set_text(page, "data.max_samples", 32)
    set_text(page, "data.cutoff_len", 192)
    if dataset:
        pick_field(page, "data.dataset", dataset)


def wait_for_started(page: Page, stage: str, name: str) -> str:
    """The folder name of the run just started, once the page follows it (it may have been following an
    older, finished run)."""
    found = wait_for(lambda: re.search(rf"\d{{8}}-\d{{6}}-{stage}-{name}[\w-]*", status_text(page)), 90,
                     "the new run to be followed")
    return found.group(0)  # (the status box may also show Gradio's pending timer, "0.0s")


def status_text(page: Page) -> str:
    return page.locator("#wb-status").inner_text()


def wait_until_done(page: Page, timeout: float) -> str:
    return wait_for(lambda: "state: completed" in status_text(page) and status_text(page), timeout,
                       "the run to complete")
