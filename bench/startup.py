"""Start-up: launch -> health, -> first page, -> page ready, -> first chart point; imports.

Each try launches a fresh `streamlit run app.py` (headless, free port, empty data dir) and
opens the page in a fresh context of headless Chromium as soon as /_stcore/health answers.
"Page ready" is when every live chart of the board is drawn (each visible `[data-chart]` div
of the live board has Plotly's `_fullLayout`) and the Train button is enabled; it is timed
by the page's own clock from the navigation's start (goal: <= 2 s, the navigation starting
as soon as the server is up). Train is clicked once the page is ready (it used to be
clicked on first paint), so "first point" is when the workers, started by the first page
view, have trained and sent their first epoch and the board drew it. Imports are timed in
fresh interpreters (after `import streamlit` where the server has it already), and
`-X importtime` names the heavy packages that app.py's imports pull in before the first
page can render.

    python bench/startup.py [--tries 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.browser import FLAGS, RECORDER, cpu_seconds, healthy, launch, poll, stop, tree  # noqa: E402

READY_GOAL = 2.0  # s from the navigation's start to every live chart drawn and Train enabled

HEAVY = ("torch", "sklearn", "scipy", "plotly", "pandas", "numpy", "pyarrow")
# (label, imported before the clock starts, module timed)
IMPORTS = [
    ("import regdemo", "", "regdemo"),
    ("import regdemo.config", "", "regdemo.config"),
    ("import regdemo.store", "", "regdemo.store"),
    ("import regdemo.engine (torch)", "", "regdemo.engine"),
    ("import streamlit", "", "streamlit"),
    ("app.py's import (regdemo.ui.page) after streamlit", "import streamlit", "regdemo.ui.page"),
]


def one_launch(browser) -> dict:
    """Seconds from launch to health, first page, page ready and first chart point."""
    data_dir = tempfile.mkdtemp(prefix="regdemo-bench-")
    with tempfile.TemporaryFile("w+") as log:
        t0, wall0 = time.perf_counter(), time.time()
        proc, url = launch({"REGDEMO_DATA_DIR": data_dir, "REGDEMO_GRACE_SECONDS": "2"}, log)
        context = None
        try:
            _, health = poll(lambda: healthy(url), bool, timeout=120, every=0.02)
            context = browser.new_context(viewport={"width": 1500, "height": 1100})
            context.add_init_script(RECORDER)
            page = context.new_page()
            page.goto(url, wait_until="commit")
            page.get_by_text("to start. Change the live knobs").wait_for(timeout=120000)
            first_page = time.perf_counter() - t0
            cpu = cpu_seconds([proc.pid]), cpu_seconds(tree(proc.pid)[1:])
            rd = lambda: page.evaluate("() => window.__rd")  # noqa: E731
            ready = poll(rd, lambda r: r["ready"] is not None, timeout=120, every=0.02)[0]
            origin = page.evaluate("performance.timeOrigin") / 1000  # navigation start
            page.get_by_role("button", name="Train", exact=True).click()
            try:  # the board's poll after the click knows the run (epochs or not)
                poll(rd, lambda r: r["clicks"] and any(f[0] >= r["clicks"][-1] and f[3]
                                                       for f in r["feed"]), 60, 0.05)
            except TimeoutError:
                seen = {k: v[-3:] if isinstance(v, list) else v for k, v in rd().items()}
                raise RuntimeError(f"Train clicked, no run 60 s later: {seen}") from None
            got = poll(rd, lambda r: r["clicks"] and any(n > 0 for _, _, n in r["xs"]),
                       timeout=300, every=0.02)[0]
            click = got["clicks"][-1]
            point = next(t for t, _, n in got["xs"] if n > 0 and t >= click)
        except Exception:
            log.seek(0)
            print("server log tail:\n" + "".join(log.readlines()[-20:]), file=sys.stderr)
            raise
        finally:
            if context is not None:
                context.close()
            stop(proc)
            shutil.rmtree(data_dir, ignore_errors=True)
    return {"health": health, "page": first_page,
            "ready": origin + ready["ready"] / 1000 - wall0, "nav_ready": ready["ready"] / 1000,
            "nav_mount": ready["mount"] / 1000,
            "nav_plotly": (ready["plotly"] or float("nan")) / 1000,
            "point": origin + point / 1000 - wall0, "train": (point - click) / 1000,
            "cpu_server": cpu[0], "cpu_workers": cpu[1], "charts": ready["readyCharts"]}


def import_seconds(before: str, module: str) -> float:
    """Seconds to import `module` in a fresh interpreter, after `before` ran."""
    code = (f"import time\n{before}\nt = time.perf_counter()\nimport {module}\n"
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    return float(out.stdout.split()[-1])


def heavy_on_page_path() -> dict[str, tuple[float, str]]:
    """Heavy package -> (s its first import adds, the regdemo module that pulled it in)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c",
                          "import streamlit\nimport regdemo.ui.page"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stderr
    lines = [line.split("|") for line in out.splitlines() if line.startswith("import time:")]
    rows = [(int(p[1]), len(p[2]) - len(p[2].lstrip()), p[2].strip()) for p in lines
            if p[1].strip().isdigit()]  # (cumulative us, indent, name), children first
    start = [name for _, _, name in rows].index("streamlit") + 1  # what app.py adds
    found = {}  # app.py's imports after streamlit's own
    for i in range(start, len(rows)):
        us, indent, name = rows[i]
        if name in HEAVY and us >= 50_000:
            parent, depth = "app.py", indent
            for _, d, n in rows[i + 1:]:  # ancestors: the next lines less indented
                if d < depth:
                    depth = d
                    if n.startswith("regdemo"):
                        parent = n
                        break
            found[name] = (us / 1e6, parent)
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    load = [os.getloadavg()[0]]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=args.chromium, args=FLAGS)
        try:
            launches = [one_launch(browser) for _ in range(args.tries)]
        finally:
            browser.close()
    load.append(os.getloadavg()[0])
    imports = {label: [import_seconds(before, module) for _ in range(args.tries)]
               for label, before, module in IMPORTS}
    heavy = heavy_on_page_path()
    load.append(os.getloadavg()[0])

    print(f"| measure (median of {args.tries}) | median s | min s | max s |")
    print("|---|---|---|---|")
    names = {"health": "launch -> /_stcore/health ok", "page": "launch -> first page drawn",
             "ready": "launch -> page ready (every live chart drawn, Train enabled)",
             "nav_mount": "navigation -> live board mounted (its loss chart's div exists)",
             "nav_plotly": "navigation -> Plotly's bundle ran (/regdemo/plotly.min.js)",
             "nav_ready": f"navigation -> page ready (goal <= {READY_GOAL:.0f} s)",
             "point": "launch -> first chart point (Train clicked when the page is ready)",
             "train": "Train click -> first chart point",
             "cpu_server": "CPU s of the server until first page",
             "cpu_workers": "CPU s of its workers until first page (they start on first view)"}
    for key, name in names.items():
        values = [r[key] for r in launches]
        print(f"| {name} | {statistics.median(values):.2f} | {min(values):.2f} "
              f"| {max(values):.2f} |")
    for label, values in imports.items():
        print(f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} "
              f"| {max(values):.2f} |")
    print(f"(load average during the runs: {', '.join(f'{x:.1f}' for x in load)}; "
          f"{os.cpu_count()} cores)")
    charts = sorted({", ".join(r["charts"]) for r in launches})
    print(f"live charts waited for: {' | '.join(charts)}")
    page_import = statistics.median(imports[IMPORTS[-1][0]])
    print("heavy imports on the first paint path (app.py, after streamlit; -X importtime, "
          "cumulative s at first import):")
    for name, (seconds, parent) in sorted(heavy.items(), key=lambda kv: -kv[1][0]):
        print(f"  {name}: {seconds:.2f} s, first imported by {parent}")
    med = {key: statistics.median(r[key] for r in launches) for key in names}
    torch = heavy.get("torch", (0.0, ""))[0]
    print(f"verdict: first page {med['page']:.1f} s after launch ({med['page'] - med['health']:.1f}"
          f" s after health), first point {med['point']:.1f} s; app.py's imports take "
          f"{page_import:.1f} s before the first page can render, torch {torch:.1f} s of them"
          f" ({'on' if 'torch' in heavy else 'off'} the first paint path)")
    ok = med["nav_ready"] <= READY_GOAL
    print(f"verdict: page load -> every live chart mounted and Train usable: "
          f"{'met' if ok else 'NOT met'} (median {med['nav_ready']:.2f} s after the navigation "
          f"started, {med['ready'] - med['health']:.2f} s after health ok, "
          f"max {max(r['nav_ready'] for r in launches):.2f} s; goal <= {READY_GOAL:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
