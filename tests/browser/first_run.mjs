// The first run, in the browser only: the administrator replaces the printed one-time
// password, then follows the set-up checklist on the home page until it is empty, and a
// county doctor books with the consultant set up on the way.
// Input: {"admin": {username, password}, "storescp": {ae_title, port}}.
import { assert, input, scenario, newContext, login, open, screenshot, overflowsSideways, reloadingBy } from "./lib.mjs";

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
  await page.locator("#institution-search").fill(name);
  const option = page.locator("#institution-choice option", { hasText: name }).first();
  await option.waitFor({ state: "attached" });
  await page.locator("#institution-choice").selectOption(await option.getAttribute("value"));
}

/** The steps of the checklist still open, by name. */
async function openSteps(page) {
  await open(page, "/home");
  await page.locator("#setup li").first().waitFor();
  return page.locator('#setup li[data-done="false"]').evaluateAll((items) => items.map((i) => i.dataset.step));
}

/** Fills the fields of form `id` by name. */
async function fillForm(page, id, values) {
  for (const [name, value] of Object.entries(values)) {
    await page.locator(`#${id} [name="${name}"]`).fill(value);
  }
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
  await fillForm(page, "password-form", { current: input.admin.password, new: "short", repeat: "different" });
  await page.locator('#password-form button[type="submit"]').click();
  // Both errors at once, beside their fields, in Chinese.
  await page.locator('[data-error-for="repeat"]:not(:empty)').waitFor();
  assert.match(await page.locator('[data-error-for="new"]').innerText(), /至少 12 个字符/);
  assert.match(await page.locator('[data-error-for="repeat"]').innerText(), /不一致/);
  await screenshot(page, "password-errors");
  await fillForm(page, "password-form", { new: "县乡村一体化远程医疗2026", repeat: "县乡村一体化远程医疗2026" });
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
  await fillForm(page, "pairing-form", { valid_from: inDays(-1), valid_to: inDays(-3) });
  await page.locator('#pairing-form button[type="submit"]').click();
  await page.locator('#pairing-form [data-error-for="valid_to"]:not(:empty)').waitFor();
  assert.match(await page.locator('#pairing-form [data-error-for="services"]').innerText(), /必填/);
  assert.match(await page.locator("#pairing-form [data-form-problem]").innerText(), /2 处/);
  // What was typed is kept.
  assert.match(await page.locator('#pairing-form-supporter').inputValue(), /江门市中心医院/);
  await fillForm(page, "pairing-form", { valid_to: inDays(3 * 365) });
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
  await fillForm(page, "pairing-form", { valid_from: today(), valid_to: inDays(365) });
  await page.locator('#pairing-form #pairing-form-services input[value="consult"]').check();
  await page.locator('#pairing-form button[type="submit"]').click();
  await page.locator('#pairing-form [data-error-for="supported"]:not(:empty)').waitFor();
  await screenshot(page, "pairing-refused");

  // 4. Accounts: a county doctor's, with a one-time password shown once.
  await open(page, "/manage/accounts");
  await pickInstitution(page, "台山市人民医院");
  await page.locator("#account-form").waitFor();
  await fillForm(page, "account-form", { display_name: "李伟", username: "ts liwei" });
  await page.locator('#account-form button[type="submit"]').click();
  await page.locator('[data-error-for="roles"]:not(:empty)').waitFor();
  assert.ok(await page.locator('[data-error-for="username"]').innerText());
  await fillForm(page, "account-form", { username: "ts.liwei" });
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
  return { doctor: { username: "ts.liwei", password: resetPassword } };
});
