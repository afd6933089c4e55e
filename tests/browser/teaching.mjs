// Remote teaching in the pages: a trainee of the paired county finds the session in the
// catalogue and enrols; the presenter and the trainee join the classroom, whose media go
// through the gateway's forwarding unit; the trainee sees the presenter's video playing,
// joins muted, raises a hand; the presenter gives it the microphone, and takes it back.
// Input: {"presenter": {username, password}, "trainee": {…}, "session": id, "topic"}.
import { assert, input, scenario, newContext, login, open, text, screenshot } from "./lib.mjs";

async function videoPlays(page, selector) {
  await page.waitForFunction((selector) => {
    const v = document.querySelector(selector);
    return v && v.videoWidth > 0 && v.readyState >= 2;
  }, selector, { timeout: 30_000 });
  const sample = () => page.evaluate((selector) => {
    const v = document.querySelector(selector);
    return { time: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames };
  }, selector);
  const a = await sample();
  await page.waitForTimeout(1500);
  const b = await sample();
  assert.ok(b.time > a.time && b.frames > a.frames, `the video plays (${JSON.stringify(a)} → ${JSON.stringify(b)})`);
}

await scenario("teaching", async ({ browser }) => {
  const traineeContext = await newContext(browser);
  const trainee = await traineeContext.newPage();
  await login(trainee, input.trainee.username, input.trainee.password);
  await open(trainee, "/teaching");
  const row = trainee.locator(`tr[data-session="${input.session}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), new RegExp(input.topic));
  await screenshot(trainee, "teaching-catalogue");
  await row.locator("button.enrol").click();
  await row.locator('[data-enrolment="enrolled"]').waitFor();
  assert.match(await text(trainee, "#hours"), /学时/);
  await screenshot(trainee, "teaching-enrolled");

  const presenterContext = await newContext(browser);
  const presenter = await presenterContext.newPage();
  await login(presenter, input.presenter.username, input.presenter.password);
  await open(presenter, `/rooms/teaching-${input.session}`);
  await presenter.locator('body[data-room-state="connected"]').waitFor({ state: "attached", timeout: 30_000 });

  await row.locator("a.join").click();
  await trainee.waitForURL((url) => url.pathname === `/rooms/teaching-${input.session}`);
  await trainee.locator('body[data-room-state="connected"]').waitFor({ state: "attached", timeout: 30_000 });
  await videoPlays(trainee, "video[data-identity]");
  // A trainee joins muted: no microphone until the presenter gives it.
  assert.equal(await trainee.locator("#mic").getAttribute("data-on"), "false");
  await screenshot(trainee, "classroom-trainee");

  await trainee.locator("#hand").click();
  const grant = presenter.locator("button.grant[data-identity]");
  await grant.waitFor();
  await screenshot(presenter, "classroom-presenter-hand");
  await grant.click();
  await trainee.waitForFunction(() => document.querySelector("#mic")?.dataset.on === "true", null, { timeout: 20_000 });
  // Speaking, the trainee still sees the presenter (its new connection receives too).
  await videoPlays(trainee, "video[data-identity]");
  await screenshot(trainee, "classroom-trainee-speaking");
  const revoke = presenter.locator("button.revoke[data-identity]");
  await revoke.waitFor();
  await revoke.click();
  await trainee.waitForFunction(() => document.querySelector("#mic")?.dataset.on === "false", null, { timeout: 20_000 });
  return { session: input.session };
});
