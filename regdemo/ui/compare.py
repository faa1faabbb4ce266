"""The "Saved runs" tab: overlay runs, see what differs, rename, delete, export, import."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import datetime

import pandas as pd
import streamlit as st

from regdemo import plots
from regdemo.config import Config
from regdemo.store import MAX_IMPORT_BYTES, RunInfo, RunStore, StoreError
from regdemo.ui.board import static_chart
from regdemo.ui.share import base_url

CLI_ORIGIN = "cli"  # runs of `python -m regdemo train`: nobody's browser made them
MAX_COMPARED = 7  # one color each (plots.RUN_COLORS)
_SUMMARY_COLUMNS = {  # summary key -> column title
    "val_loss": "final val loss", "best_val_loss": "best val loss", "gap": "gap",
    "best_epoch": "best epoch", "val_score": "val score", "test_loss": "test loss",
    "test_score": "test score", "sparsity": "sparsity",
}


def run_label(info: RunInfo) -> str:
    """How a run is named on charts and pickers: its name and a short id."""
    return f"{info.name} · {info.id[:4]}"


def _figures(info: RunInfo) -> dict:
    summary = info.summary or {}
    out = {title: summary.get(key) for key, title in _SUMMARY_COLUMNS.items()}
    if out["final val loss"] is None:
        out["final val loss"] = info.last_val_loss
    return out


def runs_table(runs: list[RunInfo]) -> pd.DataFrame:
    """One row per run: name, status, epochs and its final figures."""
    return pd.DataFrame([{
        "name": r.name, "status": r.status, "epochs": r.epochs, **_figures(r),
        "created": datetime.fromtimestamp(r.created).strftime("%d %b %H:%M:%S"),
        "from": r.origin, "id": r.id,
    } for r in runs])


def config_differences(runs: list[RunInfo]) -> pd.DataFrame:
    """The settings in which the runs differ (rows), one column per run."""
    keys = sorted({k for r in runs for k in r.config})
    differing = [k for k in keys if len({r.config.get(k) for r in runs}) > 1]
    return pd.DataFrame({run_label(r): [r.config.get(k, "–") for k in differing] for r in runs},
                        index=differing)


def saved_runs_tab(store: RunStore, browser: str | None) -> None:
    """Draw the tab: the runs of this `browser` (its owner token) only. Others' runs are
    not listed, so not renamed or deleted here; a read-only link or an export shares one."""
    if store.problem:
        st.warning(store.problem, icon=":material/database:")
    # This browser's runs, and the server's own command-line runs (read-only here).
    runs = store.runs(browser=browser, unowned_from=CLI_ORIGIN) if browser else []
    if not runs:
        st.info("Every run you train is saved here as it goes (this browser's runs only, "
                "plus runs trained on the server's command line). "
                "Train one, fork it or change a knob, then come back to lay the curves over "
                "each other.", icon=":material/history:")
        _import(store, browser)
        return
    by_id = {r.id: r for r in runs}
    if not st.session_state.get("compare_picked"):  # until the user picks: the newest two
        st.session_state["w_compare"] = [r.id for r in runs[:2]]
    st.session_state["w_compare"] = [
        i for i in st.session_state.get("w_compare", []) if i in by_id]
    chosen_ids = st.multiselect(
        "Runs to compare", list(by_id), key="w_compare", max_selections=MAX_COMPARED,
        on_change=lambda: st.session_state.update(compare_picked=True),
        format_func=lambda i: run_label(by_id[i]),
        help="Newest first. Each run gets one color: training solid, validation dashed.")
    chosen = [by_id[i] for i in chosen_ids]
    if chosen:
        _overlay(store, chosen)
    with st.expander(f"All saved runs ({len(runs)})", expanded=not chosen):
        st.dataframe(runs_table(runs), hide_index=True, key="saved_table",
                     column_config={"id": st.column_config.TextColumn(width="small")})
    if chosen:
        _actions(store, chosen)
    _import(store, browser)


def _overlay(store: RunStore, chosen: list[RunInfo]) -> None:
    saved = [store.get(r.id) for r in chosen]
    saved = [s for s in saved if s is not None]  # deleted meanwhile by another tab
    opts = st.columns([1, 1, 3])
    metric = opts[0].segmented_control("Curve", ["loss", "score"], default="loss",
                                       key="w_compare_metric",
                                       format_func=lambda m: "Loss" if m == "loss" else "Score")
    log_y = opts[1].toggle("Log scale", key="w_compare_log")
    static_chart(_runs_figure(saved, metric or "loss", log_y, "Saved runs"), "compare_chart")
    left, right = st.columns([3, 2])
    left.markdown("**Final figures**")
    left.dataframe(runs_table(chosen).drop(columns=["created", "id"]), hide_index=True)
    right.markdown("**Settings that differ**")
    differences = config_differences(chosen)
    if len(chosen) < 2:
        right.caption("Pick two or more runs to see what differs.")
    elif differences.empty:
        right.caption("Same settings: the runs differ only in their live changes, if any.")
    else:
        right.dataframe(differences)


def _runs_figure(saved: list, metric: str, log_y: bool, title: str):
    """Saved runs' curves on one chart, one colour and one legend row per run."""
    # Plotly renders a little HTML in labels: a run's name is shown as text, never as markup.
    fig = plots.compare_figure(
        [(html.escape(run_label(s.info)), s.history, s.events) for s in saved],
        metric=metric, log_y=log_y, score_name="score",
        title=f"{title}: {'loss' if metric != 'score' else 'score'}, "
              "training (solid) vs validation (dashed)")
    # One run per legend row, to the right of the plot: long names stay whole and apart.
    fig.update_layout(height=420, legend=dict(orientation="v", x=1.02, xanchor="left", y=1,
                                              yanchor="top", font=dict(size=12)),
                      margin=dict(r=20, t=60))
    fig.update_layout(uirevision=f"{[s.id for s in saved]}-{metric}-{log_y}")
    return fig


def share_link(run_id: str) -> str:
    """A link that shows one saved run, read-only, to whoever opens it."""
    return f"{base_url()}?run={run_id}"


def shared_run_panel(store: RunStore, run_id: str, on_load: Callable[[Config], None],
                     on_close: Callable[[], None]) -> None:
    """A run someone shared by link: its curves, figures and settings, read-only."""
    saved = store.get(run_id)
    with st.container(key="shared_run", border=True):
        if saved is None:
            st.warning(f"The shared run {run_id} is not on this server: deleted by its owner, "
                       "or the link is from another server.", icon=":material/link_off:")
            st.button("Close", key="btn_shared_close", on_click=on_close)
            return
        st.markdown(f"**Shared run (read-only):** {html.escape(saved.info.name)} · "
                    f"{saved.info.epochs} epochs")
        static_chart(_runs_figure([saved], "loss", False, "Shared run"), "shared_chart")
        left, right = st.columns([3, 2])
        left.dataframe(runs_table([saved.info]).drop(columns=["id"]), hide_index=True)
        config, problems = Config.from_query(saved.info.config)
        changed = config.to_query(only_changed=True)
        right.caption("Settings (those not at their defaults): " + (", ".join(
            f"{k} = {v}" for k, v in changed.items()) or "all defaults"))
        cols = st.columns([2, 1, 3])
        cols[0].button("Train these settings", key="btn_shared_load", type="primary",
                       icon=":material/play_arrow:", on_click=on_load, args=(config,),
                       help="Load its settings into the controls; press Train for your own "
                            "run. The shared run stays its owner's.", disabled=bool(problems))
        cols[1].button("Close", key="btn_shared_close", on_click=on_close)


def _actions(store: RunStore, chosen: list[RunInfo]) -> None:
    st.markdown("**Manage**")
    target_id = st.selectbox("Run", [r.id for r in chosen], key="w_manage_run",
                             format_func=lambda i: run_label(next(r for r in chosen
                                                                 if r.id == i)))
    target = next(r for r in chosen if r.id == target_id)
    cols = st.columns([3, 1, 1, 1, 1])
    if target.origin == CLI_ORIGIN:
        cols[0].caption("Trained on the server's command line: rename or delete it there "
                        f"(python -m regdemo runs delete {target.id}).")
    else:
        name = cols[0].text_input("New name", value=target.name, key=f"w_name_{target.id}",
                                  max_chars=120)
        if cols[1].button("Rename", key="btn_rename", width="stretch") and \
                name != target.name:
            _try(lambda: store.rename(target.id, name), f"Renamed to {name!r}.")
        if cols[2].button("Delete", key="btn_delete", width="stretch",
                          icon=":material/delete:"):
            _try(lambda: store.delete(target.id), f"Deleted {target.name!r}.")
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in target.name)[:60]
    cols[3].download_button("CSV", lambda: store.export_csv(target.id),
                            file_name=f"{safe}-{target.id}.csv", mime="text/csv",
                            key="btn_csv", width="stretch", icon=":material/download:")
    cols[4].download_button("JSON", lambda: store.export_json(target.id),
                            file_name=f"{safe}-{target.id}.json", mime="application/json",
                            key="btn_json", width="stretch", icon=":material/download:")
    st.caption("Read-only link to this run (others can see it, not change or delete it):")
    st.code(share_link(target.id), language=None)


def _try(action, done: str) -> None:
    try:
        action()
    except StoreError as exc:
        st.error(str(exc))
        return
    st.toast(done)
    st.rerun()


def _import(store: RunStore, browser: str | None) -> None:
    if browser is None:  # the page does not know this browser yet (a moment after opening)
        return
    upload = st.file_uploader(
        "Import a run (a JSON file exported here)", type=["json"], key="w_import",
        help=f"At most {MAX_IMPORT_BYTES // 2**20} MB; the file is checked, never executed.")
    if upload is None:
        return
    seen = st.session_state.get("imported")
    if seen == upload.file_id:
        return  # already imported on an earlier rerun
    if upload.size > MAX_IMPORT_BYTES:
        st.error(f"That file is {upload.size:,} bytes; the limit is {MAX_IMPORT_BYTES:,}.")
        return
    try:
        run_id = store.import_json(upload.getvalue())
        store.set_browser(run_id, browser)  # an imported run is the importer's
    except StoreError as exc:
        st.error(f"Not imported: {exc}")
        return
    st.session_state["imported"] = upload.file_id
    st.success(f"Imported as run {run_id}.")
