"""The sidebar's "Your data (CSV)" uploader: read a file, pick its target and task, and on
accept switch the dataset control to upload:<hash> (kept in the runs store)."""

from __future__ import annotations

import hashlib

import streamlit as st

from regdemo.config import data_settings
from regdemo.ui import controls
from regdemo.ui.state import get_store
from regdemo.uploads import MAX_BYTES, TASKS, UploadError, columns, parse_csv

FILE, TARGET, TASK = "w_upload_file", "w_upload_target", "w_upload_task"
PARSED = "upload_parsed"  # (file hash, target, task) -> Table or error text, the last one
NOTICE = "upload_notice"  # what the last accept did, shown once


def _parsed(data: bytes, target: str, task: str):
    """The Table (or the refusal's text) for these choices; parsed once per choice, since
    a 32 MB file takes seconds and the page reruns on every click."""
    key = (hashlib.sha256(data).hexdigest(), target, task)
    cached = st.session_state.get(PARSED)
    if cached is None or cached[0] != key:
        try:
            result = parse_csv(data, target, None if task == "auto" else task)
        except UploadError as exc:
            result = str(exc)
        cached = (key, result)
        st.session_state[PARSED] = cached
    return cached[1]


def _accept() -> None:
    """Keep the parsed table and point the data controls at it (a widget callback)."""
    table = st.session_state.get(PARSED, (None, None))[1]
    if table is None or isinstance(table, str):
        return
    store = get_store()
    store.save_dataset(table)
    for name, value in data_settings(table.dataset).items():
        controls.set_widget(name, value)
    where = "" if store.persistent else " (kept in memory only: the runs file is unusable)"
    st.session_state[NOTICE] = f"Training on your data: {table.describe()}{where}."


def draw(container) -> None:
    """The uploader and, once a file is chosen, its target, task and Use button."""
    file = container.file_uploader(
        "Your data (CSV)", type=["csv", "txt", "tsv"], key=FILE,
        help="A header line naming the columns, then one row per example (comma, semicolon "
             f"or tab separated, UTF-8, at most {MAX_BYTES // 2**20} MB and 10,000 rows). "
             "Text columns with few values become 0/1 inputs; rows with a missing value "
             "are left out.")
    notice = st.session_state.pop(NOTICE, None)
    if notice:
        container.success(notice, icon=":material/check:")
    if file is None:
        return
    if file.size > MAX_BYTES:  # not read into memory again
        container.error(f"The file is {file.size:,} bytes; at most {MAX_BYTES:,} are read.")
        return
    data = file.getvalue()
    try:
        names = columns(data)
    except UploadError as exc:
        container.error(f"Cannot use {file.name}: {exc}", icon=":material/warning:")
        return
    if st.session_state.get(TARGET) not in names:
        st.session_state[TARGET] = names[-1]  # a new file: its last column, as parse_csv
    target = container.selectbox("Target column", names, key=TARGET,
                                 help="The column to predict; the others are the inputs.")
    task = container.selectbox("Task", ["auto", *TASKS], key=TASK,
                               help="auto: few whole numbers or text are classes, other "
                                    "numbers a regression target.")
    table = _parsed(data, target, task)
    if isinstance(table, str):
        container.error(f"Cannot use {file.name}: {table}", icon=":material/warning:")
        return
    container.caption(f"{table.describe()}. Detected task: {table.task}."
                      + "".join(f" {note}." for note in table.notes))
    container.button("Use this data", key="btn_upload", on_click=_accept,
                     icon=":material/upload:", width="stretch",
                     help="Switch the Dataset control to this file (train and validation "
                          "use every row but a held-out 20% test share).")
