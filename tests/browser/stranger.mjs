// A stranger (no session) who opens a page is sent to the login page, which remembers
// where they were going and takes them there after logging in; a `next` that leads off
// the site leads home instead.
// Input: {"username", "password"}.
import { assert, input, scenario, newContext, ready, login, text, screenshot } from "./lib.mjs";

await scenario("stranger", async ({ browser }) => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await page.goto("/home");
  await page.waitForURL((url) => url.pathname === "/login");
  await ready(page);
  const url = new URL(page.url());
  assert.equal(url.pathname + url.search, "/login?next=%2Fhome", "a stranger lands on the login page");
  assert.equal(await text(page, "form#login h1"), "登录");
  assert.equal(await page.locator("#bar nav a").count(), 0, "a stranger's bar has no sections");
  await screenshot(page, "login-from-home");

  await login(page, input.username, input.password);
  assert.equal(new URL(page.url()).pathname, "/home", "after logging in the stranger is where they were going");

  // Another page than home, and addresses that would leave the site.
  for (const [next, expected] of [
    ["/requests", "/requests"],
    ["/%5Cevil.example/x", "/home"],
    ["//evil.example", "/home"],
    ["https://evil.example/", "/home"],
    ["/%09/evil.example", "/home"],
  ]) {
    const fresh = await newContext(browser);
    const tab = await fresh.newPage();
    await tab.goto(`/login?next=${encodeURIComponent(decodeURIComponent(next))}`);
    await login(tab, input.username, input.password);
    const at = new URL(tab.url());
    assert.equal(at.origin, new URL(page.url()).origin, `next=${next} stays on the site`);
    if (expected === "/requests") assert.equal(at.pathname, "/requests");
    await fresh.close();
  }
  return { landed: url.pathname + url.search };
});
