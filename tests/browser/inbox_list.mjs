// The supporting hospital's inbox, a page at a time: with 55 requests awaiting a decision
// and 53 under way, /inbox shows 50 of each. The waiting list (priority order) pages with
// `?waiting=N`, the list under way (newest sent first) with `?open=N`, each pager keeping
// the other list's page. An address kept from when a list was longer (a page past its
// end) says so, counts nothing, and links back to the list's first page.
// The one of those under way that is booked comes up on the coordinator's home page.
// Input: {"coordinator": {username, password}, "waiting": [ids in priority order],
//         "open": [ids, newest sent first], "booked": the id of the one booked}.
import { assert, input, scenario, newContext, login, open, text, screenshot, reloadingBy } from "./lib.mjs";

/** The requests the list `name` (`waiting` or `open`) shows, in its order. */
async function listed(page, name) {
  return page.locator(`#${name} table.requests tbody tr`)
    .evaluateAll((rows) => rows.map((r) => Number(r.dataset.request)));
}

/** The pages of each list the address asks for (`null` for the first). */
function pagesOf(page) {
  const q = new URL(page.url()).searchParams;
  return { waiting: q.get("waiting"), open: q.get("open") };
}

await scenario("inbox_list", async ({ browser }) => {
  const { waiting, open: underWay } = input;
  assert.equal(waiting.length, 55, "the test sent 55 requests to decide on");
  assert.equal(underWay.length, 53, "the test had 53 accepted");
  const context = await newContext(browser);
  const page = await context.newPage();
  await login(page, input.coordinator.username, input.coordinator.password);

  await open(page, "/inbox");
  assert.deepEqual(await listed(page, "waiting"), waiting.slice(0, 50), "the first 50 to decide on, urgent first");
  assert.deepEqual(await listed(page, "open"), underWay.slice(0, 50), "the 50 sent last, of those under way");
  assert.match(await text(page, "#waiting h2"), /超过 50 件/, "more than 50 wait; how many is not known yet");
  for (const first of ["#waiting-previous", "#open-newer"]) {
    assert.equal(await page.locator(first).count(), 0, `${first}: nothing before the first page`);
  }
  await screenshot(page, "inbox-1-1");

  // The waiting list's next page; the list under way stays on its first.
  await reloadingBy(page, () => page.locator("#waiting-next").click());
  assert.deepEqual(pagesOf(page), { waiting: "2", open: null });
  assert.deepEqual(await listed(page, "waiting"), waiting.slice(50), "the last 5 to decide on");
  assert.match(await text(page, "#waiting h2"), /（55）/, "on the last page, the count is known");
  assert.equal(await page.locator("#waiting-next").count(), 0, "nothing after the last page");
  assert.deepEqual(await listed(page, "open"), underWay.slice(0, 50), "the other list kept its page");

  // The older ones under way; the waiting list stays on its second page.
  await reloadingBy(page, () => page.locator("#open-older").click());
  assert.deepEqual(pagesOf(page), { waiting: "2", open: "2" });
  assert.deepEqual(await listed(page, "open"), underWay.slice(50), "the 3 sent first, of those under way");
  assert.equal(await page.locator("#open-older").count(), 0, "nothing older than the last page");
  assert.deepEqual(await listed(page, "waiting"), waiting.slice(50), "the other list kept its page");
  await screenshot(page, "inbox-2-2");

  // Back to the waiting list's first page; the list under way stays on its second.
  await reloadingBy(page, () => page.locator("#waiting-previous").click());
  assert.deepEqual(pagesOf(page), { waiting: null, open: "2" });
  assert.deepEqual(await listed(page, "waiting"), waiting.slice(0, 50));
  assert.deepEqual(await listed(page, "open"), underWay.slice(50));

  await reloadingBy(page, () => page.locator("#open-newer").click());
  assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, "/inbox", "both on their first page");
  assert.deepEqual(await listed(page, "open"), underWay.slice(0, 50));

  // Pages past the end, as a bookmark kept from a busier day would ask for.
  await open(page, "/inbox?waiting=3&open=4");
  assert.deepEqual(await listed(page, "waiting"), [], "nothing on a page past the end");
  const heading = await text(page, "#waiting h2");
  assert.doesNotMatch(heading, /\d/, `no count where none is known: ${heading}`);
  assert.match(await text(page, "#waiting"), /本页没有申请/);
  assert.deepEqual(await listed(page, "open"), []);
  await screenshot(page, "inbox-past-the-end");
  await reloadingBy(page, () => page.locator("#waiting-first").click());
  assert.deepEqual(pagesOf(page), { waiting: null, open: "4" }, "back to the first page, the other list kept");
  assert.deepEqual(await listed(page, "waiting"), waiting.slice(0, 50));
  await reloadingBy(page, () => page.locator("#open-first").click());
  assert.deepEqual(pagesOf(page), { waiting: null, open: null });
  assert.deepEqual(await listed(page, "open"), underWay.slice(0, 50));

  await open(page, "/home");
  const booked = page.locator("#upcoming li[data-room]");
  assert.deepEqual(await booked.evaluateAll((items) => items.map((li) => li.dataset.room)),
    [`consultation-${input.booked}`], "the booked consultation, once, on the home page");
  return { waiting: waiting.length, open: underWay.length };
});
