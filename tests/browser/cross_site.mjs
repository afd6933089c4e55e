// A page of another origin on the same machine (so the same site, and the Lax session
// cookie goes along) tries to act for a logged-in user: a form posted to the logout
// endpoint, and a bodyless fetch with the cookie. The gateway refuses both and the session
// lives on; the same logout from the gateway's own page works.
// Input: {"username", "password"}.
import http from "node:http";
import { assert, input, scenario, newContext, login, baseUrl, screenshot } from "./lib.mjs";

const gateway = new URL(baseUrl);
const evil = http.createServer((_, res) => {
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end(`<!doctype html><title>elsewhere</title>
<form id="f" method="post" action="${baseUrl}/api/v1/auth/logout"></form>
<script>
  window.fetched = fetch("${baseUrl}/api/v1/auth/logout", { method: "POST", mode: "no-cors", credentials: "include" })
    .then(() => "sent", (e) => "failed: " + e);
</script>`);
});
await new Promise((resolve) => evil.listen(0, gateway.hostname, resolve));
const elsewhere = `http://${gateway.hostname}:${evil.address().port}/`;

async function signedIn(page) {
  return page.evaluate(async () => (await fetch("/api/v1/me")).status);
}

await scenario("cross_site", async ({ browser }) => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await login(page, input.username, input.password);
  assert.equal(await signedIn(page), 200);

  // The other origin's page: its fetch goes out with the cookie and is refused.
  const other = await context.newPage();
  await other.goto(elsewhere);
  assert.equal(await other.evaluate(() => window.fetched), "sent");
  assert.equal(await signedIn(page), 200, "the session survives the other site's fetch");

  // Its form: the browser navigates to the refusal, a problem naming the rule.
  const [answer] = await Promise.all([other.waitForNavigation(), other.evaluate(() => document.getElementById("f").submit())]);
  const refused = { status: answer.status(), body: await answer.text() };
  await screenshot(other, "refused");
  assert.equal(refused.status, 403, refused.body);
  assert.match(refused.body, /cross-site-request/);
  assert.equal(await signedIn(page), 200, "the session survives the other site's form");

  // The gateway's own page logs out.
  const own = await page.evaluate(async () => (await fetch("/api/v1/auth/logout", { method: "POST" })).status);
  assert.equal(own, 204);
  assert.equal(await signedIn(page), 401);
  evil.close();
  return { refused: refused.status, own };
});
