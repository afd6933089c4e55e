// A county doctor's requests, a page at a time: with 60 drafts, /requests shows the 50
// newest, newest first (whatever their urgency); `older` leads to the other 10 and
// `newer` back. The first page has no `newer`, the last no `older`.
// Input: {"doctor": {username, password}, "ids": [the drafts' ids, newest first]}.
import { assert, input, scenario, newContext, login, open, screenshot, reloadingBy } from "./lib.mjs";

/** The requests the page lists, in its order. */
async function listed(page) {
  return page.locator("table.requests tbody tr").evaluateAll((rows) => rows.map((r) => Number(r.dataset.request)));
}

await scenario("request_list", async ({ browser }) => {
  const { ids } = input;
  assert.equal(ids.length, 60, "the test made 60 drafts");
  const context = await newContext(browser);
  const page = await context.newPage();
  await login(page, input.doctor.username, input.doctor.password);

  await open(page, "/requests");
  const first = await listed(page);
  assert.equal(first[0], ids[0], "the newest draft comes first");
  assert.deepEqual(first, ids.slice(0, 50), "the 50 newest, newest first");
  assert.equal(await page.locator("#newer").count(), 0, "nothing is newer than the first page");
  await screenshot(page, "requests-page-1");

  await reloadingBy(page, () => page.locator("#older").click());
  assert.equal(new URL(page.url()).searchParams.get("page"), "2");
  assert.deepEqual(await listed(page), ids.slice(50), "the 10 oldest");
  assert.equal(await page.locator("#older").count(), 0, "nothing is older than the last page");
  await screenshot(page, "requests-page-2");

  await reloadingBy(page, () => page.locator("#newer").click());
  assert.equal(new URL(page.url()).pathname, "/requests");
  assert.equal(new URL(page.url()).searchParams.get("page"), null, "back on the first page");
  assert.deepEqual(await listed(page), ids.slice(0, 50));
  return { pages: 2 };
});
