// The consultant declines a request from the inbox, with a reason chosen and explained;
// a decline without an explanation does not leave the page. The county doctor then sees
// the request declined, with the reason, and nothing left to do but start anew.
// Input: {"doctor": {username, password}, "consultant": {…}, "request": id}.
import { assert, input, scenario, newContext, login, open, text, screenshot } from "./lib.mjs";

await scenario("decline", async ({ browser }) => {
  const consultantContext = await newContext(browser);
  const consultant = await consultantContext.newPage();
  await login(consultant, input.consultant.username, input.consultant.password);
  await open(consultant, "/inbox");
  await consultant.locator(`tr[data-request="${input.request}"] a`).click();
  await consultant.locator('body[data-state="submitted"]').waitFor({ state: "attached" });
  await consultant.locator("#decline-code").selectOption("no_specialist");
  // The explanation is required: the form does not go without it, nothing changes.
  await consultant.locator("#decline").click();
  assert.equal(await consultant.locator("#decline-text:invalid").count(), 1, "the empty explanation is marked");
  await consultant.waitForTimeout(500);
  assert.equal(await consultant.evaluate(() => document.body.dataset.state), "submitted");
  await consultant.locator("#decline-text").fill("本院神经内科专家本周均外出支援，建议转诊至江门市人民医院。");
  await consultant.locator("#decline").click();
  await consultant.locator('body[data-state="declined"]').waitFor({ state: "attached" });
  await screenshot(consultant, "declined-consultant");

  const doctorContext = await newContext(browser);
  const doctor = await doctorContext.newPage();
  await login(doctor, input.doctor.username, input.doctor.password);
  await open(doctor, "/requests");
  const row = doctor.locator(`tr[data-request="${input.request}"]`);
  await row.locator('[data-state="declined"]').waitFor();
  await row.locator("a").click();
  await doctor.locator('body[data-state="declined"]').waitFor({ state: "attached" });
  const facts = await text(doctor, "#request-facts");
  assert.match(facts, /无相应专科医师/, "the reason, in words of the catalogue");
  assert.match(facts, /建议转诊至江门市人民医院/, "and the consultant's explanation");
  assert.equal(await doctor.locator("#actions button").count(), 0, "a declined request has no steps left");
  await screenshot(doctor, "declined-doctor");
  return {};
});
