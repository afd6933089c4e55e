// An early arrival in a consultation's room, and what the room holds besides the video.
// The county doctor opens the room before it opens: the lobby says when it opens, counts
// down by the gateway's clock, names who will be there, and checks the camera (its
// preview plays) and the microphone (its level moves). The scenario then leaves a mark
// for the test, which moves the gateway's clock to the opening time; the lobby lets the
// doctor in by itself. The consultant comes in; each sees the other by name, title and
// institution; the case is beside the consultant's video; they write in the chat, which
// is still there after a reload; the consultant begins the session, writes and signs the
// opinion in the room, and the doctor sees it signed there; the doctor leaves, and the
// room says what happened and leads to the request, which keeps the chat.
// Input: {"doctor": {username, password}, "consultant": {…}, "id": request id}.
import fs from "node:fs";
import path from "node:path";
import { assert, input, scenario, newContext, login, open, text, screenshot, videoPlays } from "./lib.mjs";

const OPINION = "考虑高血压相关头痛。建议规律服用降压药，监测血压，一周后复诊。";

await scenario("room_lobby", async ({ browser }) => {
  const room = `/rooms/consultation-${input.id}`;

  // The doctor, early.
  const doctorContext = await newContext(browser);
  const doctor = await doctorContext.newPage();
  doctor.on("dialog", (d) => d.accept());
  await login(doctor, input.doctor.username, input.doctor.password);
  await open(doctor, room);
  await doctor.locator("#lobby").waitFor();
  assert.equal(await doctor.evaluate(() => document.body.dataset.roomState), "lobby");
  assert.match(await text(doctor, "#opens-at"), /开放/);
  const seconds = Number(await doctor.locator("#countdown").getAttribute("data-seconds"));
  assert.ok(seconds > 0 && seconds <= 120, `the countdown starts from the gateway's clock: ${seconds} s`);
  assert.match(await text(doctor, "#countdown"), /距开放还有/);
  const expected = await text(doctor, "#expected");
  assert.match(expected, /林主任/);
  assert.match(expected, /主任医师 · 江门市中心医院/);
  assert.match(expected, /会诊专家/);
  // The device check: the camera's preview plays, the microphone's level moves.
  await videoPlays(doctor, "video#preview");
  await doctor.waitForFunction(() => Number(document.querySelector("#mic-level")?.dataset.level) > 0, null, { timeout: 15_000 });
  assert.ok(await doctor.locator("#camera-choice option").count() >= 1);
  assert.match(await text(doctor, "#device-note"), /正常/);
  await screenshot(doctor, "lobby");

  // The test moves the gateway's clock to the opening time; the page lets the doctor in.
  fs.writeFileSync(path.join(process.env.DUIKOU_ARTIFACTS, "lobby-seen"), "");
  await doctor.locator('body[data-room-state="connected"]').waitFor({ timeout: 40_000 });
  assert.equal(await doctor.locator("#lobby").count(), 0);

  // The consultant comes in at once: the room is open.
  const consultantContext = await newContext(browser);
  const consultant = await consultantContext.newPage();
  consultant.on("dialog", (d) => d.accept());
  await login(consultant, input.consultant.username, input.consultant.password);
  await open(consultant, room);
  await consultant.locator('body[data-room-state="connected"]').waitFor();
  await videoPlays(consultant);
  await videoPlays(doctor);

  // Each sees the other by name, title and institution, in the list and on the tile.
  const doctorSees = doctor.locator('#people-list li:not(.self)');
  await doctorSees.filter({ hasText: "林主任" }).waitFor();
  assert.match(await doctorSees.innerText(), /主任医师 · 江门市中心医院/);
  assert.match(await doctorSees.innerText(), /会诊专家/);
  await consultant.locator("video[data-identity]").first().waitFor();
  await consultant.locator(".tile figcaption .name", { hasText: "王医生" }).waitFor();
  await consultant.locator('button[data-tab="people"]').click();
  assert.match(await text(consultant, "#people-list li:not(.self)"), /主治医师 · 台山市人民医院/);
  assert.match(await text(consultant, "#people-list li.self"), /林主任（我）/);

  // The case is beside the video.
  await consultant.locator('button[data-tab="case"]').click();
  await consultant.locator('#case [data-field="summary.chief_complaint"]').waitFor();
  assert.match(await text(consultant, "#case"), /反复头痛三天/);
  assert.match(await text(consultant, "#case"), /血压 168\/102/);
  await screenshot(consultant, "room-case");

  // The chat: the doctor writes; the consultant, on another tab, sees it counted, reads
  // and answers.
  await doctor.locator('button[data-tab="chat"]').click();
  await doctor.locator('#chat-form textarea[name="body"]').fill("患者昨日测卧位血压 150/95。");
  await doctor.locator("#chat-send").click();
  await doctor.locator("#chat-log li", { hasText: "150/95" }).waitFor();
  await consultant.locator('button[data-tab="chat"][data-unseen="1"]').waitFor();
  await consultant.locator('button[data-tab="chat"]').click();
  await consultant.locator("#chat-log li", { hasText: "150/95" }).waitFor();
  assert.match(await text(consultant, "#chat-log li .who"), /王医生/);
  const answer = consultant.locator('#chat-form textarea[name="body"]');
  await answer.fill("收到，继续监测。");
  await answer.press("Enter");
  await doctor.locator("#chat-log li", { hasText: "继续监测" }).waitFor();
  // An empty message is not sent.
  await doctor.locator('#chat-form textarea[name="body"]').fill("   ");
  await doctor.locator("#chat-send").click();
  assert.equal(await doctor.locator("#chat-log li").count(), 2);

  // The consultant begins the session, then writes and signs the opinion in the room.
  await consultant.locator('button[data-tab="opinion"]').click();
  await consultant.locator("#start-session").click();
  await consultant.locator("#opinion-body").fill(OPINION);
  await consultant.locator("#sign").click();
  // Signing asks for the password again.
  await consultant.locator("#sign-dialog #sign-password").fill(input.consultant.password);
  await consultant.locator("#sign-confirm").click();
  await consultant.locator('#opinion-panel .opinion-version[data-version="1"]').waitFor();
  assert.match(await text(consultant, "#opinion-panel .signer"), /林主任/);
  assert.match(await text(consultant, "#opinion-panel"), /高血压相关头痛/);
  await screenshot(consultant, "room-opinion-signed");
  // Still in the room, and connected.
  assert.equal(await consultant.evaluate(() => document.body.dataset.roomState), "connected");

  // The doctor sees it signed in the room, from the notice, without reloading.
  await doctor.locator('button[data-tab="opinion"]').click();
  await doctor.locator('#opinion-panel .opinion-version[data-version="1"]').waitFor({ timeout: 20_000 });
  assert.match(await text(doctor, "#opinion-panel"), /高血压相关头痛/);

  // The chat is kept: after a reload it is all there.
  await consultant.reload();
  await consultant.locator('body[data-room-state="connected"]').waitFor();
  await consultant.locator('button[data-tab="chat"]').click();
  await consultant.locator("#chat-log li", { hasText: "继续监测" }).waitFor();
  assert.equal(await consultant.locator("#chat-log li").count(), 2);

  // The doctor leaves: the room says what happened and leads to the request.
  await doctor.locator("#leave").click();
  await doctor.locator("#room-summary").waitFor();
  assert.match(await text(doctor, "#request-state"), /意见已签署|已签署/);
  assert.equal(await doctor.locator("#to-request").getAttribute("href"), `/requests/${input.id}`);
  await doctor.locator("#together").waitFor();
  await screenshot(doctor, "room-summary");
  await doctor.locator("#to-request").click();
  await doctor.locator(`body[data-state="opinion_signed"]`).waitFor({ state: "attached" });
  // The request keeps what was written in the room.
  assert.match(await text(doctor, "#room-chat"), /150\/95/);
  assert.match(await text(doctor, "#room-chat"), /继续监测/);

  await consultantContext.close();
  await doctorContext.close();
  return {};
});
