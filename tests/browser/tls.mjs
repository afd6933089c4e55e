// Two people meet in a consultation room on a gateway that serves TLS: the pages come
// over https, the session cookie is Secure and HttpOnly, the signaling socket is wss,
// and each sees the other's video playing.
// Input: {"doctor": {username, password}, "consultant": {…}, "id"}.
import { assert, baseUrl, input, scenario, newContext, login, open, videoPlays } from "./lib.mjs";

/** Keeps the URLs of the page's WebSockets. */
function watchSockets() {
  const Native = window.WebSocket;
  window.__socketUrls = [];
  window.WebSocket = class extends Native {
    constructor(url, ...rest) {
      super(url, ...rest);
      window.__socketUrls.push(String(url));
    }
  };
}

await scenario("tls", async ({ browser }) => {
  assert.ok(baseUrl.startsWith("https://"), `the gateway serves TLS (${baseUrl})`);
  const pages = [];
  for (const who of ["doctor", "consultant"]) {
    const context = await newContext(browser);
    await context.addInitScript(watchSockets);
    const page = await context.newPage();
    await login(page, input[who].username, input[who].password);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.httpOnly);
    assert.ok(session && session.secure, `the session cookie is Secure and HttpOnly: ${JSON.stringify(cookies.map((c) => [c.name, c.secure, c.httpOnly]))}`);
    await open(page, `/rooms/consultation-${input.id}`);
    await page.locator('body[data-room-state="connected"]').waitFor({ state: "attached", timeout: 30_000 });
    pages.push(page);
  }
  for (const page of pages) {
    const urls = await page.evaluate(() => window.__socketUrls);
    assert.ok(urls.length > 0 && urls.every((u) => u.startsWith("wss://")), `the signaling socket is wss: ${urls}`);
    await videoPlays(page);
  }
  return {};
});
