// Program staff and every main page on a phone: the administrator sets a pairing's
// yearly training target on its page (a bad figure first), then reads the institutions
// tree and pairings, the pairing's report against its targets (with its chart), the audit log
// (with the refusal the Rust side provoked); then each main page of each role drawn on a
// phone's screen without sideways scrolling. Screenshots of all of them.
// Input: {"admin": {username, password}, "pairing": id, "period",
//         "pages": [{"who": {username, password}, "path", "name", "ready"}]}.
import { assert, input, scenario, newContext, login, open, screenshot, overflowsSideways, fillForm } from "./lib.mjs";

await scenario("staff", async ({ browser }) => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await login(page, input.admin.username, input.admin.password);

  // The responsibility letter's target for the year: one trainee of two hours.
  await open(page, "/manage/pairings");
  await page.locator(`#pairing-list tr[data-pairing="${input.pairing}"] button.open`).click();
  const targets = page.locator("#pairing-targets-form");
  await targets.waitFor();
  assert.equal(await page.locator(`#pairing-targets tr[data-year="${input.period}"]`).getAttribute("data-source"), "program");
  await fillForm(targets, { year: String(input.period), trainees: "0", hours_each: "2" });
  await targets.locator('button[type="submit"]').click();
  await targets.locator('[data-error-for="trainees"]:not(:empty)').waitFor();
  await fillForm(targets, { trainees: "1" });
  await targets.locator('button[type="submit"]').click();
  await page.locator(`#pairing-targets tr[data-year="${input.period}"][data-source="pairing"]`).waitFor();
  assert.match(await page.locator(`#pairing-targets tr[data-year="${input.period}"]`).innerText(), /本关系责任书/);
  // Choosing another year shows what it has now: the program's defaults.
  await targets.locator('[name="year"]').selectOption(String(Number(input.period) + 1));
  assert.equal(await targets.locator('[name="hours_each"]').inputValue(), "12");
  await screenshot(page, "pairing-targets");

  await open(page, "/program");
  await page.locator("#regions details").first().waitFor();
  assert.ok((await page.locator("#regions [data-institution]").count()) > 100, "the seeded institutions are in the tree");
  const row = page.locator(`#pairings tr[data-pairing="${input.pairing}"]`);
  await row.waitFor();
  // Each pairing shows where it stands today: the new one is in force, the seeded ones
  // (2016–2020) have expired.
  assert.equal(await row.locator("[data-standing]").getAttribute("data-standing"), "in_force");
  assert.equal(await row.locator("[data-standing]").innerText(), "有效");
  const expired = page.locator('#pairings [data-standing="expired"]');
  assert.ok((await expired.count()) > 0, "the seeded pairings have expired");
  assert.equal(await expired.first().innerText(), "已到期");
  await row.locator("button.report").click();
  await page.locator("#period").fill(input.period);
  await page.locator("#pairing-report button").click();
  await page.locator("#targets tbody tr").first().waitFor();
  assert.ok((await page.locator("#pairing-report svg.chart rect").count()) >= 1, "the report has its chart");
  assert.ok((await page.locator("#targets tbody tr").count()) >= 2, "the report lists the targets");
  assert.match(await page.locator("#targets").innerText(), /每年培训受援方骨干医师至少 1 名，每人满 2 学时/, "in the page's language, by the pairing's target");
  assert.match(await page.locator("#training-target").innerText(), /本关系责任书/);
  assert.doesNotMatch(await page.locator("#targets").innerText(), /[A-Za-z]{3,}/, "no English inside the Chinese report");
  await screenshot(page, "program");

  await open(page, "/audit");
  await page.locator("#audit tbody tr").first().waitFor();
  assert.ok((await page.locator('#audit tbody tr[data-outcome="allowed"]').count()) > 0);
  await page.locator("#outcome").selectOption("denied");
  // The filter keeps refusals only (the unfiltered list has both).
  await page.waitForFunction(() => document.querySelector('#audit tbody tr[data-outcome="denied"]')
    && !document.querySelector('#audit tbody tr[data-outcome="allowed"]'));
  await screenshot(page, "audit");

  // Every main page on a phone.
  const drawn = [];
  for (const p of input.pages) {
    const phone = await newContext(browser, { phone: true });
    const tab = await phone.newPage();
    await login(tab, p.who.username, p.who.password);
    await open(tab, p.path);
    await tab.locator(p.ready).first().waitFor();
    assert.ok(!(await overflowsSideways(tab)), `${p.path} does not scroll sideways on a phone`);
    await screenshot(tab, `phone-${p.name}`);
    drawn.push(p.path);
    await phone.close();
  }
  return { drawn };
});
