"""The Code tab: the current run as one standalone PyTorch script, to read and download."""

from __future__ import annotations

import streamlit as st

from regdemo.codegen import abridged, script_for, starting_config
from regdemo.config import MAX_EPOCHS, Config

CACHE_KEY = "code_script"  # (config, events, script) of the last script this session made


def _script(config: Config, events: tuple, split) -> str:
    """The script, made once per run state: reruns redraw it without rebuilding it."""
    cached = st.session_state.get(CACHE_KEY)
    if cached is not None and cached[0] == config and cached[1] == events:
        return cached[2]
    script = script_for(config, events, split)
    st.session_state[CACHE_KEY] = (config, events, script)
    return script


def code_tab(handle, config: Config) -> None:
    """The script of the current run (its starting settings, its live changes so far as a
    schedule), or of the controls' settings before the first Train."""
    if handle is not None:
        snap = handle.snapshot(since=MAX_EPOCHS)  # config, events and data; no history
        events = tuple(snap.events)
        start, split = starting_config(snap.config, events), snap.split
        note = "This run as plain PyTorch: the same data, initial weights and batches"
        if events:
            note += f", and its {len(events)} live change(s) so far after the same epochs"
    else:
        start, events, split = config, (), None
        note = "The controls' settings as plain PyTorch (press Train to run them here)"
    try:
        script = _script(start, events, split)
    except ValueError as exc:
        st.warning(f"This run cannot be written as a script: {exc}", icon=":material/code_off:")
        return
    st.caption(f"{note}. It needs only torch and numpy, prints the training and validation "
               "loss after every epoch, and ends where the lab's run ends (within float "
               "rounding). Long embedded data is cut short here; the download is complete.")
    st.download_button("Download the script (.py)", script, file_name="regdemo_run.py",
                       mime="text/x-python", icon=":material/download:", key="btn_code_download")
    st.code(abridged(script), language="python")
