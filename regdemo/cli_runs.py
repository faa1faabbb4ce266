"""`python -m regdemo runs ...`: list, export, import, rename and delete saved runs."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from regdemo import store as store_
from regdemo.cli_args import UsageError

FORMATS = ("csv", "json")


def register(sub) -> None:
    """Add this command's parser to the `python -m regdemo` subparsers."""
    # --data-dir is accepted before or after the action (`runs --data-dir D list` and
    # `runs list --data-dir D`); SUPPRESS keeps the inner default from hiding the outer value.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--data-dir", type=Path, default=argparse.SUPPRESS,
        help=f"folder of runs.sqlite3 (default: ${store_.ENV_DATA_DIR} or ./runs)",
    )
    runs = sub.add_parser("runs", parents=[common], help="list, export or manage saved runs")
    actions = runs.add_subparsers(dest="runs_command", required=True,
                                  metavar="{list,export,import,rename,delete}")

    listing = actions.add_parser("list", parents=[common], help="table of saved runs")
    listing.add_argument("--limit", type=int, default=200, help="newest N runs (default 200)")
    listing.set_defaults(handler=_list)

    export = actions.add_parser("export", parents=[common], help="write one run as CSV or JSON")
    export.add_argument("id", help="run id (12 hex digits, see `runs list`)")
    export.add_argument("--format", choices=FORMATS,
                        help="default: from --out's suffix, else json")
    export.add_argument("--out", type=Path, help="file to write (default: standard output)")
    export.set_defaults(handler=_export)

    imp = actions.add_parser("import", parents=[common], help="save a JSON export as a new run")
    imp.add_argument("file", type=Path)
    imp.set_defaults(handler=_import)

    rename = actions.add_parser("rename", parents=[common], help="give a run a new name")
    rename.add_argument("id")
    rename.add_argument("name")
    rename.set_defaults(handler=_rename)

    delete = actions.add_parser("delete", parents=[common], help="delete a run for good")
    delete.add_argument("id")
    delete.set_defaults(handler=_delete)


@contextlib.contextmanager
def _open(args) -> Iterator[store_.RunStore]:
    """The run store, closed after the block; what it refuses becomes a usage error."""
    store = store_.RunStore(getattr(args, "data_dir", None))
    if store.problem:  # a set-aside file is news the user needs, but not a failure
        print(f"warning: {store.problem}", file=sys.stderr)
    with store:
        try:
            yield store
        except store_.StoreError as exc:  # an unknown run, a bad name, a rejected import
            raise UsageError(str(exc)) from None


def _run_id(text: str) -> str:
    try:
        return store_.check_run_id(text)
    except store_.BadRunId as exc:
        raise UsageError(str(exc)) from None


def _list(args) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1; got {args.limit}")
    with _open(args) as store:
        runs = store.runs(limit=args.limit)
        if not runs:
            print(f"no saved runs in {store.path}")
            return 0
        rows = [("id", "name", "status", "epochs", "final val loss", "created")]
        for r in runs:
            loss = "-" if r.val_loss is None else f"{r.val_loss:.4f}"
            created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))
            rows.append((r.id, _cell(r.name), r.status, str(r.epochs), loss, created))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        right = {3, 4}  # numbers line up on the right
        for row in rows:
            cells = [c.rjust(w) if i in right else c.ljust(w)
                     for i, (c, w) in enumerate(zip(row, widths))]
            print("  ".join(cells).rstrip())
    return 0


def _cell(name: str, width: int = 40) -> str:
    """A name fit for one table cell (names may hold any printable text)."""
    name = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in name)
    return name if len(name) <= width else name[: width - 3] + "..."


def _export(args) -> int:
    run_id = _run_id(args.id)
    fmt = args.format
    if fmt is None:
        suffix = args.out.suffix.lstrip(".").lower() if args.out else ""
        fmt = suffix if suffix in FORMATS else "json"
    with _open(args) as store:
        text = store.export_csv(run_id) if fmt == "csv" else store.export_json(run_id)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"run {run_id} written to {args.out}", file=sys.stderr)
    return 0


def _import(args) -> int:
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {args.file}: {exc.strerror or exc}") from None
    with _open(args) as store:
        run_id = store.import_json(data)
        print(f"imported as run {run_id} ({store.info(run_id).name})")
    return 0


def _rename(args) -> int:
    run_id = _run_id(args.id)
    with _open(args) as store:
        store.rename(run_id, args.name)
    print(f"run {run_id} renamed to {_cell(args.name)}")
    return 0


def _delete(args) -> int:
    run_id = _run_id(args.id)
    with _open(args) as store:
        info = store.info(run_id)
        if info is None:
            raise UsageError(f"no saved run with id {run_id!r}")
        store.delete(run_id)  # UnknownRun if someone else deleted it in between
    print(f"deleted run {run_id} ({_cell(info.name)})")
    return 0
