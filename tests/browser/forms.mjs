// The forms as a new user meets them. A clinician whose hospital has no pairing opens the
// new-request page and is told, before typing, that there is no supporter and why; a
// paired one sees the supporter first. An empty submission marks every error at once
// beside its field, in Chinese without an English word, and leaves no draft. A study of
// another patient is shown beside the request's patient and sent only once confirmed.
// The coordinator's accept form offers the clinicians who qualify, best suited first,
// and a slot is picked on the grid of days and times.
// Input: {"unpaired": {username, password}, "doctor": {…}, "coordinator": {…},
//         "study": uid, "study_patient": name}.
import { assert, input, scenario, newContext, login, open, text, screenshot, fillForm, headacheConsultation } from "./lib.mjs";

/** The Latin words of `s` other than names of formats everyone reads. */
function latinWords(s) {
  const allowed = new Set(["PDF", "JPEG", "PNG", "CT", "UID", "ID", "DICOM"]);
  return (s.match(/[A-Za-z]+/g) ?? []).filter((w) => !allowed.has(w));
}

await scenario("forms", async ({ browser }) => {
  // 1. No pairing: said before anything is typed, and nothing can be sent.
  const lonelyContext = await newContext(browser);
  const lonely = await lonelyContext.newPage();
  await login(lonely, input.unpaired.username, input.unpaired.password);
  await open(lonely, "/requests/new");
  await lonely.locator('#supporter[data-state="none"]').waitFor();
  assert.equal(await lonely.locator("#supporter").getAttribute("data-rule"), "unpaired-supporter");
  const why = await text(lonely, "#supporter-why");
  assert.match(why, /没有指定的帮扶医院/);
  assert.deepEqual(latinWords(await text(lonely, "#supporter")), []);
  assert.equal(await lonely.locator("#submit-request").isDisabled(), true);
  assert.equal(await lonely.locator("#save-draft").isDisabled(), true);
  await screenshot(lonely, "no-supporter");
  await lonelyContext.close();

  // 2. Paired: the supporter is shown before anything is typed.
  const doctorContext = await newContext(browser);
  const doctor = await doctorContext.newPage();
  await login(doctor, input.doctor.username, input.doctor.password);
  const created = [];
  doctor.on("response", (r) => {
    if (r.request().method() === "POST" && new URL(r.url()).pathname === "/api/v1/requests") created.push(r.status());
  });
  await open(doctor, "/requests/new");
  await doctor.locator('#supporter[data-state="found"]').waitFor();
  assert.match(await text(doctor, "#supporter-name"), /江门市中心医院/);

  // 3. An empty form: every error at once, beside its field, in Chinese.
  await doctor.locator("#submit-request").click();
  await doctor.locator('[data-error-for="reason"]:not(:empty)').waitFor();
  const fields = ["reason", "purpose", "specialty", "patient.name", "consent.confirmed",
    "case_summary.chief_complaint", "case_summary.history", "case_summary.findings", "case_summary.question"];
  for (const name of fields) {
    const said = await text(doctor, `[data-error-for="${name}"]`);
    assert.ok(said, `an error beside ${name}`);
    assert.deepEqual(latinWords(said), [], `${name}: ${said}`);
  }
  const problem = await text(doctor, "#form-problem");
  assert.match(problem, /处需要/);
  assert.deepEqual(latinWords(problem), [], problem);
  assert.deepEqual(created, [422], "one call, refused");
  await screenshot(doctor, "every-error");

  // 4. A study of another patient: both shown, confirmed, then sent.
  const form = doctor.locator("#request-form");
  await fillForm(form, headacheConsultation("王某某"));
  await form.locator(`select[name="study"] option[value="${input.study}"]`).waitFor({ state: "attached" });
  await form.locator('select[name="study"]').selectOption(input.study);
  await doctor.locator("#submit-request").click();
  await doctor.locator("#study-check:not([hidden])").waitFor();
  await doctor.locator('[data-error-for="study"]:not(:empty)').waitFor();
  assert.match(await text(doctor, '#study-check [data-side="request"]'), /王某某/);
  assert.match(await text(doctor, '#study-check [data-side="study"]'), new RegExp(input.study_patient));
  assert.deepEqual(latinWords(await text(doctor, '[data-error-for="study"]')), []);
  assert.deepEqual(created, [422, 422]);
  await screenshot(doctor, "study-of-another-patient");
  await doctor.locator("#study-patient-confirmed").check();
  await doctor.locator("#submit-request").click();
  await doctor.waitForURL((url) => /^\/requests\/\d+$/.test(url.pathname));
  await doctor.locator('body[data-state="submitted"]').waitFor({ state: "attached" });
  const id = Number(new URL(doctor.url()).pathname.split("/").pop());

  // A scanned consent with a gap elsewhere: told before any draft is made for the scan.
  await open(doctor, "/requests/new");
  await doctor.locator('#supporter[data-state="found"]').waitFor();
  const again = doctor.locator("#request-form");
  const { reason, ...rest } = headacheConsultation("李某某");
  assert.ok(reason);
  await fillForm(again, { ...rest, "consent.method": "scan" });
  await again.locator('input[name="consent.scan"]').setInputFiles({
    name: "同意书.pdf", mimeType: "application/pdf", buffer: Buffer.from("%PDF-1.4\n%%EOF\n"),
  });
  created.length = 0;
  await doctor.locator("#submit-request").click();
  await doctor.locator('[data-error-for="reason"]:not(:empty)').waitFor();
  assert.deepEqual(created, [422], "no draft made for the scan");
  assert.equal(new URL(doctor.url()).pathname, "/requests/new");
  await doctorContext.close();

  // 5. The coordinator: only qualified clinicians, best suited first; a slot on the grid.
  const officeContext = await newContext(browser);
  const office = await officeContext.newPage();
  await login(office, input.coordinator.username, input.coordinator.password);
  await open(office, `/requests/${id}`);
  await office.locator('body[data-state="submitted"]').waitFor({ state: "attached" });
  await office.locator("#consultant option").first().waitFor({ state: "attached" });
  const offered = await office.locator("#consultant option").evaluateAll((os) => os.map((o) => Number(o.value)));
  await office.locator("#slot-grid button[data-start]").nth(1).waitFor();
  const days = await office.locator("#slot-grid thead th[data-day]").count();
  assert.ok(days >= 2, `days as columns: ${days}`);
  const chosen = office.locator("#slot-grid button[data-start]").nth(1);
  const slot = await chosen.getAttribute("data-start");
  await chosen.click();
  assert.equal(await chosen.getAttribute("aria-pressed"), "true");
  await screenshot(office, "accept-grid");
  await office.locator("#accept").click();
  await office.locator('body[data-state="scheduled"]').waitFor({ state: "attached" });
  await officeContext.close();
  return { id, offered, slot };
});
