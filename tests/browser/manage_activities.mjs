// A hospital's education office (医务科) runs its activities from /manage/activities: it
// schedules a teaching session (first with two fields wrong, both marked at once, then
// put right with everything else kept), moves it, cancels it with a reason asked for in
// the page; schedules a weekly ward-round series and cancels one round; and, on a phone,
// records a visit to a village station. The office works on its own hospital without a
// picker; an administrator finds the hospital with the management pages' picker and sees
// the same, and again on reopening the address, which keeps the choice. No screen scrolls
// sideways.
// Input: {"office": {username, password}, "admin": {…}, "presenter": clinician id,
//         "team": team id, "tertiary": the office's hospital, "county": the ward's
//         hospital, "village": a village station}.
// Returns {session, moved_to} (the session's id and the start it was moved to, ISO).
import { assert, input, scenario, newContext, login, open, screenshot, overflowsSideways } from "./lib.mjs";

/** `YYYY-MM-DDTHH:MM` of the day `days` from today in China, at `time`. */
function chinaDay(days, time) {
  const day = new Date(Date.now() + 8 * 3600e3 + days * 86400e3).toISOString().slice(0, 10);
  return `${day}T${time}`;
}

/** The text a part's note says once something is done. */
async function noted(page, part, pattern) {
  const note = page.locator(`#${part}-note`);
  await page.waitForFunction((id) => document.getElementById(id)?.textContent.trim(), `${part}-note`);
  assert.match(await note.innerText(), pattern);
}

/** Waits until the error beside `field` of `form` says something, and returns it. */
async function errorOf(form, field) {
  const error = form.locator(`[data-error-for="${field}"]`);
  await error.filter({ hasText: /\S/ }).waitFor();
  return (await error.innerText()).trim();
}

async function fitsSideways(page, where) {
  assert.ok(!(await overflowsSideways(page)), `${where} does not scroll sideways`);
}

/** What the office did (`session`, cancelled), as an administrator sees it once the
 * hospital is shown. */
async function sameAsTheOffice(page, session) {
  await page.locator(`#activities[data-institution="${input.tertiary}"]`).waitFor();
  await page.locator(`#teaching-upcoming tr[data-session="${session}"][data-state="cancelled"]`).waitFor();
  assert.equal(await page.locator("#rounds-list tbody tr").count(), 3);
  assert.equal(await page.locator("#visits-list tbody tr").count(), 1);
}

await scenario("manage_activities", async ({ browser }) => {
  const office = await newContext(browser);
  const page = await office.newPage();
  await login(page, input.office.username, input.office.password);
  await open(page, "/manage/activities");
  await page.locator("#teaching #teaching-new").waitFor();
  assert.match(await page.locator("h1").innerText(), /教学、查房与下乡/);
  // Its own hospital, without a picker.
  await page.locator(`#activities[data-institution="${input.tertiary}"]`).waitFor();
  assert.match(await page.locator("#picked").innerText(), /江门市中心医院/);
  assert.equal(await page.locator("#pick-search").count(), 0, "a coordinator does not pick the institution");

  // A session, first with an empty topic and no places: both are marked at once.
  await page.locator("#teaching-new").click();
  const create = page.locator("#teaching-form");
  const start = chinaDay(3, "09:00");
  await create.locator('[name="presenter_clinician_id"]').selectOption(String(input.presenter));
  await create.locator('[name="starts_at"]').fill(start);
  await create.locator('[name="duration_minutes"]').fill("90");
  await create.locator('[name="capacity"]').fill("0");
  await create.locator('button[type="submit"]').click();
  assert.equal(await errorOf(create, "topic"), "此项必填。");
  assert.equal(await errorOf(create, "capacity"), "不能小于 1。");
  assert.match(await create.locator("[data-form-problem]").innerText(), /有 2 处需要修改/);
  await fitsSideways(page, "the teaching form with its errors");
  await screenshot(page, "teaching-errors");
  // What was typed is still there; the two are put right.
  assert.equal(await create.locator('[name="starts_at"]').inputValue(), start);
  assert.equal(await create.locator('[name="duration_minutes"]').inputValue(), "90");
  assert.equal(await create.locator('[name="presenter_clinician_id"]').inputValue(), String(input.presenter));
  await create.locator('[name="topic"]').fill("基层高血压规范化管理");
  await create.locator('[name="capacity"]').fill("30");
  await create.locator('button[type="submit"]').click();
  await noted(page, "teaching", /已安排课程“基层高血压规范化管理”/);
  assert.equal(await create.count(), 0, "the form closes");
  const row = page.locator("#teaching-upcoming tbody tr").filter({ hasText: "基层高血压规范化管理" });
  await row.waitFor();
  const session = Number(await row.getAttribute("data-session"));
  assert.equal(await row.getAttribute("data-state"), "scheduled");
  assert.match(await row.innerText(), /90 分钟/);
  assert.match(await row.innerText(), /0\/30/);

  // Moved to the afternoon of the next day; the row shows the new time.
  await row.locator("button.change").click();
  const change = page.locator("#teaching-change-form");
  assert.equal(await change.locator('[name="topic"]').inputValue(), "基层高血压规范化管理", "the form holds the session");
  const moved = chinaDay(4, "14:30");
  await change.locator('[name="starts_at"]').fill(moved);
  await change.locator('button[type="submit"]').click();
  await noted(page, "teaching", /已修改课程“基层高血压规范化管理”/);
  const [day, time] = moved.split("T");
  await page.locator(`#teaching-upcoming tr[data-session="${session}"]`)
    .filter({ hasText: `${day.replaceAll("-", "/")} ${time}` }).waitFor();

  // Cancelled, with the reason asked for in the page: none is refused beside its field.
  await page.locator(`#teaching-upcoming tr[data-session="${session}"] button.cancel`).click();
  const cancel = page.locator("#teaching-cancel-form");
  assert.match(await cancel.innerText(), /取消后不能再报名/);
  await cancel.locator('button[type="submit"]').click();
  assert.equal(await errorOf(cancel, "reason"), "此项必填。");
  await cancel.locator('[name="reason"]').fill("主讲专家临时承担抢救任务，另行安排");
  await cancel.locator('button[type="submit"]').click();
  await noted(page, "teaching", /已取消课程“基层高血压规范化管理”/);
  const cancelled = page.locator(`#teaching-upcoming tr[data-session="${session}"]`);
  await cancelled.and(page.locator('[data-state="cancelled"]')).waitFor();
  assert.match(await cancelled.innerText(), /已取消[\s\S]*原因：主讲专家临时承担抢救任务，另行安排/);
  assert.equal(await cancelled.locator("button").count(), 0, "a cancelled session is not changed again");

  // A weekly series of three rounds of the county's internal medicine ward.
  await page.locator("#rounds-new").click();
  const rounds = page.locator("#rounds-form");
  await rounds.locator('[name="team_id"]').selectOption(String(input.team));
  await rounds.locator('[name="supported_institution_id"]').selectOption(String(input.county));
  await rounds.locator('[name="ward"]').fill("内科病区");
  await rounds.locator('[name="starts_at"]').fill(chinaDay(2, "10:00"));
  await rounds.locator('[name="weeks"]').fill("3");
  await rounds.locator('button[type="submit"]').click();
  await noted(page, "rounds", /已安排内科病区查房 3 次/);
  const list = page.locator("#rounds-list tbody tr");
  await list.nth(2).waitFor();
  assert.equal(await list.count(), 3);
  assert.match(await list.nth(1).innerText(), /第 2\/3 次/);

  // The second round is cancelled alone.
  await list.nth(1).locator("button.cancel").click();
  const cancelRound = page.locator("#round-cancel-form");
  assert.match(await cancelRound.locator("label.check").innerText(), /之后的 1 次查房/);
  await cancelRound.locator('[name="reason"]').fill("病区停电检修");
  await cancelRound.locator('button[type="submit"]').click();
  await noted(page, "rounds", /已取消内科病区查房 1 次/);
  await page.locator('#rounds-list tbody tr[data-state="cancelled"]').waitFor();
  const states = await list.evaluateAll((rows) => rows.map((r) => r.dataset.state));
  assert.deepEqual(states, ["scheduled", "cancelled", "scheduled"]);
  await fitsSideways(page, "the section on an office screen");
  await screenshot(page, "office");

  // On a phone: every form fits, and a visit to the village is recorded.
  const phone = await newContext(browser, { phone: true });
  const tab = await phone.newPage();
  await login(tab, input.office.username, input.office.password);
  await open(tab, "/manage/activities");
  await tab.locator("#teaching-upcoming").waitFor();
  await fitsSideways(tab, "the section on a phone");
  for (const [button, form] of [["#teaching-new", "#teaching-form"], ["#rounds-new", "#rounds-form"]]) {
    await tab.locator(button).click();
    await tab.locator(form).waitFor();
    await fitsSideways(tab, `${form} on a phone`);
  }
  await tab.locator("#visits-new").click();
  const visit = tab.locator("#visit-form");
  await fitsSideways(tab, "the visit form on a phone");
  await visit.locator('[name="village_id"]').selectOption(String(input.village));
  await visit.locator('[name="visitor"]').selectOption(`team:${input.team}`);
  // Without a service first: the form says so beside the services.
  await visit.locator('button[type="submit"]').click();
  assert.equal(await errorOf(visit, "services"), "此项必填。");
  for (const service of ["consult", "teaching"]) {
    await visit.locator(`[data-name="services"] input[value="${service}"]`).check();
  }
  await visit.locator('[name="notes"]').fill("巡诊半天，带教村医");
  await visit.locator('button[type="submit"]').click();
  await noted(tab, "visits", /已登记 .* 到北陡镇石蕉村卫生站的下乡/);
  const visitRow = tab.locator("#visits-list tbody tr").first();
  await visitRow.waitFor();
  assert.match(await visitRow.innerText(), /内科查房组[\s\S]*远程会诊、远程教学[\s\S]*巡诊半天，带教村医/);
  await fitsSideways(tab, "the visits on a phone");
  await screenshot(tab, "phone");
  await phone.close();
  await office.close();

  // An administrator finds the hospital with the picker and sees the same.
  const admin = await newContext(browser);
  const desk = await admin.newPage();
  await login(desk, input.admin.username, input.admin.password);
  await open(desk, "/manage/activities");
  await desk.locator("#pick-search").waitFor();
  assert.match(await desk.locator("#picked").innerText(), /请先查找并选择一家机构/);
  assert.equal(await desk.locator("#teaching-new").count(), 0, "no institution's activities before one is picked");
  await desk.locator("#pick-search").fill("江门市中心");
  await desk.locator(`#pick-results [data-pick="${input.tertiary}"]`).click();
  await desk.locator("#picked strong", { hasText: "江门市中心医院" }).waitFor();
  await sameAsTheOffice(desk, session);
  assert.equal(new URL(desk.url()).searchParams.get("institution"), String(input.tertiary),
    "the address keeps the institution");
  await fitsSideways(desk, "the administrator's section");
  await screenshot(desk, "administrator");

  // Reopened with the institution in the address, it shows the hospital without picking.
  await open(desk, `/manage/activities?institution=${input.tertiary}`);
  await desk.locator("#picked strong", { hasText: "江门市中心医院" }).waitFor();
  assert.equal(await desk.locator("#pick-search").inputValue(), "", "nothing was searched for");
  await sameAsTheOffice(desk, session);
  await screenshot(desk, "administrator-reopened");
  await admin.close();
  return { session, moved_to: new Date(`${moved}:00+08:00`).toISOString() };
});
