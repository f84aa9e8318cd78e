// The browser side of the dashboard and of the run report: tables and charts drawn from the JSON of report/run_detail.ts
// with uPlot (loaded before this script as the global `uPlot`). Plain browser JavaScript, no build step: the dashboard
// serves this file and the report inlines it. `RunCharts.startDashboard()` runs the live page (server-sent events from
// /api/events, re-fetching a selected run only when its version changed); `RunCharts.renderReport(detail)` draws one
// run's report from data embedded in the page.
"use strict";

(() => {
  const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];
  /** Line styles per split, so that colour says which run and dashes say which split (ema_*: the weight average). */
  const DASH = { train: [], val: [8, 4], test: [2, 3], ema_val: [12, 3, 2, 3], ema_test: [1, 5] };
  const SPLITS = ["train", "val", "test", "ema_val", "ema_test"];

  const $ = (id) => document.getElementById(id);

  /** An element with attributes and children (strings become text: nothing from a run is parsed as HTML). */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  const pct = (x, digits = 2) => (typeof x === "number" && Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : "–");
  const num = (x, digits = 4) => (typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "–");
  const int = (x) => (typeof x === "number" && Number.isFinite(x) ? String(Math.round(x)) : "–");
  const lr = (x) =>
    typeof x !== "number" ? "–" : x !== 0 && Math.abs(x) < 1e-3 ? x.toExponential(3) : String(Number(x.toPrecision(4)));
  const duration = (s) => {
    if (typeof s !== "number" || !Number.isFinite(s) || s < 0) return "–";
    const t = Math.round(s);
    const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), ss = String(t % 60).padStart(2, "0");
    return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
  };
  const colorOf = (i) => PALETTE[i % PALETTE.length];

  // ------------------------------------------------------------------------------------------------------------------
  // Line charts (uPlot). Each chart is rebuilt when its set of series changes and otherwise given new data, so live
  // updates keep the legend and the chart in place.

  /** Live uPlot instances by container id. */
  const charts = new Map();

  /**
   * Draws series [{ label, color, dash, x: number[], y: (number|null)[], points }] into container `id` (x in epochs).
   * A series with `points` is drawn as dots without a line (per-epoch values over a per-step curve); `log` makes the y
   * axis logarithmic (losses span orders of magnitude).
   */
  function lineChart(id, series, { yLabel, yValue = (v) => v, log = false }) {
    const box = $(id);
    const drawable = series.filter((s) => s.x.length > 0);
    const key = JSON.stringify(drawable.map((s) => [s.label, s.color, s.points ?? false]));
    const existing = charts.get(id);
    if (drawable.length === 0) {
      existing?.plot.destroy();
      charts.delete(id);
      box.replaceChildren(el("p", { class: "empty" }, "no data yet"));
      return;
    }
    const data = uPlot.join(drawable.map((s) => [s.x, s.y]));
    if (existing && existing.key === key) {
      existing.plot.setData(data);
      return;
    }
    existing?.plot.destroy();
    box.replaceChildren();
    const opts = {
      width: Math.max(280, box.clientWidth || 480),
      height: 240,
      scales: { x: { time: false }, y: log ? { distr: 3 } : {} },
      axes: [
        {
          label: "epoch",
          incrs: [0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
          values: (_u, ticks) => ticks.map((t) => String(Number(t.toPrecision(6)))),
        },
        // A log scale leaves some ticks unlabelled (null).
        { label: yLabel, size: 60, values: (_u, ticks) => ticks.map((t) => (t === null ? "" : yValue(t))) },
      ],
      series: [
        { label: "epoch", value: (_u, v) => (v === null || v === undefined ? "–" : String(Number(v.toFixed(3)))) },
        ...drawable.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.points ? 0 : 2,
          dash: s.dash,
          spanGaps: true,
          value: (_u, v) => (v === null || v === undefined ? "–" : yValue(v)),
          ...(s.points
            ? { paths: () => null, points: { show: true, size: 7, fill: s.color, stroke: s.color } }
            : { points: { show: s.x.length <= 60 } }),
        })),
      ],
      legend: { live: true },
      // Without the pointer on the chart the legend shows the last values, so the latest figures are readable at a
      // glance (uPlot would show dashes).
      hooks: {
        draw: [showLast],
        setCursor: [(u) => u.cursor.idx === null || u.cursor.idx === undefined ? showLast(u) : 0],
      },
    };
    const plot = new uPlot(opts, data, box);
    charts.set(id, { key, plot });
  }

  /** Points the legend at the last x value. */
  const showLast = (plot) => plot.setLegend({ idx: plot.data[0].length - 1 });

  /** Keeps every chart as wide as its container. */
  const resizer = typeof ResizeObserver === "function"
    ? new ResizeObserver(() => {
      for (const [id, { plot }] of charts) {
        const w = Math.max(280, $(id)?.clientWidth ?? 0);
        if (w && Math.abs(w - plot.width) > 4) plot.setSize({ width: w, height: plot.height });
      }
    })
    : null;

  /** The training-curve charts of `runs` (RunDetail objects), overlaid: one colour per run. */
  function drawCurves(runs) {
    const loss = [], top1 = [], rate = [], speed = [];
    runs.forEach((run, i) => {
      const color = colorOf(i);
      const ms = run.metrics;
      const x = ms.map((m) => m.epoch);
      const prefix = runs.length > 1 ? `${run.name} ` : "";
      for (const split of SPLITS) {
        const l = ms.map((m) => m[`${split}_loss`] ?? null);
        const a = ms.map((m) => m[`${split}_top1`] ?? null);
        const label = `${prefix}${split.replace("_", " ")}`;
        if (l.some((v) => v !== null)) loss.push({ label, color, dash: DASH[split], x, y: l });
        if (a.some((v) => v !== null)) top1.push({ label, color, dash: DASH[split], x, y: a });
      }
      if (run.lrSteps) {
        rate.push({ label: `${prefix}per step`, color, dash: [], x: run.lrSteps.epoch, y: run.lrSteps.lr });
      }
      rate.push({ label: `${prefix}per epoch`, color, dash: [], x, y: ms.map((m) => m.lr), points: true });
      speed.push({ label: `${prefix}train`, color, dash: [], x, y: ms.map((m) => m.images_per_second) });
    });
    lineChart("chart-loss", loss, {
      yLabel: "loss (log scale)",
      yValue: (v) => String(Number(v.toPrecision(4))),
      log: true,
    });
    lineChart("chart-top1", top1, { yLabel: "top-1", yValue: (v) => pct(v, 1) });
    lineChart("chart-lr", rate, { yLabel: "learning rate", yValue: lr });
    lineChart("chart-ips", speed, { yLabel: "images/s", yValue: int });
  }

  // ------------------------------------------------------------------------------------------------------------------
  // Evaluation pictures: the confusion matrix as a heat map (uPlot has none: a canvas of our own) and per-class
  // accuracy as bars (uPlot's bar paths).

  /** A confusion-matrix heat map: rows are true classes, columns predicted; colour is the row's fraction. */
  function heatMap(report) {
    const names = report.perClass.map((c) => c.name);
    const k = names.length;
    const cell = Math.max(4, Math.min(36, Math.floor(520 / k)));
    const showLabels = cell >= 10;
    const label = Math.min(120, 8 + 7 * Math.max(...names.map((n) => n.length)));
    const left = showLabels ? label : 8, top = showLabels ? label : 8;
    const ratio = globalThis.devicePixelRatio || 1;
    const w = left + k * cell + 8, h = top + k * cell + 8;
    const canvas = el("canvas", {
      class: "heatmap",
      width: Math.round(w * ratio),
      height: Math.round(h * ratio),
      style: `width:${w}px;height:${h}px`,
      role: "img",
      "aria-label": `confusion matrix, ${k} classes`,
    });
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    ctx.font = `${Math.min(12, Math.max(8, cell - 4))}px sans-serif`;
    report.confusion.forEach((row, t) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      row.forEach((n, p) => {
        const f = n / total;
        // White to dark blue; the diagonal in blue, errors in red, so mistakes stand out.
        const hue = t === p ? 215 : 5;
        ctx.fillStyle = `hsl(${hue}, 70%, ${Math.round(100 - 62 * Math.sqrt(f))}%)`;
        ctx.fillRect(left + p * cell, top + t * cell, cell - 1, cell - 1);
        if (cell >= 24 && n > 0) {
          ctx.fillStyle = f > 0.45 ? "#fff" : "#222";
          ctx.textAlign = "center";
          ctx.textBaseline = "middle";
          ctx.fillText(String(n), left + p * cell + cell / 2, top + t * cell + cell / 2);
        }
      });
    });
    if (showLabels) {
      ctx.fillStyle = "#222";
      ctx.textBaseline = "middle";
      names.forEach((name, i) => {
        const short = name.length > 16 ? `${name.slice(0, 15)}…` : name;
        ctx.textAlign = "right";
        ctx.fillText(short, left - 4, top + i * cell + cell / 2);
        ctx.save();
        ctx.translate(left + i * cell + cell / 2, top - 4);
        ctx.rotate(-Math.PI / 2);
        ctx.textAlign = "left";
        ctx.fillText(short, 0, 0);
        ctx.restore();
      });
    }
    canvas.addEventListener("mousemove", (e) => {
      const r = canvas.getBoundingClientRect();
      const p = Math.floor((e.clientX - r.left - left) / cell), t = Math.floor((e.clientY - r.top - top) / cell);
      const n = report.confusion[t]?.[p];
      canvas.title = n === undefined
        ? ""
        : `true ${names[t]}, predicted ${names[p]}: ${n} of ${report.perClass[t].count} images`;
    });
    return canvas;
  }

  /** Per-class accuracy as a bar chart (uPlot bars), class names on the x axis. */
  function classBars(box, report) {
    const names = report.perClass.map((c) => c.name);
    const x = names.map((_, i) => i);
    const y = report.perClass.map((c) => c.accuracy);
    const opts = {
      width: Math.max(280, box.clientWidth || 480),
      height: 220,
      scales: { x: { time: false, range: [-0.5, names.length - 0.5] }, y: { range: [0, 1] } },
      axes: [
        {
          splits: () => x,
          values: (_u, ticks) => ticks.map((t) => names[t] ?? ""),
          rotate: names.length > 10 ? -60 : 0,
          size: names.length > 10 ? 80 : 30,
          gap: 2,
        },
        { label: "accuracy", size: 60, values: (_u, ticks) => ticks.map((v) => pct(v, 0)) },
      ],
      series: [
        { label: "class", value: (_u, i) => names[i] ?? "–" },
        {
          label: "accuracy",
          fill: "#1f77b4b0",
          stroke: "#1f77b4",
          paths: uPlot.paths.bars({ size: [0.7, 60] }),
          points: { show: false },
          value: (_u, v) => pct(v),
        },
      ],
      legend: { live: true },
    };
    return new uPlot(opts, [x, y], box);
  }

  /** Bar charts of the evaluation sections, destroyed before the next drawing. */
  let evalPlots = [];

  /** The evaluation section of each run that has `eval*.json` files. */
  function drawEvals(runs) {
    for (const plot of evalPlots) plot.destroy();
    const sections = [], bars = [];
    for (const run of runs) {
      for (const { file, report } of run.evals ?? []) {
        const box = el("div", { class: "bars" });
        bars.push([box, report]);
        sections.push(el(
          "section",
          { class: "eval", "data-run": run.name, "data-file": file },
          el("h3", {}, `${run.name}/${file}: ${report.dataset} ${report.split}, ${report.numImages} images`),
          el(
            "p",
            { class: "eval-figures" },
            `top-1 ${pct(report.top1)} · top-5 ${pct(report.top5)} · loss ${num(report.loss)} · `,
            el("span", { class: "muted" }, report.checkpoint),
          ),
          el(
            "div",
            { class: "eval-pictures" },
            el(
              "figure",
              {},
              el("figcaption", {}, "confusion matrix (rows: true, columns: predicted)"),
              heatMap(report),
            ),
            el("figure", { class: "grow" }, el("figcaption", {}, "accuracy per class"), box),
          ),
        ));
      }
    }
    $("evals").replaceChildren(...sections);
    // uPlot measures its container, so the bars are drawn once the sections are in the page.
    evalPlots = bars.map(([box, report]) => classBars(box, report));
  }

  // ------------------------------------------------------------------------------------------------------------------
  // Tables.

  function stateBadge(run) {
    const text = run.state === "running" && run.host ? `running on ${run.host}` : run.state;
    return el("span", { class: `state ${run.state}` }, text);
  }

  function epochsText(run) {
    return `${run.epochsDone}${run.epochs !== null ? `/${run.epochs}` : ""}`;
  }

  /** The in-epoch progress of running runs. */
  function drawProgress(runs) {
    const rows = runs.filter((r) => r.state === "running").map((r) => {
      const p = r.progress;
      const text = p
        ? `epoch ${p.epoch}/${p.epochs} · batch ${p.batch}/${p.batches} · loss ${num(p.loss)} · top-1 ${
          pct(p.acc)
        } · lr ${lr(p.lr)} · ${int(p.imagesPerSecond)} img/s · ETA ${duration(p.etaSeconds)}`
        : "running: no progress.json yet";
      return el(
        "div",
        { class: "progress-row", "data-run": r.name },
        el("span", { class: "run-name" }, r.name),
        el("progress", { max: 1, value: p && p.batches > 0 ? p.batch / p.batches : 0 }),
        el("span", { class: "progress-text" }, text),
      );
    });
    $("progress").replaceChildren(...rows);
  }

  /** The epoch records of each run as a table (the figures behind the charts). */
  function drawEpochTables(runs) {
    const cols = [
      ["epoch", (m) => String(m.epoch)],
      ["step", (m) => String(m.step)],
      ["lr", (m) => lr(m.lr)],
      ["train loss", (m) => num(m.train_loss)],
      ["train top-1", (m) => pct(m.train_top1)],
      ["val loss", (m) => num(m.val_loss)],
      ["val top-1", (m) => pct(m.val_top1)],
      ["test loss", (m) => num(m.test_loss)],
      ["test top-1", (m) => pct(m.test_top1)],
      ["test top-5", (m) => pct(m.test_top5)],
      // The weight average's (--model-ema), for runs that keep one.
      ...(runs.some((run) => run.metrics.some((m) => m.ema_test_top1 !== undefined))
        ? [["ema val top-1", (m) => pct(m.ema_val_top1)], ["ema test top-1", (m) => pct(m.ema_test_top1)]]
        : []),
      ["time", (m) => duration(m.time)],
      ["img/s", (m) => int(m.images_per_second)],
    ];
    $("epochs").replaceChildren(...runs.map((run) =>
      el(
        "details",
        { open: runs.length === 1, class: "epoch-table", "data-run": run.name },
        el("summary", {}, `${run.name}: ${run.metrics.length} epoch record(s)`),
        el(
          "table",
          {},
          el("thead", {}, el("tr", {}, cols.map(([h]) => el("th", {}, h)))),
          el("tbody", {}, run.metrics.map((m) => el("tr", {}, cols.map(([, f]) => el("td", {}, f(m)))))),
        ),
      )
    ));
  }

  /** What could not be read, so that a half-shown run says why. */
  function drawNotes(id, notes) {
    $(id).replaceChildren(...notes.map((n) => el("li", {}, n)));
    $(id).hidden = notes.length === 0;
  }

  function drawRunDetails(runs) {
    drawProgress(runs);
    drawCurves(runs);
    drawEvals(runs);
    drawEpochTables(runs);
    drawNotes("run-notes", runs.flatMap((r) => r.skipped.map((s) => `${r.name}: skipped ${s}`)));
    $("selection-empty").hidden = runs.length > 0;
  }

  // ------------------------------------------------------------------------------------------------------------------
  // The live dashboard.

  function startDashboard() {
    if (resizer) resizer.observe(document.body);
    const params = new URLSearchParams(location.search);
    const selected = new Set(params.getAll("run"));
    let list = { runs: [], skipped: [] };
    const details = new Map(); // name -> RunDetail
    let fetching = Promise.resolve();
    let defaulted = false;

    const selectedRuns = () =>
      list.runs.filter((r) => selected.has(r.name)).map((r) => details.get(r.name)).filter(
        Boolean,
      );

    const saveSelection = () => {
      const q = new URLSearchParams();
      for (const name of selected) q.append("run", name);
      history.replaceState(null, "", `${location.pathname}${selected.size ? `?${q}` : ""}`);
    };

    function drawTable() {
      const rows = list.runs.map((r) => {
        const check = el("input", {
          type: "checkbox",
          checked: selected.has(r.name),
          "aria-label": `show ${r.name}`,
          onchange: (e) => {
            if (e.target.checked) selected.add(r.name);
            else selected.delete(r.name);
            saveSelection();
            refresh();
          },
        });
        const split = r.top1Split ? ` (${r.top1Split})` : "";
        return el(
          "tr",
          { "data-run": r.name, class: selected.has(r.name) ? "selected" : "" },
          el("td", {}, check),
          el("td", { class: "run-name" }, el("a", { href: `/report/${encodeURIComponent(r.name)}` }, r.name)),
          el("td", {}, r.arch ?? "?"),
          el("td", {}, r.dataset ?? "?"),
          el("td", { class: "epochs" }, epochsText(r)),
          el("td", { class: "best-top1" }, pct(r.bestTop1), el("span", { class: "muted" }, split)),
          el("td", { class: "last-top1" }, pct(r.lastTop1)),
          el("td", { class: "ips" }, int(r.imagesPerSecond)),
          el("td", {}, stateBadge(r)),
          el("td", { class: "warn" }, r.skipped.length ? `${r.skipped.length} skipped` : ""),
        );
      });
      $("runs-body").replaceChildren(...rows);
      $("runs-empty").hidden = list.runs.length > 0;
      drawNotes("skipped", list.skipped.map((s) => `skipped ${s}`));
      $("root").textContent = list.root ?? "";
    }

    /** Fetches the selected runs whose version changed, then redraws. Serialised: one refresh at a time. */
    function refresh() {
      fetching = fetching.then(async () => {
        for (const r of list.runs) {
          if (!selected.has(r.name) || details.get(r.name)?.version === r.version) continue;
          const res = await fetch(`/api/runs/${encodeURIComponent(r.name)}`);
          if (res.ok) details.set(r.name, await res.json());
        }
        drawTable();
        drawRunDetails(selectedRuns());
        document.body.dataset.updated = String(Date.now());
      }).catch((e) => setStatus(`error: ${e.message}`, "error"));
    }

    function setStatus(text, kind) {
      $("status").textContent = text;
      $("status").className = `status ${kind}`;
    }

    function onRuns(next) {
      list = next;
      // With no run named in the address, show the newest one, so the page is useful at first sight (once: a user
      // who unticks every run keeps an empty selection).
      if (!defaulted && selected.size === 0 && list.runs.length > 0) selected.add(list.runs[0].name);
      defaulted = true;
      refresh();
    }

    // `?poll` polls /api/runs instead of holding an event stream: for proxies that buffer streams, and for
    // `chromium --headless --screenshot --virtual-time-budget`, whose virtual clock stops while a request is open.
    if (typeof EventSource === "function" && !params.has("poll")) {
      const events = new EventSource("/api/events");
      events.addEventListener("runs", (e) => onRuns(JSON.parse(e.data)));
      events.addEventListener("open", () => setStatus("live", "live"));
      events.addEventListener("error", () => setStatus("reconnecting…", "error"));
    } else {
      // No server-sent events: poll every 2 s.
      const poll = async () => {
        try {
          const res = await fetch("/api/runs");
          if (!res.ok) throw new Error(`/api/runs: ${res.status}`);
          onRuns(await res.json());
          setStatus("polling", "live");
        } catch (e) {
          setStatus(`error: ${e.message}`, "error");
        }
        setTimeout(poll, 2000);
      };
      poll();
    }
  }

  // ------------------------------------------------------------------------------------------------------------------
  // The report of one run, drawn from data embedded in the page.

  function renderReport(run) {
    drawRunDetails([run]);
    $("summary").replaceChildren(
      el("span", {}, `${run.arch ?? "?"} on ${run.dataset ?? "?"} · epochs ${epochsText(run)} · `),
      stateBadge(run),
      el(
        "span",
        {},
        ` · best top-1 ${pct(run.bestTop1)}${run.top1Split ? ` (${run.top1Split})` : ""} · last ${
          pct(run.lastTop1)
        } · ${int(run.imagesPerSecond)} img/s`,
      ),
    );
    const config = run.config ?? {};
    $("config").replaceChildren(
      ...Object.entries(config).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, JSON.stringify(v)))),
    );
    document.body.dataset.updated = String(Date.now());
  }

  globalThis.RunCharts = { startDashboard, renderReport };
})();
