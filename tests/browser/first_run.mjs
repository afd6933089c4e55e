// The first run, in the browser only: the administrator replaces the printed one-time
// password, then follows the set-up checklist on the home page until it is empty, and a
// county doctor books with the consultant set up on the way.
// Input: {"admin": {username, password}, "pacs": {ae_title, port}} (a DCMTK storescp).
import { assert, input, scenario, newContext, login, open, screenshot, overflowsSideways, reloadingBy, fillForm, text, headacheConsultation } from "./lib.mjs";

/** Types `text` into lookup field `field` of form `form` and chooses the first entry it offers. */
async function choose(page, form, field, text) {
  const box = page.locator(`#${form}-${field}`);
  await box.fill(text);
  const option = page.locator(`#${form}-${field}-list option`).first();
  await option.waitFor({ state: "attached" });
  await box.fill(await option.getAttribute("value"));
}

/** Picks `name` in the institution picker of a management page. */
async function pickInstitution(page, name) {
  await page.locator("#pick-search").fill(name);
  await page.locator("#pick-results button", { hasText: name }).first().click();
  await page.locator("#picked strong", { hasText: name }).waitFor();
}

/** The steps of the checklist still open, by name. */
async function openSteps(page) {
  await open(page, "/home");
  await page.locator("#setup li").first().waitFor();
  return page.locator('#setup li[data-done="false"]').evaluateAll((items) => items.map((i) => i.dataset.step));
}

const today = () => new Date().toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" });
const inDays = (n) => new Date(Date.now() + n * 86400e3).toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" });

await scenario("first_run", async ({ browser }) => {
  const context = await newContext(browser);
  const page = await context.newPage();

  // 1. The one-time password opens one page only: the one that replaces it.
  await login(page, input.admin.username, input.admin.password);
  assert.equal(new URL(page.url()).pathname, "/password");
  await page.locator("#must-change").waitFor();
  await fillForm(page.locator("#password-form"), { current: input.admin.password, new: "short", repeat: "different" });
  await page.locator('#password-form button[type="submit"]').click();
  // Both errors at once, beside their fields, in Chinese.
  await page.locator('[data-error-for="repeat"]:not(:empty)').waitFor();
  assert.match(await page.locator('[data-error-for="new"]').innerText(), /至少 12 个字符/);
  assert.match(await page.locator('[data-error-for="repeat"]').innerText(), /不一致/);
  await screenshot(page, "password-errors");
  await fillForm(page.locator("#password-form"), { new: "县乡村一体化远程医疗2026", repeat: "县乡村一体化远程医疗2026" });
  await reloadingBy(page, () => page.locator('#password-form button[type="submit"]').click());
  assert.equal(new URL(page.url()).pathname, "/home");

  // 2. The checklist: the seeded pairings have all expired.
  let steps = await openSteps(page);
  assert.ok(steps.includes("pairing_in_force"), `${steps}`);
  await screenshot(page, "checklist-fresh");
  await reloadingBy(page, () => page.locator('#setup li[data-step="pairing_in_force"] a.fix').click());
  assert.equal(new URL(page.url()).pathname, "/manage/pairings");

  // 3. A pairing in force: errors first (no service, the end before the start), then fixed.
  await page.locator("#pairing-form").waitFor();
  await choose(page, "pairing-form", "supporter", "江门市中心医院");
  await choose(page, "pairing-form", "supported", "台山市人民医院");
  await fillForm(page.locator("#pairing-form"), { valid_from: inDays(-1), valid_to: inDays(-3) });
  await page.locator('#pairing-form button[type="submit"]').click();
  await page.locator('#pairing-form [data-error-for="valid_to"]:not(:empty)').waitFor();
  assert.match(await page.locator('#pairing-form [data-error-for="services"]').innerText(), /必填/);
  assert.match(await page.locator("#pairing-form [data-form-problem]").innerText(), /2 处/);
  // What was typed is kept.
  assert.match(await page.locator('#pairing-form-supporter').inputValue(), /江门市中心医院/);
  await fillForm(page.locator("#pairing-form"), { valid_to: inDays(3 * 365) });
  for (const s of ["consult", "imaging_read"]) {
    await page.locator(`#pairing-form-services input[value="${s}"]`).check();
  }
  await page.locator('#pairing-form button[type="submit"]').click();
  await page.locator("#pairing-detail h2").waitFor();
  assert.equal(await page.locator("#pairing-detail [data-standing]").first().getAttribute("data-standing"), "in_force");
  assert.equal(await page.locator('#pairing-history tr[data-action="created"]').count(), 1);
  // A second pairing of the same county for consultations is refused by the one-to-one rule.
  await choose(page, "pairing-form", "supporter", "江门市五邑中医院");
  await choose(page, "pairing-form", "supported", "台山市人民医院");
  await fillForm(page.locator("#pairing-form"), { valid_from: today(), valid_to: inDays(365) });
  await page.locator('#pairing-form #pairing-form-services input[value="consult"]').check();
  await page.locator('#pairing-form button[type="submit"]').click();
  await page.locator('#pairing-form [data-error-for="supported"]:not(:empty)').waitFor();
  await screenshot(page, "pairing-refused");
  // The pairing in force changes only with a reason (004), and keeps every version.
  const change = page.locator("#pairing-change");
  await change.locator('#pairing-change-services input[value="ward_round"]').check();
  await change.locator('button[type="submit"]').click();
  await change.locator('[data-error-for="reason"]:not(:empty)').waitFor();
  assert.ok(await change.locator('#pairing-change-services input[value="ward_round"]').isChecked(), "what was ticked is kept");
  await fillForm(change, { reason: "受援医院新开设远程查房" });
  await change.locator('button[type="submit"]').click();
  await page.locator('#pairing-history tr[data-action="changed"]').waitFor();
  assert.equal(await page.locator("#pairing-history tbody tr").count(), 2);
  assert.match(await page.locator("#pairing-detail .facts").innerText(), /远程查房/);
  // Another pairing, ended early with a reason: it stands ended.
  await choose(page, "pairing-form", "supporter", "江门市中心医院");
  await choose(page, "pairing-form", "supported", "恩平市人民医院");
  await page.locator('#pairing-form button[type="submit"]').click();
  await page.locator("#pairing-detail h2", { hasText: "恩平市人民医院" }).waitFor();
  const end = page.locator("#pairing-end");
  await end.locator('button[type="submit"]').click();
  await end.locator('[data-error-for="reason"]:not(:empty)').waitFor();
  await fillForm(end, { reason: "恩平市改由省级医院帮扶" });
  await end.locator('button[type="submit"]').click();
  await page.locator('#pairing-detail h2 [data-standing="ended"]').waitFor();
  assert.equal(await page.locator('#pairing-history tr[data-action="ended"]').count(), 1);
  await screenshot(page, "pairing-ended");

  // 4. Accounts: a county doctor's, with a one-time password shown once.
  await open(page, "/manage/accounts");
  await pickInstitution(page, "台山市人民医院");
  await page.locator("#account-form").waitFor();
  await fillForm(page.locator("#account-form"), { display_name: "李伟", username: "ts liwei" });
  await page.locator('#account-form button[type="submit"]').click();
  await page.locator('[data-error-for="roles"]:not(:empty)').waitFor();
  assert.ok(await page.locator('[data-error-for="username"]').innerText());
  await fillForm(page.locator("#account-form"), { username: "ts.liwei" });
  await page.locator('#account-form #account-form-roles input[value="clinician"]').check();
  await page.locator('#account-form button[type="submit"]').click();
  await page.locator("#one-time-password").waitFor();
  const doctorPassword = (await page.locator("#one-time-password").innerText()).trim();
  const row = page.locator('#accounts tr[data-username="ts.liwei"]');
  await row.waitFor();
  assert.match(await row.innerText(), /待修改一次性密码/);
  await screenshot(page, "account-created");
  // Reset and disable ask in the page first.
  await row.locator("button.reset").click();
  await row.locator("button.confirm").click();
  await page.waitForFunction((old) => {
    const shown = document.querySelector("#one-time-password")?.textContent.trim();
    return shown && shown !== old;
  }, doctorPassword);
  const resetPassword = (await page.locator("#one-time-password").innerText()).trim();
  assert.notEqual(resetPassword, doctorPassword);
  steps = await openSteps(page);
  assert.ok(!steps.includes("pairing_in_force") && !steps.includes("requester_account"), `${steps}`);

  // 5. A consultant with credentials, from the clinicians page, and their account from
  //    the link beside them.
  await reloadingBy(page, () => page.locator('#setup li[data-step="qualified_consultant"] a.fix').click());
  await pickInstitution(page, "江门市中心医院");
  await page.locator("#clinician-add").click();
  const clinicianForm = page.locator("form#clinician-form");
  await fillForm(clinicianForm, { name: "林志远", sex: "M", title: "主任医师", specialty: "神经内科", licence_number: "110440700000123", practice_since: "2004-07-01" });
  await clinicianForm.locator('button[type="submit"]').click();
  const lin = page.locator("#clinician-table tr[data-clinician]", { hasText: "林志远" });
  await lin.waitFor();
  assert.equal(await lin.locator("[data-qualifies]").getAttribute("data-qualifies"), "true");
  await reloadingBy(page, () => lin.locator("a.button").click());
  assert.equal(new URL(page.url()).pathname, "/manage/accounts");
  const accountForm = page.locator("#account-form");
  await accountForm.waitFor();
  assert.equal(await accountForm.locator('[name="display_name"]').inputValue(), "林志远", "the account is offered for the clinician");
  await fillForm(accountForm, { username: "jm.lin" });
  await accountForm.locator('button[type="submit"]').click();
  await page.locator('#accounts tr[data-username="jm.lin"]').waitFor();
  const consultantPassword = (await page.locator("#one-time-password").innerText()).trim();
  // A radiologist of the same hospital.
  await fillForm(accountForm, { display_name: "王磊", username: "jm.wang" });
  await accountForm.locator('#account-form-roles input[value="radiologist"]').check();
  await accountForm.locator('button[type="submit"]').click();
  await page.locator('#accounts tr[data-username="jm.wang"]').waitFor();

  // 6. The consultant's weekly hours, every day from 08:00 to 17:00.
  await open(page, "/manage/availability");
  await pickInstitution(page, "江门市中心医院");
  const consultantOption = page.locator("#consultant option", { hasText: "林志远" });
  await consultantOption.waitFor({ state: "attached" });
  await page.locator("#consultant").selectOption(await consultantOption.getAttribute("value"));
  const ruleForm = page.locator("#rule-form");
  await ruleForm.waitFor();
  for (let weekday = 1; weekday <= 7; weekday += 1) {
    await fillForm(ruleForm, { weekday: String(weekday), start_time: "08:00", end_time: "17:00" });
    await ruleForm.locator('button[type="submit"]').click();
    await page.locator(`#rule-count[data-count="${weekday}"]`).waitFor();
  }
  // Today's column shows its hours and the slots still free.
  await page.locator("#week .day.today .block.rule").waitFor();
  await screenshot(page, "availability");

  // 7. The county's CT, and the tertiary hospital's destination tested with a C-ECHO.
  await open(page, "/manage/imaging");
  await pickInstitution(page, "台山市人民医院");
  const nodeForm = page.locator("form#node-form");
  await fillForm(nodeForm, { ae_title: "TAISHAN_CT", host: "127.0.0.1" });
  await nodeForm.locator('button[type="submit"]').click();
  await page.locator('#dicom-nodes tr[data-ae="TAISHAN_CT"]').waitFor();
  await pickInstitution(page, "江门市中心医院");
  const destination = page.locator("form#destination-form");
  await fillForm(destination, { dest_ae_title: input.pacs.ae_title, dest_host: "127.0.0.1", dest_port: String(input.pacs.port) });
  await destination.locator('button[type="submit"]').click();
  await page.locator("#destination-status.done").waitFor();
  await page.locator("#echo").click();
  await page.locator('#echo-result[data-outcome="success"]').waitFor();
  await screenshot(page, "echo");

  // 8. The checklist is empty.
  steps = await openSteps(page);
  assert.deepEqual(steps, [], "every step is done");
  assert.match(await text(page, "#setup-summary"), /全部完成/);
  await screenshot(page, "checklist-done");

  // 9. The county doctor replaces the reset password and books with the consultant.
  const doctorContext = await newContext(browser);
  const doctor = await doctorContext.newPage();
  await login(doctor, "ts.liwei", resetPassword);
  assert.equal(new URL(doctor.url()).pathname, "/password");
  await fillForm(doctor.locator("#password-form"), { current: resetPassword, new: "李伟自己设定的新密码2026", repeat: "李伟自己设定的新密码2026" });
  await reloadingBy(doctor, () => doctor.locator('#password-form button[type="submit"]').click());
  await open(doctor, "/requests/new");
  await fillForm(doctor.locator("#request-form"), headacheConsultation("王某某"));
  await doctor.locator("#submit-request").click();
  await doctor.waitForURL((url) => /^\/requests\/\d+$/.test(url.pathname));
  await doctor.locator('body[data-state="submitted"]').waitFor({ state: "attached" });
  const request = Number(new URL(doctor.url()).pathname.split("/").pop());

  const consultantContext = await newContext(browser);
  const consultant = await consultantContext.newPage();
  consultant.on("dialog", (d) => d.accept());
  await login(consultant, "jm.lin", consultantPassword);
  await fillForm(consultant.locator("#password-form"), { current: consultantPassword, new: "林志远自己设定的新密码2026", repeat: "林志远自己设定的新密码2026" });
  await reloadingBy(consultant, () => consultant.locator('#password-form button[type="submit"]').click());
  await open(consultant, `/requests/${request}`);
  await consultant.locator('body[data-state="submitted"]').waitFor({ state: "attached" });
  assert.ok(await consultant.locator("#slot-grid button[data-start]").first().getAttribute("data-start"), "the consultant's hours give a slot");
  await consultant.locator("#accept").click();
  await consultant.locator('body[data-state="scheduled"]').waitFor({ state: "attached" });
  await screenshot(consultant, "booked");
  await doctorContext.close();
  await consultantContext.close();

  // On a phone, the management pages do not scroll sideways and tables keep headings.
  const phone = await newContext(browser, { phone: true });
  const small = await phone.newPage();
  await login(small, input.admin.username, "县乡村一体化远程医疗2026");
  for (const path of ["/manage/pairings", "/manage/accounts", "/manage/availability", "/home"]) {
    await open(small, path);
    await small.waitForLoadState("networkidle");
    assert.ok(!(await overflowsSideways(small)), `${path} does not scroll sideways on a phone`);
    await screenshot(small, `phone${path.replaceAll("/", "-")}`);
  }
  await open(small, "/manage/pairings");
  assert.equal(await small.locator("#pairing-list td").first().getAttribute("data-label"), "帮扶方", "cells carry their heading");
  await phone.close();
  return { request };
});
