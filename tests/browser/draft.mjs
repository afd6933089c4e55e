// A request written in two sittings: the county doctor saves what is known as a draft
// (no consent yet; half a patient is refused on the page, not dropped); the draft cannot
// be submitted without the consent; the doctor
// continues it from its page with every part kept, records the consent and submits.
// Input: {"doctor": {username, password}}.
import { assert, input, scenario, newContext, login, open, text, screenshot } from "./lib.mjs";

await scenario("draft", async ({ browser }) => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await login(page, input.doctor.username, input.doctor.password);
  await open(page, "/requests/new");
  const form = page.locator("#request-form");
  await form.locator('textarea[name="reason"]').fill("基层无神经内科专科医师，需上级医院会诊");
  await form.locator('input[name="patient.name"]').fill("王某某");
  await form.locator('input[name="case_summary.chief_complaint"]').fill("反复头痛三天");
  // Half a patient is not saved silently: the page says what is missing.
  await page.locator("#save-draft").click();
  assert.match(await text(page, "#form-problem"), /患者信息请填写完整/);
  assert.equal(new URL(page.url()).pathname, "/requests/new");
  await form.locator('select[name="patient.sex"]').selectOption("M");
  await form.locator('input[name="patient.birth_date"]').fill("1958-03-02");
  await page.locator("#save-draft").click();
  await page.waitForURL((url) => /^\/requests\/\d+$/.test(url.pathname));
  await page.locator('body[data-state="draft"]').waitFor({ state: "attached" });
  const id = Number(new URL(page.url()).pathname.split("/").pop());

  // Not yet complete: submitting from the draft's page is refused, and says why.
  await page.locator("#submit").click();
  await page.locator("#step-problem").filter({ hasText: /./ }).waitFor();
  assert.equal(await page.evaluate(() => document.body.dataset.state), "draft");
  await screenshot(page, "draft");

  await page.locator("#edit-draft").click();
  await page.waitForURL((url) => url.pathname === "/requests/new" && url.searchParams.get("draft") === String(id));
  await form.waitFor();
  assert.equal(await form.locator('textarea[name="reason"]').inputValue(), "基层无神经内科专科医师，需上级医院会诊");
  assert.equal(await form.locator('input[name="patient.name"]').inputValue(), "王某某");
  assert.equal(await form.locator('select[name="kind"]').isDisabled(), true, "the kind of a draft stays");
  await form.locator('input[name="consent.confirmed"]').check();
  await form.locator('textarea[name="purpose"]').fill("明确头痛病因并指导下一步治疗");
  await form.locator('input[name="specialty"]').fill("神经内科");
  assert.equal(await form.locator('input[name="patient.birth_date"]').inputValue(), "1958-03-02");
  await form.locator('textarea[name="case_summary.history"]').fill("三天前无明显诱因出现头痛，以双侧颞部为主，伴恶心，无呕吐");
  await form.locator('textarea[name="case_summary.findings"]').fill("血压 168/102 mmHg，神经系统查体未见明显异常");
  await form.locator('textarea[name="case_summary.question"]').fill("是否需要转诊行头颅 CT 检查？");
  await page.locator("#submit-request").click();
  await page.waitForURL((url) => url.pathname === `/requests/${id}`);
  await page.locator('body[data-state="submitted"]').waitFor({ state: "attached" });
  assert.match(await text(page, "#request-facts"), /王某某/);
  await screenshot(page, "draft-submitted");
  return { id };
});
