"""Browser latency: click Train -> first chart point, chart refresh interval, slider -> marker.

Starts `streamlit run app.py`, drives Debian's headless Chromium with Playwright, and prints
medians and p95 over several tries. Goals (issue 5): first point <= 1.0 s, refresh every
<= 0.5 s, slider to marker <= 1.0 s.

    python bench/browser.py [--tries 10] [--screenshot-dir assets]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from regdemo.ui.live_chart import read_chart  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class LossChart:
    """The loss chart's frame, found once and re-found if it ever remounts."""

    def __init__(self, page):
        self.page, self.frame = page, None

    def read(self) -> dict:
        if self.frame is not None:
            chart = read_chart(self.frame)
            if chart and "Loss" in chart["title"]:
                return chart
        for frame in self.page.frames[1:]:
            chart = read_chart(frame)
            if chart and "Loss" in chart["title"]:
                self.frame = frame
                return chart
        return {"points": 0, "annotations": []}

    def points(self) -> int:
        return self.read()["points"]

    def newest(self) -> float:
        """The newest epoch drawn (point counts stop at the 600 drawn per curve)."""
        traces = self.read().get("traces") or []
        return max((x for _, x in traces), default=0)

    def markers(self) -> int:
        return sum(t.startswith("dropout") for t in self.read()["annotations"])


def start_server() -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free port; returns (process, url) once healthy."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "REGDEMO_GRACE_SECONDS": "2"},
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("streamlit did not start")


def poll(read, predicate, timeout=90.0, every=0.01):
    """Call `read()` until `predicate(value)`; returns (value, seconds waited)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        value = read()
        if predicate(value):
            return value, time.perf_counter() - t0
        time.sleep(every)
    raise TimeoutError(read)


def one_try(browser, url: str, shot: Path | None) -> dict:
    """Open a fresh page, train, move dropout; return the three latencies."""
    context = browser.new_context(viewport={"width": 1500, "height": 1100})
    page = context.new_page()
    page.goto(f"{url}/?preset=overfit&epochs=100000")
    page.get_by_text("to start. Change the live knobs").wait_for(timeout=60000)
    page.wait_for_function("!document.querySelector('[data-stale=true]')")
    chart = LossChart(page)
    chart.points()  # find the (empty) chart's frame before the clock starts
    page.get_by_role("button", name="Train", exact=True).click()
    _, first = poll(chart.points, lambda n: n > 0)
    # Refresh interval: time between successive changes of the chart's newest epoch.
    changes, last, t_last = [], chart.newest(), time.perf_counter()
    deadline = t_last + 60
    while len(changes) < 8 and time.perf_counter() < deadline:
        n = chart.newest()
        if n != last:
            now = time.perf_counter()
            changes.append(now - t_last)
            last, t_last = n, now
        time.sleep(0.01)
    slider = page.get_by_role("slider", name="Dropout ⚡")
    slider.focus()
    t0 = time.perf_counter()
    slider.press("ArrowRight")
    poll(chart.markers, lambda n: n > 0)
    marker = time.perf_counter() - t0
    if shot is not None:
        page.screenshot(path=str(shot))
    page.get_by_role("button", name="Reset", exact=True).click()
    context.close()
    refresh = statistics.median(changes[1:]) if len(changes) > 1 else float("inf")
    return {"first": first, "refresh": refresh, "marker": marker}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    proc, url = start_server()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=FLAGS)
            one_try(browser, url, None)  # warm-up: workers, first imports, browser cache
            results = [one_try(browser, url, None) for _ in range(args.tries)]
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    goals = {"first": 1.0, "refresh": 0.5, "marker": 1.0}
    names = {"first": "click Train -> first point", "refresh": "chart refresh interval",
             "marker": "dropout slider -> event marker"}
    print(f"| measure ({args.tries} tries) | median s | p95 s | goal s | met |")
    print("|---|---|---|---|---|")
    met = 0
    for key, goal in goals.items():
        values = sorted(r[key] for r in results)
        med = statistics.median(values)
        p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
        ok = med <= goal
        met += ok
        print(f"| {names[key]} | {med:.3f} | {p95:.3f} | {goal} | {'yes' if ok else 'NO'} |")
    print(f"verdict: {met}/3 browser goals met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
