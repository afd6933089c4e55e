// A county doctor asks for a read of a study the county sent, attaching it in the form;
// the supporting hospital's office assigns its radiologist; the radiologist opens the
// forwarded study from the worklist in the viewer, scrolls through the series (the wheel, the keys, the slider: each step shows
// the next image, with other pixels), changes window and level by dragging, and writes and
// signs the read beside the images.
// Input: {"username", "password" (the radiologist's), "doctor", "office", "reader" (the
// radiologist's clinician id), "study", "images", "report"}.
import { assert, input, scenario, newContext, login, open, text, screenshot, fillForm } from "./lib.mjs";

/** The slice the viewer drew, and a checksum of the canvas's pixels. */
async function drawn(page) {
  return page.evaluate(() => {
    const c = document.getElementById("image");
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) sum += d[i];
    return { slice: Number(c.dataset.slice), sum, width: c.width, height: c.height };
  });
}

/** Waits until the viewer has drawn slice `n`. */
async function showing(page, n) {
  await page.waitForFunction((n) => document.getElementById("image")?.dataset.slice === String(n), n);
  return drawn(page);
}

await scenario("viewer", async ({ browser }) => {
  // The county doctor asks for a read of the study the county sent, picked in the form.
  const doctorContext = await newContext(browser);
  const doctor = await doctorContext.newPage();
  await login(doctor, input.doctor.username, input.doctor.password);
  await open(doctor, "/requests/new");
  const form = doctor.locator("#request-form");
  await fillForm(form, {
    "consent.confirmed": true,
    "kind": "imaging_read",
  });
  await form.locator(`select[name="study"] option[value="${input.study}"]`).waitFor({ state: "attached" });
  await form.locator('select[name="study"]').selectOption(input.study);
  await fillForm(form, {
    "reason": "本院无影像专科医师，需上级医院阅片",
    "purpose": "明确头颅 CT 有无出血或占位",
    "specialty": "神经内科",
    "patient.name": "王某某",
    "patient.sex": "M",
    "patient.birth_date": "1958-03-02",
    "case_summary.chief_complaint": "头痛伴呕吐一天",
    "case_summary.history": "一天前突发剧烈头痛，伴喷射性呕吐两次，无发热",
    "case_summary.findings": "血压 182/110 mmHg，颈软，双侧瞳孔等大等圆",
    "case_summary.question": "头颅 CT 有无出血或占位？",
  });
  // The county's test series is of a made-up patient: the form shows both, to confirm.
  await doctor.locator("#study-check:not([hidden])").waitFor();
  await doctor.locator("#study-patient-confirmed").check();
  await doctor.locator("#submit-request").click();
  await doctor.waitForURL((url) => /^\/requests\/\d+$/.test(url.pathname));
  await doctor.locator('body[data-state="submitted"]').waitFor({ state: "attached" });
  const requestId = Number(new URL(doctor.url()).pathname.split("/").pop());
  assert.match(await text(doctor, "#request-facts"), /TS20261201/, "the request names the study it was given");

  // The supporting hospital's office assigns its radiologist.
  const officeContext = await newContext(browser);
  const office = await officeContext.newPage();
  await login(office, input.office.username, input.office.password);
  await open(office, `/requests/${requestId}`);
  await office.locator("#consultant").selectOption(String(input.reader));
  await office.locator("#accept").click();
  await office.locator('body[data-state="accepted"]').waitFor({ state: "attached" });
  await officeContext.close();

  const context = await newContext(browser);
  const page = await context.newPage();
  await login(page, input.username, input.password);

  await open(page, "/worklist");
  const row = page.locator(`#worklist tr[data-study="${input.study}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /TS20261201/, "the worklist names the study by its accession number");
  await screenshot(page, "worklist");
  await row.locator("a.open-viewer").click();
  await page.waitForURL((url) => url.pathname.startsWith("/viewer/"));
  await page.locator('body[data-viewer="ready"]').waitFor({ state: "attached" });

  const first = await showing(page, 1);
  assert.equal(first.width, 128, "the image is drawn at its own size");
  assert.ok(first.sum > 0, "the first image is not blank");
  assert.equal(await text(page, "#slice-label"), `第 1 / ${input.images} 层`);
  await screenshot(page, "viewer-first");

  // The wheel over the image moves one image a step; each shows other pixels.
  const canvas = page.locator("#image");
  const box = await canvas.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  let previous = first;
  for (let n = 2; n <= 4; n++) {
    await page.mouse.wheel(0, 120);
    const now = await showing(page, n);
    assert.notEqual(now.sum, previous.sum, `image ${n} differs from image ${n - 1}`);
    previous = now;
  }
  // The keys, to the end and back.
  await canvas.focus();
  await page.keyboard.press("End");
  const last = await showing(page, input.images);
  assert.ok(last.sum > first.sum, "the last image's brighter disc is larger than the first's");
  assert.equal(await text(page, "#slice-label"), `第 ${input.images} / ${input.images} 层`);
  await page.keyboard.press("ArrowUp");
  await showing(page, input.images - 1);
  // The slider.
  await page.locator("#slice").fill("6");
  await showing(page, 6);

  // Window and level: dragging widens the window, and the image changes.
  const before = await drawn(page);
  const wl = await text(page, "#wl-label");
  assert.match(wl, /窗位 40\s+窗宽 400/, "the default window is the images' own");
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 100, box.y + box.height / 2 + 40, { steps: 5 });
  await page.mouse.up();
  assert.notEqual(await text(page, "#wl-label"), wl, "dragging changes window and level");
  assert.notEqual((await drawn(page)).sum, before.sum, "and the image with them");
  await page.locator("#wl-preset").selectOption("bone");
  assert.match(await text(page, "#wl-label"), /窗位 400\s+窗宽 1800/);
  await screenshot(page, "viewer-scrolled");

  // The read, written and signed beside the images.
  assert.match(await text(page, "#read-request"), new RegExp(`#${requestId}`));
  // Beside the read, the request's patient and the study's, marked where they differ
  // (here the modality wrote the name in letters only).
  assert.match(await text(page, "#patient-request"), /王某某/);
  assert.match(await text(page, "#patient-study"), /WANG MOUMOU/);
  assert.match(await text(page, "#patient-study"), /TS0001/);
  await page.locator('#patients[data-differs="true"] #patient-study .differs').first().waitFor();
  await page.locator("#report-body").fill(input.report);
  await page.locator("#sign-report").click();
  // Signed as on the request page: the password again, in the dialog.
  await page.locator("#sign-dialog[open] #sign-signer").waitFor();
  assert.match(await text(page, "#sign-signer"), /黄主任/);
  await page.locator("#sign-password").fill(input.password);
  await page.locator("#sign-confirm").click();
  await page.locator('#report .opinion-version[data-version="1"]').waitFor();
  assert.equal(await text(page, '#report .opinion-version[data-version="1"] .opinion'), input.report);
  await screenshot(page, "viewer-signed");
  return { scrolled: input.images, request: requestId };
});
