// The live board: every live chart of the page in one Components v2 element.
// Plotly is loaded once per page; the board polls the server's feed for what it lacks
// (new epochs, events, views) and builds and extends the traces itself. Python sends only
// the board's token and display flags; a script rerun never re-sends chart data.

const TRAIN = "#0072B2", VAL = "#D55E00", EVENT = "#6a3d9a", BEST = "#009E73";
const BRANCH = ["#0072B2", "#E69F00"]; // A blue, B orange: a fork's branches by colour
const GAP_FILL = "rgba(213, 94, 0, 0.12)";
const CLASS = ["#0072B2", "#D55E00"];
const LAYER_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"];
const TEXT = "#31333F", GRID = "#e6eaf1";
const FONT = '"Source Sans", "Source Sans Pro", "Source Sans 3", sans-serif';
const MAX_KEPT = 6000; // points kept per run in the browser; older ones are thinned evenly
const IDLE_MS = 1000; // poll pace while nothing of this board trains


// ------------------------------------------------------------------ look
function themed(layout, projector) {
  const big = projector ? 20 : 13;
  const out = Object.assign({
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    margin: { l: 60, r: 20, t: projector ? 78 : 70, b: 50 },
    legend: { orientation: "h", yanchor: "bottom", y: 1.02, xanchor: "left", x: 0,
              font: { size: projector ? 15 : big }, itemwidth: 30, traceorder: "normal" },
    hoverlabel: { font: { family: FONT } }, autosize: true,
  }, layout);
  out.font = Object.assign({ family: FONT, color: projector ? "#000" : TEXT, size: big },
                           layout.font || {});
  if (out.title) {
    out.title = Object.assign({ x: 0, y: 0.98, yanchor: "top" }, out.title);
    out.title.font = Object.assign({ family: FONT, color: projector ? "#000" : TEXT,
                                     weight: 600, size: projector ? 22 : 15 },
                                   out.title.font || {});
  }
  for (const key of Object.keys(out)) {
    if (/^[xy]axis\d*$/.test(key)) {
      out[key] = Object.assign({
        gridcolor: projector ? "#b0b0b0" : GRID, zerolinecolor: projector ? "#b0b0b0" : GRID,
        linecolor: projector ? "#000" : GRID, exponentformat: "power", automargin: true,
        tickfont: { color: projector ? "#000" : "#808495", size: projector ? 18 : 12 },
      }, out[key]);
    }
  }
  return out;
}

const PLOT_CONFIG = { responsive: true, displaylogo: false,
                      modeBarButtonsToRemove: ["lasso2d", "select2d"] };

function note(text) {
  return [{ text, x: 0.5, y: 0.5, xref: "paper", yref: "paper", showarrow: false,
            font: { size: 14, color: "#808495" } }];
}

// ------------------------------------------------------------------ numbers
function emptyRun() {
  return { id: null, e: [], tl: [], vl: [], ts: [], vs: [], wn: [], sp: [], epoch: 0, have: 0,
           events: [], vv: -1, views: null, data: null, best: null, status: null };
}
const COLS = ["e", "tl", "vl", "ts", "vs", "wn", "sp"];

function thinOld(run) {
  // Keep the newest half dense, every other point of the older half (as the server does).
  if (run.e.length <= MAX_KEPT) return false;
  const half = run.e.length >> 1;
  for (const c of COLS) {
    const a = run[c];
    run[c] = a.slice(0, half).filter((_, i) => i % 2 === 0).concat(a.slice(half));
  }
  return true;
}

function merge(run, u) {
  // Returns the new points (for extendTraces), or null when the run must be redrawn whole.
  let whole = false;
  if (u.full || run.id !== u.id) {
    Object.assign(run, emptyRun(), { id: u.id });
    whole = true;
  }
  const fresh = {};
  const rec = u.rec;
  let start = 0;
  while (start < rec.e.length && run.e.length && rec.e[start] <= run.have) start++;
  for (const c of COLS) {
    fresh[c] = rec[c].slice(start);
    for (const v of fresh[c]) run[c].push(v);
  }
  if (run.e.length) run.have = run.e[run.e.length - 1];
  if (thinOld(run)) whole = true;
  for (const k of ["status", "busy", "rate", "stop", "diverged", "error", "epochs",
                   "patience", "restored", "test"]) run[k] = u[k];
  run.epoch = u.epoch;
  if (JSON.stringify(u.best) !== JSON.stringify(run.best)) { run.best = u.best; whole = true; }
  if (u.events) { run.events = u.events; whole = true; }
  if (u.views) { run.views = u.views; run.vv = u.vv; run.viewsChanged = true; }
  if (u.data) { run.data = u.data; run.viewsChanged = true; }
  run.vv = u.vv;
  return whole ? null : fresh;
}

function fmt(v, digits = 4) {
  return v === null || v === undefined || !isFinite(v) ? "–" : Number(v).toFixed(digits);
}

// ------------------------------------------------------------------ the loss chart
function mergeEvents(events, span, rate) {
  // A slider dragged or arrow-keyed through several values is one change to a reader:
  // consecutive changes of one knob less than ~1.5 s of training or 4% of the epochs shown
  // apart share one marker, "l2 0 -> 0.01 @ epoch 37-43" (each change is still recorded).
  const near = Math.max(3, 0.04 * span, 1.5 * (rate || 0));
  const out = [];
  for (const [epoch, label, knob] of events) {
    const prev = out[out.length - 1];
    if (prev && knob && prev.knob === knob && epoch - prev.last <= near) {
      prev.last = epoch;
      prev.to = label.slice(knob.length + 1).split(" @ ")[0].split(" -> ")[1];
      prev.n += 1;
      continue;
    }
    const [from, to] = label.slice((knob || "").length + 1).split(" @ ")[0].split(" -> ");
    out.push({ epoch, last: epoch, knob, from, to, label, n: 1 });
  }
  // A burst at one epoch (a paused run's slider arrow-keyed) says where it ended, too.
  return out.map((g) => [g.epoch, g.n === 1 ? g.label
    : `${g.knob} ${g.from} -> ${g.to} @ epoch ${g.epoch}${g.epoch === g.last ? "" : `-${g.last}`}`]);
}

function lossFigure(st) {
  const [a, b] = st.runs;
  const opts = st.opts, P = st.data.projector;
  const score = st.data.score || "accuracy";
  const metric = opts.metric;
  const [tk, vk] = metric === "loss" ? ["tl", "vl"] : ["ts", "vs"];
  const what = metric === "loss" ? "Loss" : score.charAt(0).toUpperCase() + score.slice(1);
  const width = P ? 5 : 2.5;
  const data = [], shapes = [], notes = [];
  const windowed = (run, from) => {
    let lo = 0;
    const last = run.e.length ? run.e[run.e.length - 1] : 0;
    const first = Math.max(from || 0, opts.window ? last - opts.window : 0);
    while (lo < run.e.length && run.e[lo] < first) lo++;
    return lo;
  };
  const marker = (epoch, label, color) => {
    shapes.push({ type: "line", x0: epoch, x1: epoch, xref: "x", y0: 0, y1: 1, yref: "y domain",
                  line: { color, width: P ? 3 : 1.5, dash: "dot" } });
    notes.push({ x: epoch, y: 0.98, xref: "x", yref: "y domain", text: label, showarrow: false,
                 textangle: -90, xanchor: "right", yanchor: "top",
                 font: { color, size: P ? 16 : 11 } });
  };
  const fork = st.data.fork;
  if (!a || a.id === null) {
    return { data: [], layout: { title: { text: `${what}: training vs validation` },
             xaxis: { visible: false }, yaxis: { visible: false },
             annotations: note(st.data.empty_note || "Press Train to start."), height: P ? 460 : 360 } };
  }
  const shown = fork && b && b.id !== null ? [["A", a, 0], ["B", b, fork.epoch]] : [["", a, 0]];
  for (const [name, run, from] of shown) {
    const lo = windowed(run, from);
    const x = run.e.slice(lo);
    const color = name ? BRANCH[name === "A" ? 0 : 1] : null;
    const label = (s) => (name ? `${name} ${s}` : s);
    data.push({ type: "scatter", mode: "lines", name: label("training"), x, y: run[tk].slice(lo),
                line: { color: color || TRAIN, width }, legendgroup: name });
    const val = { type: "scatter", mode: "lines", name: label("validation"), x,
                  y: run[vk].slice(lo), line: { color: color || VAL, width, dash: "dash" },
                  legendgroup: name };
    if (!name) { val.fill = "tonexty"; val.fillcolor = GAP_FILL; }
    data.push(val);
    const first = x.length ? x[0] : 0;
    const events = name === "B" ? run.events.slice(fork.events || 0) : run.events;
    const span = (x.length ? x[x.length - 1] : 0) - first;
    for (const [epoch, text] of mergeEvents(events.filter((e) => e[0] >= first), span,
                                            run.rate)) {
      marker(epoch, name ? `${name}: ${text}` : text, color || EVENT);
    }
    if (run.best && run.best[0] >= first && !name) {
      const y = metric === "loss" ? run.best[2] : run.best[4];
      data.push({ type: "scatter", mode: "markers", x: [run.best[0]], y: [y],
                  name: `lowest val loss: epoch ${run.best[0]}`,
                  marker: { symbol: "star", size: P ? 22 : 14, color: BEST } });
      if (run.patience) {
        shapes.push({ type: "rect", x0: run.best[0], x1: run.best[0] + run.patience, xref: "x",
                      y0: 0, y1: 1, yref: "y domain", fillcolor: BEST, opacity: 0.08,
                      line: { width: 0 } });
        notes.push({ x: run.best[0], y: 0.02, xref: "x", yref: "y domain", text: "patience",
                     showarrow: false, xanchor: "left", yanchor: "bottom",
                     font: { color: BEST, size: P ? 16 : 11 } });
      }
    }
    if (run.diverged && x.length) {
      marker(x[x.length - 1], "diverged", "#b00020");
    }
  }
  if (!data.some((t) => t.x && t.x.length)) {
    // No point yet: lines and labels on an empty axis get NaN coordinates in Plotly.
    shapes.length = 0;
    notes.length = 0;
  } else if (fork && b && b.id !== null) {
    shapes.push({ type: "line", x0: fork.epoch, x1: fork.epoch, xref: "x", y0: 0, y1: 1,
                  yref: "y domain", line: { color: "#888", width: 1.5 } });
    notes.push({ x: fork.epoch, y: 0.02, xref: "x", yref: "y domain",
                 text: `fork @ epoch ${fork.epoch}`, showarrow: false, xanchor: "left",
                 yanchor: "bottom", font: { color: "#555", size: P ? 16 : 11 } });
  }
  const title = fork && b && b.id !== null
    ? `A vs B, ${what}: training (solid) vs validation (dashed)`
    : `${what}: training vs validation`;
  // A diverged run's last losses are huge: the axis follows the healthy part.
  const yaxis = { title: { text: metric === "loss" ? "loss" : score },
                  type: opts.log && metric === "loss" ? "log" : "linear" };
  const healthy = data.filter((t) => t.mode === "lines").flatMap((t) => t.y)
    .filter((v) => v !== null && isFinite(v));
  if (a.diverged && healthy.length && metric === "loss" && !opts.log) {
    const sorted = healthy.slice().sort((p, q) => p - q);
    const top = sorted[Math.floor(sorted.length * 0.95)];
    yaxis.range = [0, top * 1.3];
  }
  return { data, layout: { title: { text: title }, shapes, annotations: notes,
                           xaxis: { title: { text: "epoch" } }, yaxis, height: P ? 460 : 360,
                           uirevision: `${a.id}-${b ? b.id : ""}-${metric}-${opts.log}-${opts.window}` } };
}

// ------------------------------------------------------------------ the data views
function bytes(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function stripFigure(strip, title, P) {
  const [h, w] = strip.shape, n = Math.min(strip.n, 24), cols = 12;
  const rows = Math.max(1, Math.ceil(n / cols));
  const px = bytes(strip.pixels);
  const H = rows * (h + 1), W = cols * (w + 1);
  const z = Array.from({ length: H }, () => new Array(W).fill(null));
  const notes = [];
  for (let i = 0; i < n; i++) {
    const r = Math.floor(i / cols), c = i % cols;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      z[H - 1 - (r * (h + 1) + y)][c * (w + 1) + x] = px[i * h * w + y * w + x];
    }
    notes.push({ x: c * (w + 1) + w / 2 - 0.5, y: H - r * (h + 1) - 0.2, text: strip.labels[i],
                 showarrow: false, yanchor: "bottom", font: { size: P ? 16 : 10 } });
  }
  return { data: [{ type: "heatmap", z, colorscale: "Greys", showscale: false, hoverinfo: "skip" }],
           layout: { title: { text: title }, annotations: notes, height: 110 + 70 * rows,
                     xaxis: { visible: false }, yaxis: { visible: false, scaleanchor: "x" } } };
}

function dataFigures(run, branch, P) {
  // [main, extra]: the data view, and a second chart for digits (the mistakes).
  const title = (t) => (run && run.preview ? "The data (press Train to fit a model to it)"
    : branch ? `${branch}: ${t}` : t);
  const d = run && run.data, v = run && run.views;
  if (!d) {
    return [{ data: [], layout: { title: { text: title("Data") }, xaxis: { visible: false },
              yaxis: { visible: false }, height: P ? 460 : 360,
              annotations: note("The data, and what the model makes of it, appear here once it trains.") } }, null];
  }
  const h = branch ? 330 : (P ? 460 : 360);
  if (d.kind === "2d") {
    const data = [];
    if (v && v.grid) {
      const px = bytes(v.grid.z), nx = v.grid.x.length;
      const z = [];
      for (let j = 0; j < v.grid.y.length; j++) {
        const row = new Array(nx);
        for (let i = 0; i < nx; i++) row[i] = px[j * nx + i] / 255;
        z.push(row);
      }
      data.push({ type: "heatmap", x: v.grid.x, y: v.grid.y, z, zmin: 0, zmax: 1, zsmooth: "fast",
                  colorscale: [[0, "#c6dbef"], [0.5, "#ffffff"], [1, "#fdd0a2"]],
                  showscale: false, hoverinfo: "skip", name: "P(class 1)" });
      data.push({ type: "contour", x: v.grid.x, y: v.grid.y, z, showscale: false, hoverinfo: "skip",
                  contours: { start: 0.5, end: 0.5, size: 1, coloring: "none" },
                  line: { color: "#333", width: P ? 4 : 2 }, name: "boundary" });
    }
    if (v && v.ghosts) {
      data.push({ type: "scatter", mode: "markers", x: v.ghosts.x, y: v.ghosts.y, name: "augmented",
                  marker: { size: P ? 10 : 7, color: v.ghosts.c.map((c) => CLASS[c % 2]),
                            opacity: 0.45, symbol: "circle-open", line: { width: 2 } } });
    }
    data.push({ type: "scatter", mode: "markers", x: d.val.x, y: d.val.y, name: "validation",
                marker: { symbol: "x", size: P ? 8 : 5, opacity: 0.45,
                          color: d.val.c.map((c) => CLASS[c % 2]) } });
    data.push({ type: "scatter", mode: "markers", x: d.train.x, y: d.train.y, name: "training",
                marker: { symbol: "circle", size: P ? 13 : 9, line: { color: "white", width: 1 },
                          color: d.train.c.map((c) => CLASS[c % 2]) } });
    const xr = v && v.grid ? [v.grid.x[0], v.grid.x[v.grid.x.length - 1]] : undefined;
    const yr = v && v.grid ? [v.grid.y[0], v.grid.y[v.grid.y.length - 1]] : undefined;
    return [{ data, layout: { title: { text: title("Decision boundary") }, height: h,
              showlegend: !branch, xaxis: { title: { text: "x1 (standardised)" }, range: xr },
              yaxis: { title: { text: "x2 (standardised)" }, range: yr } } }, null];
  }
  if (d.kind === "1d") {
    const data = [
      { type: "scatter", mode: "markers", x: d.val.x, y: d.val.y, name: "validation",
        marker: { color: VAL, size: P ? 8 : 5, opacity: 0.4, symbol: "x" } },
      { type: "scatter", mode: "markers", x: d.train.x, y: d.train.y, name: "training",
        marker: { color: TRAIN, size: P ? 13 : 9 } },
    ];
    if (v && v.curve) {
      data.push({ type: "scatter", mode: "lines", x: v.curve.x, y: v.curve.y, name: "model",
                  line: { color: "#222", width: P ? 5 : 3 } });
    }
    return [{ data, layout: { title: { text: title("Fitted curve") }, height: h, showlegend: !branch,
              xaxis: { title: { text: "x (standardised)" } }, yaxis: { title: { text: "y" } } } }, null];
  }
  if (d.kind === "image") {
    const strip = (v && v.strip) || d.strip;
    const main = stripFigure(strip, title(strip.title || "Training digits"), P);
    const extra = v && v.mistakes
      ? stripFigure(v.mistakes, title(`Misclassified validation digits (true→predicted), ${v.mistakes.n} shown`), P)
      : null;
    return [main, extra];
  }
  const names = d.features, informative = new Set(d.informative);
  const y = v && v.importance ? v.importance : names.map(() => 0);
  return [{ data: [{ type: "bar", x: names, y, name: "|w| per input",
                     marker: { color: names.map((_, i) => (informative.has(i) ? BEST : "#888")) } }],
            layout: { title: { text: title("Input feature weights (first layer)") }, height: h,
                      xaxis: { tickangle: names.length > 12 ? -60 : 0 },
                      yaxis: { title: { text: "L2 norm of the input's weights" } } } }, null];
}

function weightsFigure(run) {
  const v = run && run.views;
  if (!v || !v.hist) {
    return { data: [], layout: { title: { text: "Weight histogram per layer" }, height: 360,
             xaxis: { visible: false }, yaxis: { visible: false }, annotations: note("Weight histograms per layer") } };
  }
  const { lo, hi, layers } = v.hist;
  const n = layers.length ? layers[0][1].length : 1, step = (hi - lo) / n;
  const x = Array.from({ length: n }, (_, i) => lo + (i + 0.5) * step);
  return { data: layers.map(([name, counts], i) => ({
             type: "bar", x, y: counts, name, opacity: 0.6, width: step,
             marker: { color: LAYER_COLORS[i % LAYER_COLORS.length] } })),
           layout: { title: { text: "Weight histogram per layer" }, barmode: "overlay", bargap: 0,
                     height: 360, xaxis: { title: { text: "weight value" } },
                     yaxis: { title: { text: "count" } } } };
}

function normFigure(run) {
  if (!run || run.id === null || !run.e.length) {
    return { data: [], layout: { title: { text: "Weight norm and sparsity" }, height: 360,
             xaxis: { visible: false }, yaxis: { visible: false }, annotations: note("Over epochs") } };
  }
  return { data: [
             { type: "scatter", mode: "lines", name: "weight norm", x: run.e, y: run.wn,
               line: { color: TRAIN, width: 2.5 } },
             { type: "scatter", mode: "lines", name: "sparsity %", x: run.e,
               y: run.sp.map((s) => (s === null ? null : 100 * s)), yaxis: "y2",
               line: { color: BEST, width: 2.5, dash: "dash" } }],
           layout: { title: { text: "Weight norm and sparsity" }, height: 360,
                     margin: { l: 60, r: 60, t: 70, b: 50 },
                     xaxis: { title: { text: "epoch" } }, yaxis: { title: { text: "L2 norm" } },
                     yaxis2: { title: { text: "zero weights %" }, overlaying: "y", side: "right",
                               range: [0, 100], showgrid: false, tickmode: "linear", tick0: 0, dtick: 25 },
                     uirevision: `norm-${run.id}` } };
}

// ------------------------------------------------------------------ the network diagram
// Drawn as SVG, not Plotly: a few hundred segments in 2 x NET_BUCKETS paths and a few dozen
// circles, updated in place (attributes only) whenever the run's views change; far cheaper
// than a Plotly redraw and free to use dashed rings and hollow nodes.
const SVG = "http://www.w3.org/2000/svg";
const NET_POS = "#0072B2", NET_NEG = "#E69F00", NET_DEAD = "#c3c7d1"; // as TF Playground: blue +, orange -
const NET_BUCKETS = 6; // edge width classes per sign: 12 paths whatever the net's size
const NET_UNITS = 16; // units per layer the feed sends (live_feed.NET_UNITS)

function svgEl(tag, attrs, parent) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.append(e);
  return e;
}

function netNames(net, d) {
  // Labels of the first shown inputs and of the outputs, from the run's data.
  const n0 = Math.min(net.sizes[0], NET_UNITS), nk = net.sizes[net.sizes.length - 1];
  const cut = (s) => (s.length > 12 ? s.slice(0, 11) + "…" : s);
  let inputs;
  if (net.inputs) inputs = (i) => net.inputs[i];  // x1, x2 and the extra features
  else if (net.kind === "cnn") inputs = (i) => `f${i + 1}`;
  else if (d && d.kind === "1d") inputs = () => "x";
  else if (d && d.kind === "image") {
    const w = d.strip.shape[1];
    inputs = (i) => `px ${Math.floor(i / w)},${i % w}`;
  }
  else if (d && d.features) inputs = (i) => cut(d.features[i] || `x${i}`);
  else inputs = (i) => `x${i + 1}`;
  const outputs = (k) => (d && d.task === "regression" ? "y"
    : d && d.kind === "image" ? `${k}` : `class ${k}`);
  return [Array.from({ length: n0 }, (_, i) => inputs(i)),
          Array.from({ length: Math.min(nk, NET_UNITS) }, (_, k) => outputs(k))];
}

function netHeaders(net) {
  const last = net.sizes.length - 1;
  return net.sizes.map((_, i) => {
    if (i === 0) return net.kind === "cnn" ? "conv features" : "inputs";
    if (i === last) return "outputs";
    if (net.kind === "residual") return i === 1 ? "stem" : `block ${i - 1}`;
    return `hidden ${i}`;
  });
}

function netCaption(net) {
  const lines = [];
  const dead = net.ndead, last = net.sizes.length - 1;
  const parts = [];
  if (dead[0]) {
    parts.push(`${dead[0]} of ${net.sizes[0]} ${net.kind === "cnn" ? "conv features" : "inputs"}`);
  }
  const hidden = dead.slice(1, last).reduce((s, v) => s + v, 0);
  const total = net.sizes.slice(1, last).reduce((s, v) => s + v, 0);
  if (hidden) parts.push(`${hidden} of ${total} hidden units`);
  if (dead[last]) parts.push(`${dead[last]} of ${net.sizes[last]} outputs`);
  if (parts.length) {
    lines.push(["rd-net-dead", "Hollow: cut off, no path of non-zero weights from the inputs " +
                `to the outputs through it (${parts.join(", ")}).`]);
  }
  if (net.drop > 0) {
    const who = net.kind === "cnn" ? "conv feature and hidden unit" : "hidden unit";
    lines.push(["rd-net-drop", `Dashed ring: dropout. In training each ${who} is dropped ` +
                `with p = ${net.drop} at every step (never when measuring).`]);
  }
  if (net.sd > 0) {
    const blocks = net.sizes.length - 3;
    lines.push(["rd-net-drop", `Stochastic depth: in training block k of ${blocks} is ` +
                `skipped with p = ${net.sd} × k / ${blocks} for each sample.`]);
  }
  return lines;
}

function netPlaceholder(div, text) {
  div.__net = null;
  const t = el("div", "rd-net-title");
  t.textContent = "Network";
  const n = el("div", "rd-net-empty");
  n.textContent = text;
  div.replaceChildren(t, n);
}

function drawNet(st, run, branch) {
  const div = st.charts.net;
  if (!div) return;
  st.netLast = [run, branch];
  const net = run && run.views && run.views.net;
  if (!net) {
    netPlaceholder(div, "The units and weights of the network appear here once it trains.");
    return;
  }
  if (!div.offsetWidth) { st.pendingDraw = true; return; }
  const P = st.data.projector, d = run.data;
  const sizes = net.sizes, L = sizes.length, shown = sizes.map((n) => Math.min(n, NET_UNITS));
  const [inNames, outNames] = netNames(net, d);
  const W = Math.max(260, div.clientWidth), H = P ? 420 : 300;
  // Rebuild the elements only when the drawing's shape changes; a tick sets attributes.
  const key = JSON.stringify([sizes, inNames, outNames, W, H, net.kind, net.dropped, branch]);
  let g = div.__net;
  if (!g || g.key !== key) {
    g = div.__net = buildNet(div, net, { W, H, P, shown, inNames, outNames, key, d });
  }
  const dead = net.dead.map((ids) => new Set(ids));
  // Edges: one path per sign and width class; edges of a dead unit go grey.
  const paths = Array.from({ length: 2 * NET_BUCKETS + 1 }, () => []);
  for (let m = 0; m < L - 1; m++) {
    const q = new Int8Array(bytes(net.w[m]).buffer), nin = shown[m], nout = shown[m + 1];
    const x0 = g.xs[m], x1 = g.xs[m + 1];
    for (let j = 0; j < nout; j++) {
      for (let i = 0; i < nin; i++) {
        const v = q[j * nin + i];
        if (!v) continue; // an exact zero: no edge (what L1 does)
        const seg = `M${x0} ${g.ys[m][i]}L${x1} ${g.ys[m + 1][j]}`;
        if (dead[m].has(i) || dead[m + 1].has(j)) { paths[2 * NET_BUCKETS].push(seg); continue; }
        const b = Math.min(NET_BUCKETS - 1, Math.floor(Math.abs(v) * NET_BUCKETS / 128));
        paths[(v > 0 ? 0 : NET_BUCKETS) + b].push(seg);
      }
    }
  }
  g.paths.forEach((p, k) => p.setAttribute("d", paths[k].join("") || "M0 0"));
  g.nodes.forEach((col, l) => col.forEach((c, i) => {
    const off = dead[l].has(i);
    c.classList.toggle("rd-dead", off);
    g.tips[l][i].textContent = g.names[l][i] + (off ? ": cut off (no non-zero path through it)" : "");
  }));
  g.labels.forEach((t, i) => t.classList.toggle("rd-dead", dead[0].has(i)));
  const fork = branch ? `${branch}: ` : "";
  const shape = net.kind === "residual"
    ? `${sizes[0]} → ${sizes[1]} → ${L - 3} residual blocks of ${sizes[1]} → ${sizes[L - 1]}; ` +
      "skip connections not drawn"
    : sizes.join(" → ") + (net.kind === "cnn" ? "; the dense part, after the conv layers" : "");
  g.title.textContent = `${fork}Network (${shape})`;
  g.scale.textContent = `· width ∝ |w|, largest ${net.top}`;
  g.caption.replaceChildren(...netCaption(net).map(([cls, text]) => {
    const line = el("div", cls);
    line.textContent = text;
    return line;
  }));
  div.dataset.renders = String((+div.dataset.renders || 0) + 1);
}

function buildNet(div, net, { W, H, P, shown, inNames, outNames, key, d }) {
  const L = net.sizes.length, font = P ? 16 : 12, r = P ? 8 : 6;
  const widest = (names) => Math.max(...names.map((s) => s.length), 1) * font * 0.55;
  const left = widest(inNames) + r + 10, right = widest(outNames) + r + 10;
  const top = font + 14, bottom = font + 10;
  const xs = Array.from({ length: L }, (_, l) => left + (W - left - right) * l / Math.max(1, L - 1));
  const dy = Math.min(P ? 26 : 20, (H - top - bottom) / NET_UNITS);
  const mid = top + (H - top - bottom) / 2;
  const ys = shown.map((n) => Array.from({ length: n },
                                          (_, i) => +(mid + (i - (n - 1) / 2) * dy).toFixed(1)));
  const title = el("div", "rd-net-title");
  const svg = svgEl("svg", { class: "rd-net-svg", viewBox: `0 0 ${W} ${H}`, width: "100%",
                             height: H, role: "img", "aria-label": "network diagram" });
  svg.style.fontSize = `${font}px`;
  const edges = svgEl("g", { class: "rd-edges", fill: "none", "stroke-linecap": "round" }, svg);
  const paths = [];
  for (const [sign, color] of [["pos", NET_POS], ["neg", NET_NEG]]) {
    for (let b = 0; b < NET_BUCKETS; b++) {
      const wide = (P ? 1.6 : 1) * (0.6 + 5 * b / (NET_BUCKETS - 1));
      paths.push(svgEl("path", { stroke: color, "stroke-width": wide.toFixed(2),
                                 "stroke-opacity": (0.45 + 0.5 * b / (NET_BUCKETS - 1)).toFixed(2),
                                 "data-sign": sign, "data-bucket": b }, edges));
    }
  }
  paths.push(svgEl("path", { stroke: NET_DEAD, "stroke-width": 0.8, "data-sign": "dead" }, edges));
  const headers = netHeaders(net);
  const nodes = [], tips = [], names = [];
  const informative = new Set(d && d.informative && net.kind !== "cnn" ? d.informative : []);
  const dropped = new Set(net.dropped);
  shown.forEach((n, l) => {
    const layer = svgEl("g", { class: "rd-layer", "data-layer": l, "data-units": net.sizes[l] }, svg);
    // A header wider than the margin beside its column moves inwards, not off the panel.
    const half = headers[l].length * font * 0.3;
    svgEl("text", { x: Math.min(Math.max(xs[l], half), W - half), y: font, "text-anchor": "middle",
                    class: "rd-net-head" }, layer).textContent = headers[l];
    if (net.sizes[l] > n) {
      svgEl("text", { x: xs[l], y: ys[l][n - 1] + dy + font * 0.4, "text-anchor": "middle",
                      class: "rd-net-more" }, layer).textContent = `+${net.sizes[l] - n} more`;
    }
    const col = [], colTips = [];
    names.push(l === 0 ? inNames : l === L - 1 ? outNames
      : ys[l].map((_, i) => `${headers[l]}, unit ${i + 1}`));
    for (let i = 0; i < n; i++) {
      if (dropped.has(l)) {
        svgEl("circle", { cx: xs[l], cy: ys[l][i], r: r + 3.5, class: "rd-net-ring" }, layer);
      }
      let cls = "rd-node";
      if (l === 0 && informative.has(i)) cls += " rd-informative";
      if (l === L - 1 && d && d.kind === "2d") cls += ` rd-class${i % 2}`;
      const c = svgEl("circle", { cx: xs[l], cy: ys[l][i], r, class: cls, "data-unit": i }, layer);
      colTips.push(svgEl("title", {}, c));
      col.push(c);
    }
    nodes.push(col);
    tips.push(colTips);
  });
  const labels = [];
  inNames.forEach((s, i) => {
    const t = svgEl("text", { x: xs[0] - r - 5, y: ys[0][i], "text-anchor": "end",
                              "dominant-baseline": "central", class: "rd-net-name" }, svg);
    t.textContent = s;
    labels.push(t);
  });
  outNames.forEach((s, k) => {
    svgEl("text", { x: xs[L - 1] + r + 5, y: ys[L - 1][k], "dominant-baseline": "central",
                    class: "rd-net-name" }, svg).textContent = s;
  });
  const keyLine = el("div", "rd-net-key");
  const swatch = (color, text) => {
    const s = el("span", "rd-net-swatch");
    s.style.background = color;
    const t = el("span");
    t.textContent = text;
    return [s, t];
  };
  const scale = el("span");
  keyLine.append(...swatch(NET_POS, "positive weight"), ...swatch(NET_NEG, "negative weight"),
                 scale);
  const caption = el("div", "rd-net-caption");
  div.replaceChildren(title, svg, keyLine, caption);
  return { key, xs, ys, paths, nodes, tips, names, labels, title, scale, caption, W };
}

// ------------------------------------------------------------------ drawing
function fitHeight(div, wanted) {
  // Projector: the first row of charts ends above the fold (min 280 px, at most `wanted`).
  const top = div.getBoundingClientRect().top + window.scrollY;
  return Math.max(280, Math.min(wanted, window.innerHeight - top - 16));
}

function draw(st, key, fig) {
  const div = st.charts[key];
  if (!div || !st.Plotly) return;
  if (!div.offsetWidth) { // a tab not shown: lay it out once it has a size (no NaN paths)
    st.pendingDraw = true;
    return;
  }
  const P = st.data.projector;
  if (P && (key === "loss" || key.startsWith("data"))) {
    fig.layout.height = fitHeight(div, fig.layout.height || 460);
  }
  const layout = themed(fig.layout, P);
  if (P) {
    for (const t of fig.data) {
      if (t.type === "scatter" && t.mode === "lines") t.line = Object.assign({}, t.line, { width: 5 });
    }
  }
  st.Plotly.react(div, fig.data, layout, PLOT_CONFIG).then(() => {
    div.dataset.renders = String((+div.dataset.renders || 0) + 1);
  }).catch((err) => console.error("regdemo board:", err));
}

function extend(st, key, fresh, runs) {
  // New points only: extendTraces appends them to the traces already drawn.
  const div = st.charts[key];
  if (!div || !st.Plotly || !div.data || !div.offsetWidth) return false;
  const [tk, vk] = st.opts.metric === "loss" ? ["tl", "vl"] : ["ts", "vs"];
  const xs = [], ys = [], idx = [];
  fresh.slice(0, runs).forEach((f, i) => {
    if (f && f.e.length) { xs.push(f.e, f.e); ys.push(f[tk], f[vk]); idx.push(2 * i, 2 * i + 1); }
  });
  if (!idx.length) return true;
  st.Plotly.extendTraces(div, { x: xs, y: ys }, idx);
  div.dataset.renders = String((+div.dataset.renders || 0) + 1);
  return true;
}

function redraw(st, fresh, whole) {
  const [a, b] = st.runs;
  const forked = !!(st.data.fork && b && b.id !== null);
  const need = fresh.slice(0, forked ? 2 : 1);
  if (whole || st.opts.window || need.length < (forked ? 2 : 1) || need.some((f) => !f)) {
    draw(st, "loss", lossFigure(st));
  } else if (!extend(st, "loss", fresh, forked ? 2 : 1)) {
    draw(st, "loss", lossFigure(st));
  }
  // The rest once the loss chart has painted: a heatmap can take a few hundred ms.
  st.pendingWhole = st.pendingWhole || whole;
  if (st.heavyQueued) return;
  st.heavyQueued = true;
  requestAnimationFrame(() => setTimeout(() => {
    st.heavyQueued = false;
    const all = st.pendingWhole;
    st.pendingWhole = false;
    const b2 = st.runs[1];
    redrawViews(st, !!(st.data.fork && b2 && b2.id !== null), all);
  }, 0));
}

function redrawViews(st, forked, whole) {
  const a = st.runs[0];
  const P = st.data.projector;
  for (const [i, name] of (forked ? [[0, "A"], [1, "B"]] : [[0, ""]])) {
    const run = st.runs[i];
    if (!whole && !(run && run.viewsChanged)) continue;
    if (run) run.viewsChanged = false;
    // Before Train: the data the run would train on (the preview), as the Playground does.
    const shown = run && run.id !== null ? run
      : (i === 0 && st.preview ? { data: st.preview.data, views: null, preview: true } : null);
    const [main, extra] = dataFigures(shown, name, P);
    draw(st, `data${name}`, main);
    const box = st.charts[`extra${name}`];
    if (box) {
      box.style.display = extra ? "" : "none";
      if (extra) draw(st, `extra${name}`, extra);
    }
    if (i === 0 && !P) draw(st, "weights", weightsFigure(run));
    if (i === 0) drawNet(st, shown && !shown.preview ? shown : null, name);
  }
  if (!P && (whole || (a && a.id !== null))) {
    if (whole || st.normTick++ % 3 === 0) draw(st, "norm", normFigure(a));
  }
}

const TEST_HINT = "Loss on held-out test points, measured when the run pauses or ends. " +
  "Validation chose the epoch and the settings, so its figure flatters them; nothing " +
  "looked at the test set, so this is the honest estimate of new data.";

function status(st) {
  const [a, b] = st.runs;
  const box = st.statusBox;
  // After early stopping restored the best epoch's weights, its figures are the run's.
  const BEST = { tl: 1, vl: 2, ts: 3, vs: 4 };
  const last = (run, k) => {
    if (run && run.restored && run.best && run.best[0] === run.restored && BEST[k]) {
      return run.best[BEST[k]];
    }
    return run && run[k].length ? run[k][run[k].length - 1] : null;
  };
  const words = { running: "training", paused: "paused", queued: "queued: server busy",
                  stopped: "stopped" };
  const cells = a && a.id !== null ? [
    ["Epoch", `${a.epoch} / ${a.epochs}`, words[a.status] || a.status,
     a.restored ? `weights of epoch ${a.restored}` : null],
    ["Epochs/s", a.status === "running" ? Math.round(a.rate).toLocaleString("en") : "–"],
    ["Train loss", fmt(last(a, "tl"))], ["Val loss", fmt(last(a, "vl"))],
    ["Gap (val − train)", last(a, "vl") === null || last(a, "tl") === null ? "–"
      : (last(a, "vl") - last(a, "tl") >= 0 ? "+" : "") + fmt(last(a, "vl") - last(a, "tl"))],
    // Held-out points: validation picked the epoch (early stopping) and the settings, so
    // only the test set, measured when the run rests, is an honest estimate on new data.
    ["Test loss", a.test ? fmt(a.test[0]) : "–", TEST_HINT, a.test ? "held out" : null],
  ] : [["Epoch", "–"], ["Epochs/s", "–"], ["Train loss", "–"], ["Val loss", "–"],
       ["Gap (val − train)", "–"], ["Test loss", "–", TEST_HINT]];
  box.replaceChildren(...cells.map(([label, value, hint, note]) => {
    const cell = document.createElement("div");
    cell.className = "rd-metric";
    cell.dataset.metric = label;
    const l = document.createElement("div"); l.className = "rd-label"; l.textContent = label;
    const v = document.createElement("div"); v.className = "rd-value"; v.textContent = value;
    cell.append(l, v);
    if (note) {
      const n = document.createElement("div"); n.className = "rd-note"; n.textContent = note;
      cell.append(n);
    }
    if (hint) cell.title = hint;
    return cell;
  }));
  const line = st.branchBox;
  if (st.data.fork && b && b.id !== null) {
    const gap = last(b, "vl") !== null && last(b, "tl") !== null ? last(b, "vl") - last(b, "tl") : null;
    const changes = b.events.slice(st.data.fork.events || 0).map((e) => e[1]);
    line.style.display = "";
    line.textContent = `Branch B (${st.data.fork.label || `forked at epoch ${st.data.fork.epoch}`}): ` +
      `epoch ${b.epoch} · train ${fmt(last(b, "tl"))} · val ${fmt(last(b, "vl"))} · ` +
      `gap ${gap === null ? "–" : (gap >= 0 ? "+" : "") + fmt(gap)}` +
      (changes.length ? ` · changed: ${changes.join("; ")}` :
        (st.data.fork.label ? "" : " · no knob changed yet: pick B above the ⚡ knobs and change one"));
  } else {
    line.style.display = "none";
  }
}

function tellPage(st) {
  // The page drew its buttons and messages for the states in data.expect; when a run's
  // state moves on (finished, paused at a lesson step, left the queue), ask for one rerun.
  const expect = st.data.expect || [];
  st.runs.forEach((run, i) => {
    if (!run || run.id === null || expect[i] === undefined || expect[i] === null) return;
    const now = `${run.id}:${run.status}:${run.busy ? 1 : 0}`;
    // Asked again if the page still shows the old state 3 s later (a trigger sent while
    // the page was busy with another rerun can be lost).
    if (now !== expect[i] && (st.told[i] !== now || Date.now() - st.toldAt[i] > 3000)) {
      st.told[i] = now;
      st.toldAt[i] = Date.now();
      st.setTriggerValue("status", now);
    }
  });
}

async function poll(st) {
  clearTimeout(st.timer);
  if (!st.root.isConnected || st.closed) return;
  if (st.inFlight) { st.again = true; return; } // never two polls at once: skip, not queue
  st.inFlight = true;
  let wait = 2000;
  try {
    const have = st.runs.map((r) => (r && r.id !== null
      ? `${r.id}.${r.have}.${r.events.length}.${r.vv}` : "")).join(";");
    const url = `${st.data.feed}?t=${encodeURIComponent(st.data.token)}&h=${have}` +
      `&p=${encodeURIComponent(st.preview ? st.preview.key : "")}`;
    const reply = await fetch(url, { cache: "no-store" });
    if (reply.ok) {
      const body = await reply.json();
      const fresh = [];
      let whole = false;
      body.runs.forEach((u, i) => {
        if (!u) {
          if (st.runs[i] && st.runs[i].id !== null) { st.runs[i] = emptyRun(); whole = true; }
          fresh.push(undefined);
          return;
        }
        if (!st.runs[i]) st.runs[i] = emptyRun();
        const f = merge(st.runs[i], u);
        if (f === null) whole = true;
        fresh.push(f || undefined);
      });
      if (body.preview) { st.preview = body.preview; whole = true; }
      st.Plotly = st.Plotly || await loadPlotly(st.data.plotly);
      redraw(st, fresh, whole || st.dirty);
      st.dirty = false;
      status(st);
      tellPage(st);
      const busy = st.runs.some((r) => r && r.busy);
      wait = busy ? body.next : Math.max(body.next, IDLE_MS);
    }
  } catch (err) {
    wait = 2000; // the server restarts or the network blinks: try again shortly
  } finally {
    st.inFlight = false;
  }
  if (st.again) { st.again = false; wait = 0; }
  st.timer = setTimeout(() => poll(st), wait);
}

// ------------------------------------------------------------------ layout
function build(st) {
  const P = st.data.projector, forked = !!st.data.fork;
  st.root.replaceChildren();
  st.root.className = "rd-host rd-board" + (P ? " rd-projector" : "");
  st.statusBox = el("div", "rd-status");
  st.branchBox = el("div", "rd-branch");
  const opts = el("div", "rd-opts");
  const metric = el("div", "rd-seg");
  for (const [value, label] of [["loss", "Loss"], ["score", st.data.score === "R²" ? "R²" : "Accuracy"]]) {
    const b = el("button", "rd-segbtn" + (st.opts.metric === value ? " rd-on" : ""));
    b.type = "button"; b.textContent = label; b.dataset.metric = value;
    b.onclick = () => { st.opts.metric = value; build(st); };
    metric.append(b);
  }
  const log = el("label", "rd-check");
  const box = document.createElement("input");
  box.type = "checkbox"; box.checked = st.opts.log;
  box.onchange = () => { st.opts.log = box.checked; st.dirty = true; draw(st, "loss", lossFigure(st)); };
  log.append(box, document.createTextNode(" Log scale"));
  const win = el("label", "rd-check");
  const sel = document.createElement("select");
  for (const v of ["all", "100", "500", "2000"]) {
    const o = document.createElement("option"); o.value = v; o.textContent = v;
    o.selected = String(st.opts.window || "all") === v; sel.append(o);
  }
  sel.onchange = () => { st.opts.window = sel.value === "all" ? 0 : +sel.value; draw(st, "loss", lossFigure(st)); };
  win.append(document.createTextNode("Show epochs "), sel);
  const hint = el("span", "rd-hint");
  hint.textContent = "Drag on a chart to zoom: the zoom stays while it trains. Double-click " +
    "to zoom out. Keys: T train, P pause, S step.";
  opts.append(metric, log, win, hint);
  const tools = el("div", "rd-tools"); // a phone's sidebar is a drawer: Train stands here
  for (const [command, label, cls] of [["train", "▶ Train", " rd-primary"], ["pause", "Pause", ""],
                                       ["step", "Step ›", ""]]) {
    const b = el("button", "rd-tool" + cls);
    b.type = "button"; b.textContent = label; b.dataset.command = command;
    b.onclick = () => st.setTriggerValue("command", `${command}:${Date.now()}`);
    tools.append(b);
  }
  const row1 = el("div", "rd-row");
  const loss = chart(st, "loss", "rd-main");
  const side = el("div", "rd-side");
  if (forked) {
    const pair = el("div", "rd-pair");
    for (const n of ["A", "B"]) {
      const col = el("div", "rd-col");
      col.append(chart(st, `data${n}`), chart(st, `extra${n}`));
      pair.append(col);
    }
    side.append(pair);
  } else {
    side.append(chart(st, "data"), chart(st, "extra"));
  }
  row1.append(loss, side);
  if (P) opts.prepend(tools); // one row less above the charts on a projector
  st.root.append(...(P ? [] : [tools]), st.statusBox, st.branchBox, opts, row1);
  // The network under the loss chart, beside the sparsity it explains; histograms last.
  // A projector shows it below the fold (a scroll away), without the other panels.
  const row2 = el("div", "rd-row rd-row2");
  row2.append(chart(st, "net", "rd-main rd-net"),
              P ? el("div", "rd-side") : chart(st, "norm", "rd-side"));
  st.root.append(row2);
  if (!P) {
    const row3 = el("div", "rd-row rd-row2");
    row3.append(chart(st, "weights", "rd-half"), el("div", "rd-half"));
    st.root.append(row3);
  }
  status(st);
  if (st.Plotly) redraw(st, [], true);
  if (!st.resizeWatch) {
    st.resizeWatch = new ResizeObserver(() => {
      if (st.pendingDraw && st.root.offsetWidth && st.Plotly) {
        st.pendingDraw = false;
        redraw(st, [], true);
      }
      // The diagram is laid out in pixels of its width: a new width, a new layout.
      const net = st.charts.net;
      if (net && net.__net && Math.abs(net.clientWidth - net.__net.W) > 8 && st.netLast) {
        drawNet(st, ...st.netLast);
      }
    });
    st.resizeWatch.observe(st.root);
  }
}

function el(tag, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  return e;
}

function chart(st, key, cls) {
  const div = el("div", "rd-chart" + (cls ? " " + cls : ""));
  div.dataset.chart = key;
  st.charts[key] = div;
  if (key.startsWith("extra")) div.style.display = "none";
  return div;
}

function setOwnerCookie() {
  // This browser's owner token (a cookie, never in a link): the feed marks the board's
  // runs with it, and a reloaded page (reading it when its session opens) takes back the
  // run it had.
  if (/(?:^|;\s*)regdemo_owner=[A-Za-z0-9_-]{16,64}/.test(document.cookie)) return;
  const bytes = new Uint8Array(18);
  window.crypto.getRandomValues(bytes);
  const owner = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_");
  document.cookie = `regdemo_owner=${owner}; Path=/; Max-Age=31536000; SameSite=Strict`;
}

function listenForKeys() {
  // T trains, P pauses, S steps, anywhere on the page but in a text field; the board of
  // the moment (window.__regdemoBoard) passes the command to the page.
  if (window.__regdemoKeys) return;
  window.__regdemoKeys = true;
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const target = event.target;
    if (target && (target.isContentEditable ||
                   /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    const command = { t: "train", p: "pause", s: "step" }[event.key.toLowerCase()];
    const st = window.__regdemoBoard;
    if (!command || !st || !st.root.isConnected) return;
    event.preventDefault();
    st.setTriggerValue("command", `${command}:${Date.now()}`);
  });
}

export default function (component) {
  const { parentElement, data, setTriggerValue } = component;
  let host = parentElement.querySelector(":scope > .rd-host");
  if (!host) {
    host = document.createElement("div");
    host.className = "rd-host";
    parentElement.append(host);
  }
  let st = host.__regdemo;
  const shape = (d) => `${d.token}|${d.projector}|${!!d.fork}|${d.score}`;
  if (!st || shape(st.data) !== shape(data)) {
    const fresh = !st || st.data.token !== data.token;
    if (st) {
      clearTimeout(st.timer);
      st.closed = true;
      if (st.resizeWatch) st.resizeWatch.disconnect();
    }
    st = host.__regdemo = {
      root: host, data, charts: {}, runs: fresh || !st ? [emptyRun(), null] : st.runs,
      opts: st ? st.opts : { metric: "loss", log: false, window: 0 },
      told: [], toldAt: [], timer: null, Plotly: st ? st.Plotly : null, normTick: 0, dirty: true,
      setTriggerValue,
    };
    build(st);
    loadPlotly(data.plotly).then((P) => { st.Plotly = P; redraw(st, [], true); })
      .catch(() => { st.statusBox.textContent = "The charts could not load: reload the page."; });
  } else {
    const changed = JSON.stringify(st.data) !== JSON.stringify(data);
    st.data = data;
    st.setTriggerValue = setTriggerValue;
    if (changed) st.dirty = true;
  }
  window.__regdemoBoard = st;
  listenForKeys();
  setOwnerCookie();
  if (data.recheck && !st.rechecked) {
    st.rechecked = true; // a reload: ask the page once more for this browser's run
    setTimeout(() => { if (st.root.isConnected) st.setTriggerValue("recheck", Date.now()); }, 3500);
  }
  st.closed = false;
  poll(st); // a rerun (Train, a knob) asks at once: its first point need not wait a tick
  return () => { st.closed = true; clearTimeout(st.timer); };
}
