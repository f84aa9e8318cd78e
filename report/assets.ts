/**
 * The files the pages are made of, as text: uPlot's browser build and stylesheet, read from Deno's npm cache through
 * the `uplot/` import pinned in deno.json (so no CDN and no copy in the repository), and our own script and styles.
 * The dashboard serves them; the report inlines them.
 *
 * uPlot (51 kB minified): a canvas chart made for long time series (its README: an interactive chart of 150,000
 * points in 90 ms from a cold start), with live legends and bar paths and no dependencies. Chart.js (about 200 kB) and
 * ECharts (about 1 MB) do more kinds of charts, which we do not need: the one picture uPlot lacks, the confusion heat
 * map, is a plain canvas in charts.js.
 * @module
 */
import uplotJs from "uplot/dist/uPlot.iife.min.js" with { type: "text" };
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };
import chartsJs from "./charts.js" with { type: "text" };
import pageCss from "./page.css" with { type: "text" };

/** Asset files by the name the dashboard serves them under (`/assets/NAME`), with their content type. */
export const ASSETS: Readonly<Record<string, { type: string; text: string }>> = {
  "uPlot.iife.min.js": { type: "text/javascript; charset=utf-8", text: uplotJs },
  "uPlot.min.css": { type: "text/css; charset=utf-8", text: uplotCss },
  "charts.js": { type: "text/javascript; charset=utf-8", text: chartsJs },
  "page.css": { type: "text/css; charset=utf-8", text: pageCss },
};

/** Scripts, in loading order. */
export const SCRIPTS = ["uPlot.iife.min.js", "charts.js"] as const;
/** Stylesheets, in order. */
export const STYLES = ["uPlot.min.css", "page.css"] as const;
