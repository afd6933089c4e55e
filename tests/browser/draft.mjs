// A request written in two sittings: the county doctor saves what is known as a draft
// (no consent yet; half a patient is refused on the page, not dropped); the draft cannot
// be submitted without the consent; the doctor continues it from its page with every
// part kept, records the consent and submits, then attaches the scanned consent (after
// names that cannot be kept are refused, saying to rename the file).
// Input: {"doctor": {username, password}}.
import { assert, input, scenario, newContext, login, open, text, screenshot, fillForm } from "./lib.mjs";

await scenario("draft", async ({ browser }) => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await login(page, input.doctor.username, input.doctor.password);
  await open(page, "/requests/new");
  const form = page.locator("#request-form");
  await fillForm(form, {
    "reason": "基层无神经内科专科医师，需上级医院会诊",
    "patient.name": "王某某",
    "case_summary.chief_complaint": "反复头痛三天",
  });
  // Half a patient is not saved silently: the page says what is missing.
  await page.locator("#save-draft").click();
  assert.match(await text(page, "#form-problem"), /患者信息请填写完整/);
  assert.equal(new URL(page.url()).pathname, "/requests/new");
  await fillForm(form, {
    "patient.sex": "M",
    "patient.birth_date": "1958-03-02",
  });
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
  assert.equal(await form.locator('input[name="patient.birth_date"]').inputValue(), "1958-03-02");
  await fillForm(form, {
    "consent.confirmed": true,
    "purpose": "明确头痛病因并指导下一步治疗",
    "specialty": "神经内科",
    "case_summary.history": "三天前无明显诱因出现头痛，以双侧颞部为主，伴恶心，无呕吐",
    "case_summary.findings": "血压 168/102 mmHg，神经系统查体未见明显异常",
    "case_summary.question": "是否需要转诊行头颅 CT 检查？",
  });
  await page.locator("#submit-request").click();
  await page.waitForURL((url) => url.pathname === `/requests/${id}`);
  await page.locator('body[data-state="submitted"]').waitFor({ state: "attached" });
  assert.match(await text(page, "#request-facts"), /王某某/);
  await screenshot(page, "draft-submitted");

  // A scan attached from the request's page keeps its name, which names the patient and
  // so travels in a header, not the URL; the download comes back under the same name.
  const name = "知情同意书（王某某）.pdf";
  const posted = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && r.url().includes("/attachments")) posted.push(r.url());
  });
  const pdf = Buffer.from("%PDF-1.4\n% scanned consent\n%%EOF\n");
  const note = page.locator('#attach-form [role="alert"]');
  const badName = /文件名无法保存/;
  // 202 bytes of UTF-8: refused on the page, before anything is sent.
  await page.locator("#attachment-file").setInputFiles({
    name: `${"知".repeat(66)}.pdf`, mimeType: "application/pdf", buffer: pdf,
  });
  await page.locator('#attach-form button[type="submit"]').click();
  await note.filter({ hasText: badName }).waitFor();
  assert.equal(posted.length, 0, "a name too long is not sent");
  // A right-to-left override, which would show it as "扫描件exe.pdf": refused by the
  // server, and the page says what to do rather than "filled in wrongly".
  await page.locator("#attachment-file").setInputFiles({
    name: "扫描件\u202Efdp.exe", mimeType: "application/pdf", buffer: pdf,
  });
  await note.evaluate((el) => { el.textContent = ""; });
  const answered = page.waitForResponse((r) => r.request().method() === "POST" && r.url().includes("/attachments"));
  await page.locator('#attach-form button[type="submit"]').click();
  assert.equal((await answered).status(), 422);
  await note.filter({ hasText: badName }).waitFor();
  assert.equal(posted.length, 1);
  await screenshot(page, "attachment-bad-name");
  // A name that is not text (a lone surrogate; a browser's own File never has one) is a
  // bad name too, not a network error.
  const lone = await page.evaluate(async (id) => {
    const { uploadAttachment } = await import("/static/js/requests.js");
    return uploadAttachment(id, { name: "scan\uD800.pdf", type: "application/pdf" });
  }, id);
  assert.deepEqual([lone.status, lone.data?.field], [422, "filename"], JSON.stringify(lone));
  assert.match(lone.data.detail, badName);
  assert.equal(posted.length, 1, "nothing sent for it");
  posted.length = 0;

  await page.locator("#attachment-file").setInputFiles({
    name, mimeType: "application/pdf", buffer: pdf,
  });
  await page.locator('#attach-form button[type="submit"]').click();
  const link = page.locator("#attachments a", { hasText: name });
  await link.waitFor();
  assert.equal(posted.length, 1);
  assert.ok(!posted[0].includes(encodeURIComponent("知情")) && !posted[0].includes("?"), `the name stays out of ${posted[0]}`);
  const download = await page.request.get(await link.getAttribute("href"));
  assert.equal(download.status(), 200);
  assert.equal(download.headers()["content-disposition"], `inline; filename*=UTF-8''${encodeURIComponent(name)}`);
  return { id, attachment: name };
});
