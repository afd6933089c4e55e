// The library of the browser scenarios: Debian's Chromium driven by playwright-core
// (never Playwright's own browser download, which fails on these machines).
//
// A scenario is a file `tests/browser/<name>.mjs`, run by `tests/src/browser.rs` as
// `node tests/browser/<name>.mjs` from the workspace root with:
//   DUIKOU_URL        the gateway under test, `http://127.0.0.1:port`;
//   DUIKOU_ARTIFACTS  the directory for its screenshots (created, emptied by the caller);
//   DUIKOU_INPUT      JSON prepared by the Rust side: usernames, passwords, ids;
//   DUIKOU_DEADLINE_MS  how long it may take before it fails by itself (optional);
//   DUIKOU_CHROMIUM   the browser to start (default /usr/bin/chromium).
// It exits 0 when every check passed, else non-zero with the failed check (node:assert),
// the browser's uncaught errors and console, and a screenshot of each open page. Results
// the Rust side needs go out as one JSON line at the end (`scenario` prints what its body
// returns).
//
// To run one by hand against a running gateway:
//   DUIKOU_URL=http://127.0.0.1:8080 DUIKOU_ARTIFACTS=/tmp/shots \
//   DUIKOU_INPUT='{"username":"…","password":"…"}' node tests/browser/language.mjs
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

export { assert };

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`${name} is not set: browser scenarios run from tests/src/browser.rs (see the top of tests/browser/lib.mjs)`);
    process.exit(2);
  }
  return value;
}

/** The gateway under test, without a trailing slash. */
export const baseUrl = required("DUIKOU_URL").replace(/\/+$/, "");
/** Where screenshots go. */
export const artifacts = required("DUIKOU_ARTIFACTS");
/** What the Rust side prepared. */
export const input = JSON.parse(process.env.DUIKOU_INPUT || "{}");
/** The browser binary. */
export const chromiumPath = process.env.DUIKOU_CHROMIUM || "/usr/bin/chromium";

/** How long one wait may take, in ms, before the check fails. */
export const WAIT_MS = 15_000;

/** Screen sizes: an ordinary office PC, and a phone. */
export const OFFICE = { width: 1366, height: 768 };
export const PHONE = { width: 390, height: 844 };

/** The flags DESIGN.md ("Known traps") names for these machines. */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
];

/** Starts Chromium. */
export async function launch({ args = [] } = {}) {
  if (!fs.existsSync(chromiumPath)) {
    throw new Error(`no Chromium at ${chromiumPath}: run tests/run, which installs Debian's chromium (or set DUIKOU_CHROMIUM)`);
  }
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: [...FLAGS, ...args],
    timeout: 60_000,
    // `scenario` reports and screenshots the pages first when the test stops it.
    handleSIGTERM: false,
  });
}

// Every page of every context, with what went wrong in it, for the failure report.
const watched = [];

/**
 * A browser context on the gateway: its own cookies, so one person. `phone: true` gives a
 * phone's screen, touch and user agent; `lang` sets the `duikou_lang` cookie beforehand.
 * Camera and microphone are allowed (the browser's fake devices).
 */
export async function newContext(browser, { phone = false, lang, viewport } = {}) {
  const options = {
    baseURL: baseUrl,
    viewport: viewport ?? (phone ? PHONE : OFFICE),
    locale: "zh-CN",
    timezoneId: "Asia/Shanghai",
    permissions: ["camera", "microphone"],
    // A gateway under test with TLS serves its own self-signed certificate.
    ignoreHTTPSErrors: baseUrl.startsWith("https:"),
  };
  if (phone) {
    Object.assign(options, {
      isMobile: true,
      hasTouch: true,
      deviceScaleFactor: 2,
      userAgent:
        "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36",
    });
  }
  const context = await browser.newContext(options);
  context.setDefaultTimeout(WAIT_MS);
  context.setDefaultNavigationTimeout(WAIT_MS);
  if (lang) {
    await context.addCookies([{ name: "duikou_lang", value: lang, url: baseUrl }]);
  }
  context.on("page", watch);
  return context;
}

function watch(page) {
  const entry = { page, errors: [], console: [] };
  watched.push(entry);
  page.on("pageerror", (e) => entry.errors.push(String(e?.stack || e)));
  page.on("console", (m) => {
    entry.console.push(`${m.type()}: ${m.text()}`);
    if (m.type() === "error" && /Content Security Policy/i.test(m.text())) {
      entry.errors.push(`CSP violation: ${m.text()}`);
    }
  });
}

/** Waits until the shell has drawn its page (`<body data-ready="true">`). */
export async function ready(page) {
  await page.locator('body[data-ready="true"]').waitFor({ state: "attached" });
}

/** Opens `path` of the gateway and waits until the page has drawn. */
export async function open(page, pathname) {
  await page.goto(pathname);
  await ready(page);
}

/** Runs `action` (say, a click) that reloads or leaves the page, and waits for the next one to draw. */
export async function reloadingBy(page, action) {
  // A mark on the old document: the wait ends only on a new one that has drawn.
  await page.evaluate(() => {
    window.__duikouOld = true;
  });
  await action();
  await page.waitForFunction(() => !window.__duikouOld && document.body?.dataset.ready === "true");
}

/**
 * Logs `username` in through the `/login` page (opening it unless already there) and
 * waits for the page it leads to (`/home`, or the `next` it was sent with).
 */
export async function login(page, username, password) {
  if (new URL(page.url(), baseUrl).pathname !== "/login") {
    await open(page, "/login");
  } else {
    await ready(page);
  }
  const form = page.locator("form#login");
  await form.locator('input[name="username"]').fill(username);
  await form.locator('input[name="password"]').fill(password);
  await page.evaluate(() => {
    window.__duikouOld = true;
  });
  await form.locator('button[type="submit"]').click();
  // Either the next page draws, or the login page says why not.
  const refusal = 'form#login [role="alert"]';
  await page.waitForFunction(
    (refusal) =>
      (!window.__duikouOld && document.body?.dataset.ready === "true") ||
      (window.__duikouOld && document.querySelector(refusal)?.textContent.trim()),
    refusal,
  );
  if (await page.evaluate(() => window.__duikouOld === true)) {
    assert.fail(`the login of ${username} was refused: ${await text(page, refusal)}`);
  }
  assert.notEqual(new URL(page.url()).pathname, "/login", `the login of ${username} stays on the login page`);
}

/** The text of the first element `selector` matches, trimmed. */
export async function text(page, selector) {
  return (await page.locator(selector).first().innerText()).trim();
}

/** Saves a full-page screenshot as `<artifacts>/<name>.png` and returns its path. */
export async function screenshot(page, name) {
  fs.mkdirSync(artifacts, { recursive: true });
  const file = path.join(artifacts, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// ---- the video rooms ------------------------------------------------------------------

/**
 * Keeps the page's peer connections in `window.__pcs`, made with `config` added to the
 * page's own (e.g. `{ iceTransportPolicy: "relay" }`). An init script, run in the page:
 * `context.addInitScript(keepPeerConnections, config)`.
 */
export function keepPeerConnections(config = {}) {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(own = {}, ...rest) {
      super({ ...own, ...config }, ...rest);
      window.__pcs.push(this);
    }
  };
}

/** Bytes of `kind` ("audio", "video") the page has received so far over its open peer
 * connections (those `keepPeerConnections` keeps). */
export function bytesIn(page, kind) {
  return page.evaluate(async (kind) => {
    let total = 0;
    for (const pc of window.__pcs ?? []) {
      if (pc.connectionState === "closed") continue;
      (await pc.getStats()).forEach((r) => {
        if (r.type === "inbound-rtp" && r.kind === kind) total += r.bytesReceived ?? 0;
      });
    }
    return total;
  }, kind);
}

/** Frames shown so far by the video `selector` picks (0 when there is none). */
export function framesShown(page, selector) {
  return page.evaluate((selector) => {
    const v = document.querySelector(selector);
    return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
  }, selector);
}

/**
 * The video `selector` picks on `page` plays: it has a picture, and its time and frames
 * advance over 1.5 s. Returns the last sample ({time, frames, width, paused}); a failure
 * says what the page's connections received.
 */
export async function videoPlays(page, selector = "video[data-identity]") {
  await page.waitForFunction((selector) => {
    const v = document.querySelector(selector);
    return v && v.videoWidth > 0 && v.readyState >= 2;
  }, selector, { timeout: 30_000 });
  const sample = () => page.evaluate((selector) => {
    const v = document.querySelector(selector);
    return { time: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames, width: v.videoWidth, paused: v.paused };
  }, selector);
  const a = await sample();
  await page.waitForTimeout(1500);
  const b = await sample();
  if (!(b.time > a.time && b.frames > a.frames && !b.paused)) {
    const received = await page.evaluate(async () => {
      const out = [];
      for (const pc of window.__pcs ?? []) {
        if (pc.connectionState === "closed") continue;
        (await pc.getStats()).forEach((r) => {
          if (r.type === "inbound-rtp" && r.kind === "video") {
            out.push({ packets: r.packetsReceived, lost: r.packetsLost, decoded: r.framesDecoded, keyframes: r.keyFramesDecoded, pli: r.pliCount, width: r.frameWidth });
          }
        });
      }
      return out;
    });
    assert.fail(`${selector} plays on ${page.url()}: ${JSON.stringify(a)} → ${JSON.stringify(b)}; received ${JSON.stringify(received)}`);
  }
  return b;
}

/** Whether the page scrolls sideways (it should not, on any screen). */
export async function overflowsSideways(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
}

function describe(error) {
  if (error instanceof assert.AssertionError) {
    const lines = [`check failed: ${error.message}`];
    if (error.operator !== "fail" && !error.message.includes("actual")) {
      lines.push(`  expected: ${JSON.stringify(error.expected)}`, `  actual:   ${JSON.stringify(error.actual)}`);
    }
    lines.push(error.stack.split("\n").filter((l) => l.includes(".mjs")).join("\n"));
    return lines.join("\n");
  }
  return String(error?.stack || error);
}

/**
 * Runs a scenario: starts Chromium, calls `body({browser})`, prints what it returns as
 * one JSON line, and exits 0. On a failed check, a timeout or an uncaught error in a page
 * it prints why, the pages' URLs, errors and console, screenshots each open page as
 * `failure-<n>.png`, and exits 1.
 */
export async function scenario(name, body) {
  const deadline = Number(process.env.DUIKOU_DEADLINE_MS) > 0 ? Number(process.env.DUIKOU_DEADLINE_MS) : 150_000;
  let browser;
  let timer;
  let failing = false;
  const failed = async (error) => {
    if (failing) return; // a stop from outside, then the body's own error as the browser closes
    failing = true;
    console.error(`scenario ${name} failed: ${describe(error)}`);
    let n = 0;
    for (const { page, errors, console: log } of watched) {
      n += 1;
      console.error(`page ${n}: ${page.isClosed() ? "(closed) " : ""}${page.url()}`);
      for (const e of errors) console.error(`  uncaught: ${e}`);
      for (const line of log.slice(-30)) console.error(`  console ${line}`);
      if (!page.isClosed()) {
        try {
          const file = await Promise.race([
            screenshot(page, `failure-${n}`),
            new Promise((_, reject) => setTimeout(() => reject(new Error("screenshot timed out")), 3000)),
          ]);
          console.error(`  screenshot: ${file}`);
        } catch (e) {
          console.error(`  no screenshot: ${e.message}`);
        }
      }
    }
    await browser?.close().catch(() => {});
    process.exit(1);
  };
  process.once("SIGTERM", () => failed(new Error(`stopped from outside (the test's timeout) after ${Math.round(process.uptime())} s`)));
  try {
    browser = await launch();
    const result = await Promise.race([
      body({ browser }),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`scenario ${name} took longer than ${deadline} ms`)), deadline);
      }),
    ]);
    clearTimeout(timer);
    const broken = watched.filter((w) => w.errors.length);
    if (broken.length) {
      assert.fail(`uncaught errors in the pages: ${broken.map((w) => `${w.page.url()}: ${w.errors.join("; ")}`).join(" | ")}`);
    }
    await browser.close();
    console.log(JSON.stringify(result ?? {}));
    process.exit(0);
  } catch (error) {
    clearTimeout(timer);
    await failed(error);
  }
}

/**
 * Fills the controls of `form` named by `values`' keys: text into inputs and text areas,
 * an option into selects, `true` ticks a check box.
 */
export async function fillForm(form, values) {
  for (const [name, value] of Object.entries(values)) {
    const control = form.locator(`[name="${name}"]`);
    const tag = await control.evaluate((el) => `${el.tagName}:${el.type}`);
    if (tag.startsWith("SELECT")) await control.selectOption(value);
    else if (tag === "INPUT:checkbox") await control.setChecked(value);
    else await control.fill(value);
  }
}

/**
 * The values of the new-request form (`fillForm` keys) for a consultation about headache
 * with neurology, for a patient named `patientName`, consent confirmed.
 */
export function headacheConsultation(patientName) {
  return {
    "consent.confirmed": true,
    "reason": "基层无神经内科专科医师，需上级医院会诊",
    "purpose": "明确头痛病因并指导下一步治疗",
    "specialty": "神经内科",
    "patient.name": patientName,
    "patient.sex": "M",
    "patient.birth_date": "1958-03-02",
    "case_summary.chief_complaint": "反复头痛三天",
    "case_summary.history": "三天前无明显诱因出现头痛，以双侧颞部为主，伴恶心，无呕吐",
    "case_summary.findings": "血压 168/102 mmHg，神经系统查体未见明显异常",
    "case_summary.question": "是否需要转诊行头颅 CT 检查？",
  };
}
