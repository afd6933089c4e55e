// Program staff and every main page on a phone: the administrator sets a pairing's
// yearly training target on its page (a bad figure first), then reads the institutions
// tree and pairings, the pairing's report against its targets (with its chart), the audit log
// (with the refusal the Rust side provoked, found by institution, user, patient and date,
// and exported as CSV); then each main page of each role drawn on a
// phone's screen without sideways scrolling. Screenshots of all of them.
// Input: {"admin": {username, password}, "pairing": id, "period", "patient",
//         "stranger": {id, institution},
//         "pages": [{"who": {username, password}, "path", "name", "ready"}]}.
import { readFile } from "node:fs/promises";
import { assert, input, scenario, newContext, login, open, ready, screenshot, overflowsSideways, fillForm } from "./lib.mjs";

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
  // Who looked at the patient's record from the other county: by institution, user,
  // patient and today's date, as a supervisor would ask.
  const today = new Date(Date.now() + 8 * 3600_000).toISOString().slice(0, 10);
  await page.locator("#institution").selectOption({ label: input.stranger.institution });
  await page.locator(`#user option[value="${input.stranger.id}"]`).waitFor({ state: "attached" });
  await page.locator("#user").selectOption(String(input.stranger.id));
  await page.locator("#since").fill(today);
  await page.locator("#until").fill(today);
  await page.locator("#patient").fill(input.patient);
  await page.locator("#patient").press("Enter");
  const one = async () => page.waitForFunction((who) => {
    const rows = [...document.querySelectorAll("#audit tbody tr")];
    return rows.length === 1 && rows[0].dataset.outcome === "denied"
      && rows[0].querySelector("[data-user]").dataset.user === String(who);
  }, input.stranger.id);
  await one();
  const refusal = await page.locator("#audit tbody tr").first().innerText();
  assert.match(refusal, new RegExp(input.patient));
  assert.match(refusal, /开平市中心医院/);
  assert.match(refusal, /会诊申请 第 \d+ 号/);
  assert.match(refusal, /127\.0\.0\.1/);
  // The address keeps the choice: a reload shows the same.
  await page.reload();
  await ready(page);
  await one();
  assert.equal(await page.locator("#patient").inputValue(), input.patient);
  assert.equal(await page.locator("#outcome").inputValue(), "denied");
  await screenshot(page, "audit");
  // The export holds exactly what is shown, and is itself in the log.
  const [download] = await Promise.all([page.waitForEvent("download"), page.locator("#export").click()]);
  const csv = (await readFile(await download.path(), "utf8")).replace(/^\uFEFF/, "").trim().split("\n");
  assert.equal(csv.length, 2, `a header and the one refusal: ${csv}`);
  assert.match(csv[1], new RegExp(`${input.patient}.*denied`));
  await open(page, "/audit?action=export");
  await page.locator('#audit tbody tr[data-action="export"]').waitFor();
  assert.match(await page.locator('#audit tbody tr[data-action="export"]').first().innerText(), /审计日志/);

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
