// How an institution is told, from /manage/notices: the tertiary hospital's coordinator
// sets its WeCom group robot (a bad address first, shown beside the field), then an
// urgent request arrives from the county doctor, and the list of messages shows the
// robot's message delivered; on a phone the section fits the screen.
// Input: {"coordinator": {username, password}, "doctor": {…}, "robot": url, "content": {…}}.
import { assert, input, scenario, newContext, login, open, screenshot, fillForm, text, overflowsSideways } from "./lib.mjs";

await scenario("manage_notices", async ({ browser }) => {
  const context = await newContext(browser);
  const page = await context.newPage();
  await login(page, input.coordinator.username, input.coordinator.password);
  await open(page, "/manage/notices");
  const robot = page.locator("#robot-form");
  await robot.waitFor();
  assert.match(await text(page, "#robot-current"), /尚未设置/);
  await fillForm(robot, { kind: "wecom", url: "qyapi.weixin.qq.com/send" });
  await robot.locator('button[type="submit"]').click();
  await robot.locator('[data-error-for="url"]:not(:empty)').waitFor();
  await fillForm(robot, { url: input.robot });
  await robot.locator('button[type="submit"]').click();
  await page.locator("#robot-current", { hasText: "企业微信" }).waitFor();
  await page.locator("#channels-status.done").waitFor();
  await screenshot(page, "robot-set");

  // The county doctor submits an urgent request.
  const doctorContext = await newContext(browser);
  const doctor = await doctorContext.newPage();
  await login(doctor, input.doctor.username, input.doctor.password);
  const submitted = await doctor.evaluate(async (content) => {
    const post = (path, body) => fetch(`/api/v1${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const draft = await (await post("/requests", { kind: "consultation", urgency: "urgent", content })).json();
    const r = await post(`/requests/${draft.id}/submit`, {});
    return { id: draft.id, status: r.status };
  }, input.content);
  assert.equal(submitted.status, 200);

  // The message to the group, delivered, in the section's list.
  for (let tries = 0; ; tries++) {
    await open(page, "/manage/notices");
    await page.locator("#deliveries-card h3").waitFor();
    if (await page.locator('#deliveries tr[data-channel="chat"][data-delivered="true"]').count()) break;
    assert.ok(tries < 20, "the robot's message is delivered");
    await page.waitForTimeout(500);
  }
  const row = page.locator('#deliveries tr[data-channel="chat"]').first();
  assert.match(await row.innerText(), new RegExp(`#${submitted.id}`));
  assert.match(await row.innerText(), /工作群/);
  await screenshot(page, "deliveries");

  const phone = await newContext(browser, { phone: true });
  const small = await phone.newPage();
  await login(small, input.coordinator.username, input.coordinator.password);
  await open(small, "/manage/notices");
  await small.locator("#deliveries-card h3").waitFor();
  assert.equal(await overflowsSideways(small), false, "the section fits a phone");
  await screenshot(small, "phone");
  return { request: submitted.id };
});
