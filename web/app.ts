/// <reference lib="dom" />
/**
 * The demo page's script (bundled for the browser by web/bundle.ts): `?selftest` runs the kernel self-test; otherwise the
 * Classify (web/classify_page.ts) and Train (web/train_page.ts) sections.
 * @module
 */
import { runSelfTestPage } from "./selftest_page.ts";
import { classifySection } from "./classify_page.ts";
import { trainSection } from "./train_page.ts";

const params = new URLSearchParams(location.search);
const main = document.getElementById("main")!;
if (params.has("selftest")) {
  await runSelfTestPage(main, params.get("selftest") ?? "");
} else {
  classifySection(main);
  trainSection(main);
}
