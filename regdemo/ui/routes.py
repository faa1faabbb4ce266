"""HTTP routes beside the page: the live board's feed and Plotly's bundle.

The feed answers a board's poll outside Streamlit's script runs: a tick costs the server
a dictionary lookup and the new numbers, not a script rerun (docs/architecture.md).
"""

from __future__ import annotations

import functools
import gzip
import json
import threading
import time
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from regdemo import live_feed
from regdemo.ui.board_registry import OWNER, OWNER_COOKIE, PACE, REGISTRY

FEED_PATH = "/regdemo/feed"
PLOTLY_PATH = "/regdemo/plotly.min.js"
MAX_QUERY = 200  # a have string is ~40 characters; anything longer is not a board's


def plotly_bundle() -> Path:
    """Plotly's own minified bundle, shipped inside the plotly package (no CDN)."""
    import importlib.util

    spec = importlib.util.find_spec("plotly")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


def feed_reply(token: str, have: str, owner: str = "",
               preview_key: str = "") -> tuple[int, dict]:
    """(HTTP status, body) of one poll; also what page tests call in-process.

    `owner` is the browser's owner token (its cookie): the board's runs that have none yet
    (made on a browser's first visit, before its page could read the cookie) take it.
    Without a run the reply carries the data of the page's settings, unless the board has
    it already (`preview_key`).
    """
    board = REGISTRY.get(token) if len(token) < MAX_QUERY else None
    if board is None:
        return 404, {"error": "unknown board: reload the page"}
    if OWNER.fullmatch(owner):
        board.owner = owner  # the page learns its browser from here on a first visit
        for run_id in board.run_ids:
            handle = board.runner.get(run_id) if run_id is not None else None
            if handle is not None and handle.owner is None:
                handle.owner = owner
    runs = live_feed.board_update(board.runner, board.run_ids,
                                  live_feed.parse_have(have[:MAX_QUERY]))
    body = {"runs": runs}
    if runs[0] is None and board.preview is not None:
        try:
            shown = live_feed.preview(board.preview)
        except Exception:  # noqa: BLE001 - a preview must never break the feed
            shown = None
        if shown is not None and shown["key"] != preview_key:
            body["preview"] = shown
    body["next"] = round(PACE.interval(token) * 1000)
    return 200, body


async def feed(request: Request) -> Response:
    start = time.perf_counter()
    status, body = feed_reply(request.query_params.get("t", ""),
                              request.query_params.get("h", ""),
                              request.cookies.get(OWNER_COOKIE, ""),
                              request.query_params.get("p", "")[:MAX_QUERY])
    try:
        text = json.dumps(body, separators=(",", ":"), allow_nan=False)
    except ValueError:  # a NaN the encoders did not expect: null it rather than fail
        text = json.dumps(live_feed.strict(body), separators=(",", ":"), allow_nan=False)
    PACE.add_cost(time.perf_counter() - start)  # the whole reply, its encoding included
    return Response(text, status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


@functools.cache
def gzipped_bundle() -> bytes:
    """Plotly's bundle compressed once per process (4.7 MB -> 1.4 MB): compressing it per
    request took the server's event loop up to 1.4 s for each new browser."""
    return gzip.compress(plotly_bundle().read_bytes(), compresslevel=6, mtime=0)


async def bundle(request: Request) -> Response:
    path = plotly_bundle()
    if not path.exists():
        return JSONResponse({"error": "plotly's bundle is missing"}, status_code=404)
    headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
    if "gzip" not in request.headers.get("accept-encoding", ""):
        return FileResponse(path, media_type="text/javascript", headers=headers)
    body = await anyio.to_thread.run_sync(gzipped_bundle)  # off the event loop, once
    return Response(body, media_type="text/javascript",
                    headers={**headers, "Content-Encoding": "gzip"})


def routes() -> list[Route]:
    """What app.py mounts beside Streamlit's own routes (and Plotly's bundle is compressed
    in the background now, before the first browser asks for it)."""
    threading.Thread(target=gzipped_bundle, name="regdemo-gzip-plotly", daemon=True).start()
    return [Route(FEED_PATH, feed, methods=["GET"]),
            Route(PLOTLY_PATH, bundle, methods=["GET"])]
