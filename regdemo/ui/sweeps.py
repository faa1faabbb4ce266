"""The "Sweep" tab: train one knob over a range and seeds, draw the validation curve."""

from __future__ import annotations

import io
from dataclasses import asdict

import pandas as pd
import streamlit as st

from regdemo import plots
from regdemo.config import Config
from regdemo.sweep import KNOBS, MAX_POINTS, MAX_SEEDS, MIN_POINTS, SweepError, SweepSpec
from regdemo.sweep_jobs import CANCELLED, DONE, FAILED, RUNNING, SweepJob
from regdemo.ui.board import static_chart
from regdemo.ui.state import get_sweeps

# A sensible first range per knob: (from, to, log scale).
DEFAULT_RANGES = {
    "l1": (1e-5, 1e-2, True), "l2": (1e-4, 1.0, True), "weight_decay": (1e-4, 1.0, True),
    "dropout": (0.0, 0.8, False), "label_smoothing": (0.0, 0.3, False),
    "augment_strength": (0.0, 1.0, False), "max_norm": (0.5, 8.0, True),
    "n_train": (10, 400, True), "width": (2, 256, True),
}
POLL_SECONDS = 0.5
MIN_SWEEP_EPOCHS, MAX_SWEEP_EPOCHS = 10, 2000  # per run: a sweep is 5-75 runs on this server


def _on_knob_change() -> None:
    start, stop, log = DEFAULT_RANGES[st.session_state["w_sweep_knob"]]
    st.session_state.update(w_sweep_from=float(start), w_sweep_to=float(stop), w_sweep_log=log)


def sweep_tab(config: Config) -> None:
    """Draw the tab; `config` is the page's current settings (the sweep's base)."""
    st.caption("Train the current settings again and again, moving one knob, and see where "
               "validation loss is lowest: the U-shaped validation curve.")
    if "w_sweep_knob" not in st.session_state:
        st.session_state["w_sweep_knob"] = "l2"
        _on_knob_change()
    cols = st.columns([2, 1, 1, 1])
    knob = cols[0].selectbox("Knob", KNOBS, key="w_sweep_knob", on_change=_on_knob_change)
    start = cols[1].number_input("From", key="w_sweep_from", format="%g")
    stop = cols[2].number_input("To", key="w_sweep_to", format="%g")
    log = cols[3].toggle("Log steps", key="w_sweep_log")
    cols = st.columns([2, 1, 1, 1])
    points = cols[0].slider("Points", MIN_POINTS, MAX_POINTS, 10, key="w_sweep_points")
    seeds = cols[1].number_input("Seeds", 1, MAX_SEEDS, 3, key="w_sweep_seeds",
                                 help="Runs per value; the band is ±1 std over them.")
    epochs = cols[2].number_input("Epochs per run", MIN_SWEEP_EPOCHS, MAX_SWEEP_EPOCHS,
                                  max(MIN_SWEEP_EPOCHS, min(config.epochs, 500)), step=50,
                                  key="w_sweep_epochs")
    job: SweepJob | None = st.session_state.get("sweep_job")
    busy = job is not None and job.active
    if cols[3].button("Run sweep", type="primary", key="btn_sweep", disabled=busy,
                      icon=":material/stacked_line_chart:", width="stretch"):
        job = _submit(config.replace(epochs=int(epochs)), knob, start, stop, points, log,
                      int(seeds))
        busy = job is not None and job.active
    st.fragment(run_every=POLL_SECONDS if busy else None)(_progress)()


def _submit(base: Config, knob, start, stop, points, log, seeds) -> SweepJob | None:
    value = int if knob in ("n_train", "width") else float
    try:
        spec = SweepSpec(base, knob, value(start), value(stop), points, log, seeds)
    except SweepError as exc:
        for error in exc.errors:
            st.error(error, icon=":material/error:")
        return None
    job = get_sweeps().submit(spec)
    st.session_state["sweep_job"] = job
    return job


def progress_text(status: str, done: int, total: int, ahead: int) -> str:
    """The progress bar's words. Runs train in batches (many small models as one), so the
    count moves in steps: say how many are done, never "run 7 of 6"."""
    if status != RUNNING:
        return f"Waiting: {ahead} sweep{'s' if ahead != 1 else ''} from other pages run first"
    if done >= total:
        return f"All {total} runs trained: drawing the curve"
    return f"Training {total} runs in parallel batches: {done} of {total} done"


def _progress() -> None:
    job: SweepJob | None = st.session_state.get("sweep_job")
    if job is None:
        st.info("Pick a knob and a range, then **Run sweep**. The runs train in parallel on "
                "the server's cores and use the settings in the sidebar.",
                icon=":material/tune:")
        return
    if job.active:
        text = progress_text(job.status, job.done, job.total, get_sweeps().ahead_of(job))
        cols = st.columns([5, 1])
        cols[0].progress(job.done / max(job.total, 1), text=text)
        if cols[1].button("Cancel", key="btn_sweep_cancel", width="stretch"):
            job.cancel()
    elif st.session_state.get("sweep_polling"):
        st.session_state["sweep_polling"] = False
        st.rerun(scope="app")  # the sweep ended: redraw once more, polling off
    if job.active:
        st.session_state["sweep_polling"] = True
    if job.status == FAILED:
        st.error(job.error, icon=":material/error:")
    if job.result is not None and job.result.rows:
        _result(job)
    elif job.status in (DONE, CANCELLED):
        st.warning("The sweep ended before any run finished.")


def _result(job: SweepJob) -> None:
    result, spec = job.result, job.spec
    current = getattr(spec.base, spec.knob, None) if spec.knob != "width" else \
        (spec.base.hidden[0] if spec.base.hidden else None)
    fig = plots.sweep_figure(result.stats, spec.knob, log_x=spec.log, best=result.best,
                             current=current)
    fig.update_layout(uirevision=f"sweep-{job.id}")
    static_chart(fig, "sweep_chart")
    note = f"{len(result.rows)} runs in {result.wall_time:.1f} s on the {result.backend} pool"
    if result.cancelled:
        note += " (cancelled: the curve shows the runs that finished)"
    best = result.best
    if best is not None:
        test = "" if best.test_loss_mean is None else (
            f"; its **test loss is {best.test_loss_mean:.3g}**, the honest figure: validation "
            "chose this value, so its validation loss flatters it, and nothing looked at the "
            "test set")
        note = f"Lowest mean validation loss at **{spec.knob} = {best.value:.3g}**{test} · " + note
    if spec.log and current is not None and current <= 0:
        note += f" · the current setting, {spec.knob} = {current:g}, lies off the log scale"
    st.markdown(note)
    diverged = sum(p.n_diverged for p in result.stats)
    if diverged:
        st.warning(f"{diverged} run{'s' if diverged > 1 else ''} diverged and "
                   f"{'are' if diverged > 1 else 'is'} left out of the means.")
    table = pd.DataFrame([asdict(p) for p in result.stats]).rename(columns={
        "value": spec.knob, "n_runs": "runs averaged", "n_diverged": "diverged",
        "train_loss_mean": "train loss", "train_loss_std": "± std",
        "val_loss_mean": "val loss", "val_loss_std": "± std ",
        "test_loss_mean": "test loss", "test_loss_std": "± std  "})
    st.dataframe(table, hide_index=True, key="sweep_table")
    out = io.StringIO()
    pd.DataFrame([asdict(r) for r in result.rows]).rename(
        columns={"value": spec.knob}).to_csv(out, index=False)
    st.download_button("Download every run (CSV)", out.getvalue(),
                       file_name=f"sweep-{spec.knob}.csv", mime="text/csv",
                       key="btn_sweep_csv", icon=":material/download:")
