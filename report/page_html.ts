/**
 * The HTML of the two pages, the live dashboard and the report of one run: one shell, the same chart sections, so
 * the report shows exactly the dashboard's charts. The dashboard links its scripts from the server; the report
 * inlines them and its data, so it is one file that opens offline from disk.
 * @module
 */
import { ASSETS, SCRIPTS, STYLES } from "./assets.ts";
import type { RunDetail } from "./run_detail.ts";

/** Text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON safe inside a `<script>` element: no `<` at all, so no `</script>` or `<!--` can end it early. */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** Inlined script text cannot contain `</script`; none of ours does, and a future version that did must fail loudly. */
function inlineScript(name: string): string {
  const text = ASSETS[name].text;
  if (/<\/script/i.test(text)) throw new Error(`${name} contains "</script" and cannot be inlined`);
  return `<script>${text}</script>`;
}

/** The sections both pages share: progress, the four curves, evaluation pictures, epoch tables, skipped notes. */
const CHART_SECTIONS = `
<div id="progress"></div>
<p id="selection-empty" class="empty" hidden>Tick one or more runs to draw them.</p>
<div class="grid">
  <figure><figcaption>Loss (solid: train, dashed: validation, dotted: test)</figcaption><div id="chart-loss" class="chart"></div></figure>
  <figure><figcaption>Top-1 accuracy</figcaption><div id="chart-top1" class="chart"></div></figure>
  <figure><figcaption>Learning rate (line: per step from the schedule, dots: per epoch)</figcaption><div id="chart-lr" class="chart"></div></figure>
  <figure><figcaption>Training images/s</figcaption><div id="chart-ips" class="chart"></div></figure>
</div>
<div id="evals"></div>
<h2>Epochs</h2>
<div id="epochs"></div>
<ul id="run-notes" class="notes" hidden></ul>`;

function page(title: string, head: string, header: string, body: string, boot: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
${head}
</head>
<body>
<header>${header}</header>
<main>
${body}
</main>
${boot}
</body>
</html>
`;
}

/** The live dashboard: its scripts and styles come from the server's `/assets/`. */
export function dashboardHtml(): string {
  const head = [
    ...STYLES.map((s) => `<link rel="stylesheet" href="/assets/${s}">`),
    ...SCRIPTS.map((s) => `<script src="/assets/${s}"></script>`),
  ].join("\n");
  const body = `<h2>Runs in <code id="root"></code></h2>
<table id="runs">
<thead><tr><th></th><th>run</th><th>architecture</th><th>dataset</th><th>epochs</th><th>best top-1</th><th>last top-1</th><th>images/s</th><th>state</th><th></th></tr></thead>
<tbody id="runs-body"></tbody>
</table>
<p id="runs-empty" class="empty" hidden>No runs yet.</p>
<ul id="skipped" class="notes" hidden></ul>
${CHART_SECTIONS}`;
  return page(
    "Training runs",
    head,
    `<h1>Training runs</h1><span id="status" class="status">connecting…</span>`,
    body,
    `<script>RunCharts.startDashboard();</script>`,
  );
}

/** The report of one run: a single self-contained file (scripts, styles and data inlined). */
export function reportHtml(run: RunDetail, generated = new Date()): string {
  const head = [
    ...STYLES.map((s) => `<style>${ASSETS[s].text}</style>`),
    ...SCRIPTS.map(inlineScript),
  ].join("\n");
  const body = `<p id="summary"></p>
${CHART_SECTIONS}
<h2>Configuration</h2>
<table class="config"><tbody id="config"></tbody></table>`;
  return page(
    `${run.name}: training report`,
    head,
    `<h1>${escapeHtml(run.name)}</h1><span class="muted">report written ${escapeHtml(generated.toISOString())}</span>`,
    body,
    `<script type="application/json" id="run-data">${scriptJson(run)}</script>
<script>RunCharts.renderReport(JSON.parse(document.getElementById("run-data").textContent));</script>`,
  );
}
