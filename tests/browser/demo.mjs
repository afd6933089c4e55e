// The demonstration: each role logs in with the account the demo printed and finds its
// demonstration work on its home page, under the demonstration banner.
// Input: {"accounts": [{username, password, ready}]}; `ready` is what the home page of
// that role shows of the demonstration.
import { assert, input, scenario, newContext, login, screenshot } from "./lib.mjs";

await scenario("demo", async ({ browser }) => {
  const seen = [];
  for (const a of input.accounts) {
    const context = await newContext(browser);
    const page = await context.newPage();
    await login(page, a.username, a.password);
    assert.equal(new URL(page.url()).pathname, "/home", `${a.username} lands on the home page`);
    await page.locator("#demo-banner").waitFor();
    await page.locator(a.ready).first().waitFor();
    assert.match(await page.locator(a.ready).first().innerText(), new RegExp(a.shows), `${a.username}'s home shows ${a.shows}`);
    await screenshot(page, `home-${a.username}`);
    seen.push(a.username);
    await context.close();
  }
  return { seen };
});
