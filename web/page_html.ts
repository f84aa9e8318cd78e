/**
 * The demo page's HTML: one page whose script (`/app.js`) reads the query: `?selftest` runs the kernel self-test;
 * otherwise the classify and train sections.
 * @module
 */
import uplotCss from "uplot/dist/uPlot.min.css" with { type: "text" };

/** The page. */
export function demoHtml(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>ResNets on WebGPU</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5em auto; max-width: 60em; padding: 0 1em; color: #222 }
  h1 { font-size: 1.5em } h2 { font-size: 1.2em; margin-top: 1.5em }
  .error { color: #b00020 } .note { color: #555 }
  #selftest { font-size: 1.3em; font-weight: bold }
  #selftest-failures li { font-family: monospace; white-space: pre-wrap; margin-bottom: .4em }
  .drop { border: 2px dashed #999; border-radius: 8px; padding: 1.5em; text-align: center; color: #555 }
  .drop.over { border-color: #1f77b4; background: #eef5fb }
  table.top5 { border-collapse: collapse } table.top5 td { padding: 2px 8px }
  #results { display: flex; flex-wrap: wrap; gap: .5em 2em }
  .result { display: flex; gap: .7em; align-items: flex-start; margin: .7em 0 }
  .result canvas, .result img { width: 96px; height: 96px; image-rendering: pixelated; border: 1px solid #ccc }
  .bar { background: #1f77b4; height: .8em; display: inline-block }
${uplotCss}
</style>
</head>
<body>
<h1>ResNets on WebGPU</h1>
<p class="note">Our WGSL kernels and torchvision-compatible ResNets, in this page. <a href="?selftest">Run the kernel
self-test</a>.</p>
<div id="main"></div>
<script type="module" src="/app.js"></script>
</body>
</html>
`;
}
