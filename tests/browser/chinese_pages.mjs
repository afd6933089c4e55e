// Every main page in Chinese says nothing in English: each role of the demonstration
// opens every page its bar offers, the management sections, a request of each list and
// a study in the viewer, and no Latin word shows outside an allow-list (product names,
// units, DICOM terms, the language switch). Words with digits (ids, accession numbers,
// times), words in capitals (abbreviations, and names as DICOM writes them: WANG^MOUMOU),
// e-mail addresses and web addresses are data, not words.
// Input: {"accounts": [{username, password}]}.
import { assert, input, scenario, newContext, login, open, screenshot } from "./lib.mjs";

/** Latin words a Chinese page may show. */
const ALLOWED = new Set([
  // The language switch names the other language in that language.
  "English",
  // Product and standard names.
  "DICOM", "DICOMweb", "PACS", "WebRTC", "SMTP", "PDF", "CSV", "URL", "HTTP", "HTTPS", "JSON", "ID", "IP", "TURN", "STUN",
  "WADO", "QIDO", "STOW", "HL7", "AE", "SCP", "SCU", "C-ECHO", "C-STORE", "UID", "OpenAPI", "API",
  // Modalities and DICOM terms.
  "CT", "MR", "MRI", "DR", "DX", "CR", "US", "MG", "XA", "NM", "PT", "OT", "SC", "RF", "ECG", "JPEG", "RLE",
  // Units.
  "mmHg", "kbit", "Mbit", "kB", "KB", "MB", "GB", "ms", "s", "min", "h", "kg", "cm", "mm", "mL", "bpm",
]);

/** The words of `text` that are neither data nor allowed. */
function english(text) {
  const out = new Set();
  for (const token of text.split(/[\s\u3000-\u303f\uff00-\uffef\u4e00-\u9fff（）()，。、；：:,;!?！？「」【】《》“”"'·•—–…]+/u)) {
    if (!/[A-Za-z]/.test(token)) continue;
    if (/\d/.test(token) || token.includes("@") || /^https?:|^\/|\.[a-z]{2,}$/.test(token)) continue;
    for (const word of token.split(/[/]+/)) {
      const bare = word.replace(/^[^A-Za-z]+|[^A-Za-z]+$/g, "");
      const capitals = bare.length > 1 && bare === bare.toUpperCase();
      if (bare && !capitals && !ALLOWED.has(bare)) out.add(bare);
    }
  }
  return [...out];
}

/** Every page that showed English, with its words; reported together at the end. */
const failures = [];

async function check(page, label, seen) {
  // What the person sees: the bar and the page, without the inputs' typed values.
  const text = await page.evaluate(() => `${document.querySelector("header")?.innerText ?? ""}\n${document.querySelector("main")?.innerText ?? ""}`);
  const words = english(text);
  if (words.length) failures.push(`${label} ${new URL(page.url()).pathname}: ${words.join(", ")}`);
  seen.push(new URL(page.url()).pathname);
}

/** Opens `path`, waits for the page and what it loads, and checks it. */
async function visit(page, path, label, seen) {
  await open(page, path);
  // What a page loads after drawing (names, counts); a page that follows the notices
  // stream is never idle, so a short while is enough.
  await page.waitForLoadState("networkidle", { timeout: 2_000 }).catch(() => {});
  await check(page, label, seen);
}

await scenario("chinese_pages", async ({ browser }) => {
  const seen = [];
  for (const a of input.accounts) {
    const context = await newContext(browser);
    const page = await context.newPage();
    await login(page, a.username, a.password);
    const links = await page.locator("header nav a[href^='/']").evaluateAll((els) => els.map((e) => e.getAttribute("href")));
    for (const link of links) await visit(page, link, a.username, seen);
    if (links.includes("/manage")) {
      await open(page, "/manage");
      const sections = await page.locator(".manage-nav a").evaluateAll((els) => els.map((e) => e.getAttribute("href")));
      for (const s of sections) await visit(page, s, a.username, seen);
    }
    // A request of each list the person has, and a study in the viewer.
    for (const [list, row] of [["/requests", "a[href^='/requests/']:not([href$='/new'])"], ["/inbox", "a[href^='/requests/']"], ["/worklist", "a.open-viewer"]]) {
      if (!links.includes(list)) continue;
      await open(page, list);
      await page.waitForLoadState("networkidle", { timeout: 2_000 }).catch(() => {});
      const first = page.locator(`main ${row}`).first();
      if (!(await first.count())) continue;
      const href = await first.getAttribute("href");
      await visit(page, href, a.username, seen);
      await screenshot(page, `${a.username}-${list.slice(1)}-item`);
    }
    await context.close();
  }
  assert.deepEqual(failures, [], `pages show English:\n${failures.join("\n")}`);
  return { seen };
});
