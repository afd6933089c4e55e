// Remote teaching in the pages: a trainee of the paired county finds the session in the
// catalogue and enrols; the presenter and the trainee join the classroom, whose media go
// through the gateway's forwarding unit; the trainee sees the presenter's video playing,
// joins muted, raises a hand; the presenter gives it the microphone, and takes it back;
// given, taken and given again at once, the trainee is heard within seconds; the
// presenter removes the trainee, who cannot come back.
// Input: {"presenter": {username, password}, "trainee": {…}, "session": id, "topic"}.
import { assert, input, scenario, newContext, login, open, text, screenshot, bytesIn, videoPlays } from "./lib.mjs";

/** Keeps a page's peer connections and sockets at hand, and counts ICE failures. */
function watch() {
  const NativePc = window.RTCPeerConnection;
  window.__pcs = [];
  window.__failures = 0;
  window.RTCPeerConnection = class extends NativePc {
    constructor(...args) {
      super(...args);
      window.__pcs.push(this);
      this.addEventListener("iceconnectionstatechange", () => {
        if (this.iceConnectionState === "failed") window.__failures += 1;
      });
    }
  };
  const NativeWs = window.WebSocket;
  window.__sockets = [];
  window.WebSocket = class extends NativeWs {
    constructor(...args) {
      super(...args);
      window.__sockets.push(this);
    }
  };
}

await scenario("teaching", async ({ browser }) => {
  const traineeContext = await newContext(browser);
  await traineeContext.addInitScript(watch);
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
  await presenterContext.addInitScript(watch);
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
  const traineeIdentity = await revoke.getAttribute("data-identity");
  await revoke.click();
  await trainee.waitForFunction(() => document.querySelector("#mic")?.dataset.on === "false", null, { timeout: 20_000 });

  // The microphone given, taken back and given again at once (three new offers to the
  // unit in a row): the trainee's page keeps one offer out at a time, so each answer
  // meets the connection it was made for. The trainee is heard within seconds, sees the
  // presenter, and no connection to the unit fails on the way.
  await presenter.evaluate((to) => {
    const ws = window.__sockets.at(-1);
    for (const audio of [true, false, true]) ws.send(JSON.stringify({ v: 1, type: "grant", to, audio }));
  }, traineeIdentity);
  await trainee.waitForFunction(() => document.querySelector("#mic")?.dataset.on === "true", null, { timeout: 20_000 });
  const start = await bytesIn(presenter, "audio");
  const deadline = Date.now() + 8_000;
  while (await bytesIn(presenter, "audio") <= start + 2000) {
    assert.ok(Date.now() < deadline, "the presenter hears the trainee within 8 s");
    await presenter.waitForTimeout(500);
  }
  await videoPlays(trainee, "video[data-identity]");
  assert.equal(await trainee.evaluate(() => window.__failures), 0, "no connection to the unit failed");

  // The presenter removes the trainee (after a confirmation): the trainee's page says so
  // and stays out, the presenter's list no longer has it, and coming back is refused.
  presenter.once("dialog", (d) => d.accept());
  await presenter.locator(`button.remove[data-identity="${traineeIdentity}"]`).click();
  await trainee.locator('body[data-room-state="removed"]').waitFor({ state: "attached", timeout: 20_000 });
  assert.match(await text(trainee, "#room-status"), /移出/);
  await presenter.waitForFunction((id) => !document.querySelector(`#people-list li[data-identity="${id}"]`),
    traineeIdentity, { timeout: 20_000 });
  await screenshot(trainee, "classroom-removed");
  await trainee.reload();
  await trainee.locator('body[data-room-state="removed"]').waitFor({ state: "attached", timeout: 20_000 });
  return { session: input.session };
});
