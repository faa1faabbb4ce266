"""Retake the README's screenshots (assets/*.png) from a live `streamlit run app.py`.

Starts the app on a free port with an empty REGDEMO_DATA_DIR (bench/browser.py's helpers),
drives Debian's headless Chromium with Playwright and, for each image, waits until the page
itself shows the state the README describes (the run finished, the fork's branches ended,
the sweep's curve and note drawn, the lesson at its last step) before it takes the shot:

  dashboard-dropout.png      1400x1000  ?preset=dropout, trained to the end
  dashboard-l1-features.png  1400x1000  ?preset=l1_features, trained to the end
  dashboard-sine.png         1400x1000  ?preset=sine_wiggle, trained to the end
  dashboard-digits.png       1400x1000  ?preset=digits_shift, trained to the end
  network-diagram.png        1400x1000  ?preset=l1_features, trained; the Network panel
  fork-ab.png                1600x1150  overfit paused near epoch 100, forked, L2 = 0.01 on B
  sweep-l2.png               1600x1150  Sweep tab: l2 over its default range, 10 x 3 seeds
  lesson-projector.png       1920x1080  ?lesson=l2&projector=1: "Do it for me" to the last step
  shared-run.png             1400x1000  a saved run's read-only link opened in another context

Before each shot of a run at rest the script presses P: a run that ends by itself keeps the
views (boundary, feature bars, network) of its last refresh, up to a second of training old
(see Shooter.refresh_views); any command to the run makes its worker send fresh ones. The
lesson shot is taken again (up to 3 tries) if its chart carries a marker no step made.

Each image is printed with its size and the figures it shows (for the README's captions).
A state not reached within its timeout ends the script with status 1 and says which; a
screenshot of the page as it was then is kept in a temp folder the message names.

    python bench/screenshots.py [--only fork-ab,sweep-l2] [--out assets] [--timeout 120]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from browser import FLAGS, healthy, launch, poll, stop  # bench/browser.py

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # regdemo: the presets' and lesson's epochs

DASHBOARD = (1400, 1000)
WIDE = (1600, 1150)
PROJECTOR = (1920, 1080)

# The board's loss chart: points, each trace's newest epoch and last value, annotations.
READ_LOSS = """() => {
  const d = document.querySelector('[data-chart=loss]');
  if (!d || !d.data || !d.layout) return null;
  const last = (t) => t.x && t.x.length ? [+t.x[t.x.length - 1], +t.y[t.y.length - 1]] : [0, null];
  return {points: d.data[0] && d.data[0].x ? d.data[0].x.length : 0,
          traces: d.data.filter(t => t.name).map(t => [t.name, ...last(t)]),
          annotations: (d.layout.annotations || []).map(a => a.text)};
}"""
# The board's status row: the Epoch cell ("600 / 600", its title the run's state) and the
# figures beside it; the fork's branch line.
READ_STATUS = """() => {
  const cell = (name) => document.querySelector(`[data-metric="${name}"] .rd-value`);
  const epoch = document.querySelector('[data-metric="Epoch"]');
  const branch = document.querySelector('.rd-board .rd-branch');
  const text = (name) => cell(name) ? cell(name).innerText : null;
  return {epoch: text('Epoch'), state: epoch ? epoch.title : null,
          train: text('Train loss'), val: text('Val loss'), gap: text('Gap (val − train)'),
          test: text('Test loss'), branch: branch ? branch.innerText : null};
}"""
# One trace's values by name: [[epoch, value], ...] (for the fork's caption figures).
READ_TRACE = """(name) => {
  const d = document.querySelector('[data-chart=loss]');
  const t = d && d.data ? d.data.find(t => t.name === name) : null;
  return t ? t.x.map((x, i) => [+x, +t.y[i]]) : [];
}"""
# Injected before the page's scripts: the views version (`vv`) of each run in the board's
# latest feed reply, so the script knows when fresh views (boundary, weights, network) came.
VIEWS_SEEN = r"""(() => {
  if (window.top !== window) return;
  window.__rdViews = [];
  const nativeFetch = window.fetch;
  window.fetch = function (input, init) {
    const reply = nativeFetch.call(this, input, init);
    if (!String((input && input.url) || input).includes('/regdemo/feed')) return reply;
    return reply.then((r) => {
      r.clone().json().then((b) => ((b && b.runs) || []).forEach((run, i) => {
        if (run && run.vv !== undefined) window.__rdViews[i] = run.vv;
      })).catch(() => {});
      return r;
    });
  };
})();"""
# Scroll the page's scrolling box so the first selector's element starts just below
# Streamlit's header; true if the last selector's element then ends inside the view.
ALIGN = """([first, last]) => {
  const a = document.querySelector(first), b = document.querySelector(last);
  let box = a.parentElement;
  while (box && !(box.scrollHeight > box.clientHeight
                  && /(auto|scroll)/.test(getComputedStyle(box).overflowY))) {
    box = box.parentElement;
  }
  box = box || document.scrollingElement;
  const header = document.querySelector('header');
  const head = header ? header.getBoundingClientRect().bottom : 0;
  box.scrollBy(0, a.getBoundingClientRect().top - head - 8);
  return b.getBoundingClientRect().bottom <= window.innerHeight;
}"""
SCROLL_TOP = """() => { for (const e of document.querySelectorAll('section, div')) {
  if (e.scrollTop > 0) e.scrollTop = 0; } }"""
CHART_DRAWN = """(key) => { const d = document.querySelector(`[data-chart=${key}]`);
  return !!(d && d._fullLayout && d.data && d.data.some(t => (t.x || []).length)); }"""


class NotReached(RuntimeError):
    """A state the screenshot needs did not show within the timeout."""


class Shooter:
    """One browser on one server; each shot gets a fresh context (its own cookies)."""

    def __init__(self, browser, url: str, out: Path, timeout: float, debug_dir: Path):
        self.browser, self.url, self.out = browser, url, out
        self.timeout, self.debug_dir = timeout, debug_dir
        self.page = None
        self.shot = ""  # the image being taken, for error messages

    # ------------------------------------------------------------- page helpers
    def new_page(self, size: tuple[int, int]):
        context = self.browser.new_context(viewport={"width": size[0], "height": size[1]})
        context.add_init_script(VIEWS_SEEN)
        self.page = context.new_page()
        return self.page

    def wait(self, what: str, read, predicate, timeout: float | None = None):
        """Poll `read()` until `predicate(value)`; NotReached (with a debug shot) if not."""
        try:
            value, _ = poll(read, predicate, timeout or self.timeout, every=0.1)
            return value
        except TimeoutError:
            last = read()
            path = self.debug_dir / f"{self.shot}-not-reached.png"
            try:
                self.page.screenshot(path=str(path))
            except Exception:  # noqa: BLE001 - the message matters more than the picture
                path = None
            raise NotReached(f"{self.shot}: {what} not reached within {timeout or self.timeout:g}"
                             f" s (last value {last!r}; page as it was: {path})") from None

    def loss(self) -> dict:
        return self.page.evaluate(READ_LOSS) or {"points": 0, "traces": [], "annotations": []}

    def status(self) -> dict:
        return self.page.evaluate(READ_STATUS)

    def newest(self) -> int:
        return max((int(x) for _, x, _ in self.loss()["traces"]), default=0)

    def text_shown(self, text: str) -> bool:
        return self.page.get_by_text(text).first.is_visible()

    def open(self, query: str, size: tuple[int, int]):
        """Load the page; wait for its first script run and the live board."""
        page = self.new_page(size)
        page.goto(f"{self.url}/?{query}")
        self.wait("the page's first run (the 'Press Train' prompt)",
                  lambda: page.get_by_text("to start. Change the live knobs").count(), bool)
        self.wait("the live board's loss chart",
                  lambda: page.evaluate("!!document.querySelector('[data-chart=loss]') && "
                                        "!document.querySelector('[data-stale=true]')"), bool)
        return page

    def click(self, name: str) -> None:
        self.page.get_by_role("button", name=name, exact=True).first.click()

    def train(self) -> None:
        """Press Train; press it once more if no point shows in 30 s (a click that landed
        mid-rerun can be dropped)."""
        self.click("Train")
        try:
            poll(lambda: self.loss()["points"], bool, 30, every=0.1)
        except TimeoutError:
            print(f"  {self.shot}: no point 30 s after Train; pressing it again")
            self.click("Train")
        self.wait("a first point on the loss chart", lambda: self.loss()["points"], bool)

    def wait_finished(self, epochs: int, timeout: float | None = None) -> dict:
        """Until run A shows `epochs / epochs`, stopped, and the page's 'Finished' note."""
        done = f"{epochs} / {epochs}"
        status = self.wait(f"the run finished ({done})", self.status,
                           lambda s: s["epoch"] == done and s["state"] == "stopped", timeout)
        self.wait(f"the 'Finished: reached {epochs} epochs' note",
                  lambda: self.text_shown(f"Finished: reached {epochs} epochs"), bool)
        return status

    def refresh_views(self, runs: int = 1) -> None:
        """Have the board show the views of the run's last epoch, then wait for them.

        A run that ends by itself (its last epoch, or the last of a Step(n)) keeps the views
        of its last refresh, which come at most once a second (run_states.VIEW_INTERVAL): at
        speed max that is tens to hundreds of epochs before the end. A command to the run
        makes its worker send fresh ones; P (Pause) is one that changes nothing at rest.
        """
        seen = lambda: self.page.evaluate("window.__rdViews.slice()")
        before = seen()
        self.page.evaluate("document.activeElement && document.activeElement.blur()")
        self.page.keyboard.press("p")
        self.wait("fresh views after P", seen, lambda now: len(now) >= runs and all(
            i >= len(before) or now[i] > before[i] for i in range(runs)))

    def settle(self, seconds: float = 1.0) -> None:
        """A moment for views to finish drawing (resized charts, the rerun after a finish)."""
        time.sleep(seconds)
        # No focus ring or hover shade on the last button pressed: focus nothing, and the
        # mouse rests on the empty header band of the main area.
        self.page.evaluate("document.activeElement && document.activeElement.blur()")
        self.page.mouse.move(self.page.viewport_size["width"] * 0.6, 30)
        time.sleep(0.3)

    def save(self, name: str, **figures) -> None:
        path = self.out / f"{name}.png"
        self.page.screenshot(path=str(path))
        size = self.page.viewport_size
        extra = "; ".join(f"{k} {v}" for k, v in figures.items())
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
              f"({size['width']}x{size['height']}, {path.stat().st_size:,} bytes)"
              + (f": {extra}" if extra else ""), flush=True)

    def close(self) -> None:
        if self.page is not None:
            self.page.context.close()
            self.page = None

    # ------------------------------------------------------------- the shots
    def dashboard(self, name: str, preset: str) -> None:
        from regdemo.presets import PRESETS

        epochs = PRESETS[preset].config.epochs
        self.open(f"preset={preset}&speed=max", DASHBOARD)
        self.train()
        status = self.wait_finished(epochs)
        self.refresh_views()
        self.settle()
        self.save(name, epochs=status["epoch"], train=status["train"], val=status["val"],
                  gap=status["gap"], test=status["test"])

    def network(self) -> None:
        from regdemo.presets import PRESETS

        epochs = PRESETS["l1_features"].config.epochs
        page = self.open("preset=l1_features&speed=max", DASHBOARD)
        self.train()
        self.wait_finished(epochs)
        self.refresh_views()
        self.wait("the network diagram drawn",
                  lambda: page.locator("[data-chart=net] circle").count(), bool)
        # From the chart options row above the loss chart down to the Network panel under it.
        if not page.evaluate(ALIGN, [".rd-board .rd-opts", "[data-chart=net]"]):
            print("  network-diagram: the Network panel does not end inside the view")
        self.settle()
        net = page.locator("[data-chart=net]")
        self.save("network-diagram", title=net.locator(".rd-net-title").inner_text(),
                  caption=net.locator(".rd-net-caption").inner_text().replace("\n", " "),
                  key=net.locator(".rd-net-key").inner_text().replace("\n", " "))

    def fork(self) -> None:
        page = self.open("preset=overfit&speed=50&epochs=600", WIDE)
        self.train()
        # 50 epochs/s: the chart trails the server by a poll and the click by a rerun; press
        # Pause 20 epochs before 100 to stop near it.
        self.wait("epoch 80 on the chart", self.newest, lambda n: n >= 80)
        self.click("Pause")
        paused = self.wait("the run paused", self.status, lambda s: s["state"] == "paused")
        at = int(paused["epoch"].split("/")[0])
        self.click("Fork A/B")
        branches = page.locator(".st-key-w_branch")
        self.wait("the 'Live knobs change' A/B control", branches.count, bool)
        b = branches.get_by_role("radio", name="B", exact=True)
        if b.get_attribute("aria-checked") != "true":  # the fork picks B itself
            b.click()
        self.wait("B picked under 'Live knobs change'", lambda: b.get_attribute("aria-checked"),
                  lambda v: v == "true")
        self.wait("branch B's line under the status row",
                  lambda: self.status()["branch"] or "", lambda t: t.startswith("Branch B"))
        # Drag L2's thumb to 0.01: one change (arrow keys on a paused run would make seven
        # at one epoch, which the chart labels by the first of them, "l2 0 -> 1e-05").
        l2 = page.get_by_role("slider", name="L2 penalty ⚡")
        l2.scroll_into_view_if_needed()
        box = l2.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        for dx in range(2, 400, 2):
            page.mouse.move(x + dx, y)
            if l2.get_attribute("aria-valuetext") == "0.01":
                break
        page.mouse.up()
        self.wait("L2 at 0.01 on the slider", lambda: l2.get_attribute("aria-valuetext"),
                  lambda v: v == "0.01")
        self.wait("the 'B: l2' marker on the loss chart", lambda: self.loss()["annotations"],
                  lambda a: any(t.startswith("B: l2 0 -> 0.01") for t in a))
        self.click("Train")
        epochs = 600

        def ends():
            traces = {n: x for n, x, _ in self.loss()["traces"]}
            return traces.get("A validation", 0), traces.get("B validation", 0)

        self.wait("both branches at epoch 600", ends, lambda ab: ab == (epochs, epochs),
                  timeout=max(self.timeout, 60))
        self.wait_finished(epochs)
        self.wait("branch B finished", lambda: self.status()["branch"] or "",
                  lambda t: f"epoch {epochs} ·" in t)
        self.refresh_views(runs=2)
        self.settle()
        a, b = (page.evaluate(READ_TRACE, f"{k} validation") for k in "AB")
        fork_val = next((v for x, v in a if x == at), None)
        marks = [t for t in self.loss()["annotations"] if "l2" in t]
        self.save("fork-ab", forked_at=at, markers=marks,
                  val_at_fork=f"{fork_val:.3g}" if fork_val is not None else None,
                  A_val_final=f"{a[-1][1]:.3g}", A_val_max=f"{max(v for _, v in a):.3g}",
                  B_val_final=f"{b[-1][1]:.3g}", B_val_min=f"{min(v for _, v in b):.3g}",
                  branch_line=self.status()["branch"])

    def sweep(self) -> None:
        page = self.open("preset=overfit", WIDE)
        page.get_by_role("tab", name="Sweep").click()
        knob = page.locator(".st-key-w_sweep_knob")
        self.wait("the Sweep tab's controls", knob.count, bool)
        seeds = page.locator(".st-key-w_sweep_seeds input")
        if seeds.input_value() != "3":
            seeds.fill("3")
            seeds.press("Enter")
        points = page.locator(".st-key-w_sweep_points input[type=range]")
        for _ in range(15):
            value = int(points.get_attribute("aria-valuetext"))
            if value == 10:
                break
            points.press("ArrowRight" if value < 10 else "ArrowLeft")
            time.sleep(0.15)
        self.wait("Seeds 3 and Points 10",
                  lambda: (seeds.input_value(), points.get_attribute("aria-valuetext")),
                  lambda v: v == ("3", "10"))
        spin = lambda name: page.get_by_role("spinbutton", name=name).input_value()
        settings = {"from": spin("From"), "to": spin("To"), "epochs": spin("Epochs per run")}
        self.click("Run sweep")
        # 30 runs of the overfit scenario on a 2-core machine: give it longer.
        note = page.get_by_text("Lowest mean validation loss at").first
        self.wait("the sweep's chart and its result note",
                  lambda: page.evaluate(CHART_DRAWN, "sweep_chart") and note.is_visible(),
                  bool, timeout=max(self.timeout, 600))
        page.locator("[data-chart=sweep_chart]").scroll_into_view_if_needed()
        self.settle(1.5)
        self.save("sweep-l2", **settings, note=note.inner_text())

    def lesson(self) -> None:
        from regdemo.lessons import LESSONS

        lesson = LESSONS["l2"]
        total = len(lesson.steps)
        # The markers the chart should carry at the last step: the live changes of the
        # steps done for us, each at its step's epoch ("l2 0 -> 0.01 @ epoch 100").
        expected = [f"{knob} @ epoch {step.at_epoch}" for step in lesson.steps[:-1]
                    for knob in step.live]
        for attempt in range(1, 4):
            page = self.open("lesson=l2&projector=1&speed=max", PROJECTOR)
            self.wait("step 1 of the lesson", lambda: self.text_shown(f"Step 1 of {total}"),
                      bool)
            for index in range(1, total):  # "Do it for me" on each step up to the last one
                target = lesson.steps[index].at_epoch
                self.click("Do it for me")
                self.wait(f"step {index + 1} of {total}",
                          lambda i=index: self.text_shown(f"Step {i + 1} of {total}"), bool)
                if target:
                    self.wait(f"the run paused at epoch {target}", self.status,
                              lambda s, t=target: s["epoch"] and s["epoch"].startswith(f"{t} /")
                              and s["state"] == "paused")
            self.wait("the loss chart drawn", lambda: self.loss()["points"], bool)
            self.refresh_views()
            self.settle(1.5)
            markers = self.loss()["annotations"]
            shown = [f"{m.split(' ')[0]} @ {m.split(' @ ')[-1]}" for m in markers]
            if shown == expected:
                break
            # Seen: "l2 0.01 -> 0 @ epoch 200" at step 3, which nobody did (a rerun that
            # carried the slider's old value?). Not a picture for the README: again.
            print(f"  lesson-projector, try {attempt}: the chart's markers are {markers}, "
                  f"expected {expected}; taking it again", flush=True)
            self.close()
        else:
            raise NotReached(f"lesson-projector: the chart's markers were {markers} at the last "
                             f"step in 3 tries, expected {expected}")
        page.evaluate(SCROLL_TOP)
        status = self.status()
        train, val = (dict(page.evaluate(READ_TRACE, name)) for name in ("training", "validation"))
        gaps = {e: f"{val[e] - train[e]:.2f}" for e in (1, 50, 100, 150, 200) if e in val}
        self.save("lesson-projector", step=f"{total} of {total}", epoch=status["epoch"],
                  markers=markers, train=status["train"], val=status["val"], gap=status["gap"],
                  gap_at_epoch=gaps)

    def shared(self) -> None:
        page = self.open("preset=overfit&epochs=50&speed=max", DASHBOARD)
        self.train()
        self.wait_finished(50)
        page.get_by_role("tab", name="Saved runs").click()
        code = page.locator("code").filter(has_text="?run=").first
        self.wait("the read-only link in the Saved runs tab", code.count, bool)
        link = code.inner_text().strip()
        self.close()
        page = self.new_page(DASHBOARD)  # another browser: its own context and cookies
        page.goto(link)
        self.wait("the 'Shared run (read-only)' panel",
                  lambda: page.get_by_text("Shared run (read-only):").count(), bool)
        self.wait("the shared run's curves",
                  page.locator("[data-chart=shared_chart] .scatterlayer .trace").count, bool)
        page.locator(".st-key-shared_run").scroll_into_view_if_needed()
        self.settle(1.5)
        panel = page.locator(".st-key-shared_run").inner_text().split("\n")
        self.save("shared-run", link=link.replace(self.url, "<server>"), panel=panel[0])


SHOTS = {
    "dashboard-dropout": lambda s: s.dashboard("dashboard-dropout", "dropout"),
    "dashboard-l1-features": lambda s: s.dashboard("dashboard-l1-features", "l1_features"),
    "dashboard-sine": lambda s: s.dashboard("dashboard-sine", "sine_wiggle"),
    "dashboard-digits": lambda s: s.dashboard("dashboard-digits", "digits_shift"),
    "network-diagram": Shooter.network,
    "fork-ab": Shooter.fork,
    "sweep-l2": Shooter.sweep,
    "lesson-projector": Shooter.lesson,
    "shared-run": Shooter.shared,
}


def warm_up(shooter: Shooter) -> None:
    """A 3-epoch run first: the server's workers import torch on their first run (minutes
    on a loaded machine), which no screenshot's timeout should pay for."""
    shooter.shot = "warm-up"
    try:
        shooter.open("preset=overfit&epochs=3&hidden=4&speed=max", DASHBOARD)
        shooter.train()
        shooter.wait_finished(3, timeout=max(shooter.timeout, 300))
    finally:
        shooter.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="",
                        help=f"comma list of images to retake (default: all): {', '.join(SHOTS)}")
    parser.add_argument("--out", type=Path, default=ROOT / "assets")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds each state may take to show (the sweep gets 600)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    names = [n.strip().removesuffix(".png") for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SHOTS]
    if unknown:
        parser.error(f"unknown image(s) {', '.join(unknown)}; choose from {', '.join(SHOTS)}")
    names = names or list(SHOTS)
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    data_dir = Path(tempfile.mkdtemp(prefix="regdemo-screenshots-"))
    debug_dir = Path(tempfile.mkdtemp(prefix="regdemo-screenshots-debug-"))
    failed = None
    with tempfile.TemporaryFile("w+") as log:
        proc, url = launch({"REGDEMO_DATA_DIR": str(data_dir)}, log)
        try:
            poll(lambda: healthy(url), bool, timeout=120, every=0.2)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=args.chromium, args=FLAGS)
                shooter = Shooter(browser, url, args.out, args.timeout, debug_dir)
                try:
                    warm_up(shooter)
                    for name in names:
                        shooter.shot = name
                        try:
                            SHOTS[name](shooter)
                        finally:
                            shooter.close()
                except NotReached as exc:
                    failed = str(exc)
                except PlaywrightError as exc:  # an element to click or read never came
                    failed = f"{shooter.shot}: {exc.message.splitlines()[0]}" + "".join(
                        f"\n  {line}" for line in exc.message.splitlines()[1:6])
                finally:
                    browser.close()
        except TimeoutError:
            failed = f"the server at {url} did not answer its health check within 120 s"
        finally:
            stop(proc)
            shutil.rmtree(data_dir, ignore_errors=True)
            if failed:
                log.seek(0)
                print("server log tail:\n" + "".join(log.readlines()[-20:]), file=sys.stderr)
    if failed:
        print(f"FAILED: {failed}", file=sys.stderr)
        return 1
    shutil.rmtree(debug_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
