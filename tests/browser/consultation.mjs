// A whole remote consultation in the pages, with two people in two browsers with fake
// cameras and microphones: the county doctor writes and submits the request (consent
// first); the consultant, whose inbox is open, learns of it from the counts and the bell
// without reloading and accepts it with a slot; the doctor hears of that from the bell,
// and later of the signed opinion from the home page's banner; a doctor of another
// county gets no access to the request or its room; both join the room and each sees the
// other's video playing (frames advancing) and a network-quality grade; ICE fails and is
// restarted; the doctor mutes; each side in turn goes audio-only, and no video crosses
// the link either way; the doctor shares the screen and loses the signaling connection,
// which the page resumes; the consultant signs the opinion with the password asked again
// (a wrong one first); the county doctor reads and acknowledges it and opens its print
// view with the signer block; the consultant amends it, and the doctor acknowledges the new version.
// Input: {"doctor": {username, password}, "consultant": {…}, "stranger": {…}}.
import {
  assert, input, scenario, newContext, login, open, text, screenshot, fillForm, headacheConsultation, bytesIn, videoPlays,
} from "./lib.mjs";

const PATIENT = "王某某";
const OPINION = "考虑高血压相关头痛。建议规律服用降压药，监测血压，一周后复诊；如头痛加重或出现肢体无力，及时转诊行头颅 CT 检查。";

/**
 * Keeps the page's peer connections at hand, records the ICE username fragment of each
 * local description, and lets the test report a connection's ICE state as failed (as a
 * link that dies would) to see the page restart ICE.
 */
function watchPeerConnections() {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.__ufrags = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      this.__failed = false;
      window.__pcs.push(this);
    }
    get iceConnectionState() {
      return this.__failed ? "failed" : super.iceConnectionState;
    }
    async setLocalDescription(...args) {
      await super.setLocalDescription(...args);
      const ufrag = /a=ice-ufrag:(\S+)/.exec(this.localDescription?.sdp ?? "")?.[1];
      if (ufrag) window.__ufrags.push(ufrag);
    }
  };
}

/** Waits until the page shows the request in `state`. */
async function inState(page, state) {
  await page.locator(`body[data-state="${state}"]`).waitFor({ state: "attached" });
}

await scenario("consultation", async ({ browser }) => {
  // The county doctor writes the request.
  const doctorContext = await newContext(browser);
  // The doctor's sockets are kept at hand, to cut one as a weak link would.
  await doctorContext.addInitScript(() => {
    const Native = window.WebSocket;
    window.__sockets = [];
    window.__received = [];
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        window.__sockets.push(this);
        this.addEventListener("message", (e) => window.__received.push(String(e.data)));
      }
    };
  });
  await doctorContext.addInitScript(watchPeerConnections);
  const doctor = await doctorContext.newPage();
  doctor.on("dialog", (d) => d.accept());
  await login(doctor, input.doctor.username, input.doctor.password);
  await open(doctor, "/requests/new");
  const form = doctor.locator("#request-form");
  // Submitting before the consent is confirmed is refused, said beside the consent.
  await doctor.locator("#submit-request").click();
  await doctor.locator('[data-error-for="consent.confirmed"]:not(:empty)').waitFor();
  assert.match(await text(doctor, '[data-error-for="consent.confirmed"]'), /知情同意/);
  await fillForm(form, headacheConsultation(PATIENT));
  await screenshot(doctor, "request-new");

  // The consultant has the inbox open, with nothing waiting.
  const consultantContext = await newContext(browser);
  await consultantContext.addInitScript(watchPeerConnections);
  const consultant = await consultantContext.newPage();
  consultant.on("dialog", (d) => d.accept());
  await login(consultant, input.consultant.username, input.consultant.password);
  await open(consultant, "/inbox");
  await consultant.locator('#bar nav a[href="/inbox"][data-count="0"]').waitFor();
  assert.equal(await consultant.locator("#bell-count").isHidden(), true, "no notice yet");

  await doctor.locator("#submit-request").click();
  await doctor.waitForURL((url) => /^\/requests\/\d+$/.test(url.pathname));
  await inState(doctor, "submitted");
  const id = Number(new URL(doctor.url()).pathname.split("/").pop());
  assert.match(await text(doctor, "#next-deadline"), /等待受理/);
  await screenshot(doctor, "request-submitted");

  // The consultant learns of it without reloading: the inbox's count and the bell rise,
  // and the request is drawn into the open inbox.
  await consultant.locator('#bar nav a[href="/inbox"][data-count="1"]').waitFor();
  assert.equal(await text(consultant, "#bell-count"), "1");
  const row = consultant.locator(`tr[data-request="${id}"]`);
  await row.waitFor();
  await consultant.locator("#bell").click();
  assert.match(await text(consultant, `#notices li[data-event="submitted"]`), new RegExp(`远程会诊申请 #${id}`));
  await screenshot(consultant, "inbox");
  await consultant.locator("#bell").click();
  await row.locator("a").click();
  await inState(consultant, "submitted");
  // The first free slot of the grid is chosen.
  const slot = await consultant.locator('#slot-grid button[data-start][aria-pressed="true"]').getAttribute("data-start");
  assert.ok(slot, "the consultant is offered a free slot");
  await consultant.locator("#accept").click();
  await inState(consultant, "scheduled");
  await screenshot(consultant, "request-scheduled");
  // The doctor, still on the request's page, hears of the acceptance and the time.
  await doctor.locator("#bell-count:not([hidden])").waitFor();
  await doctor.locator("#bell").click();
  await doctor.locator('#notices li[data-event="scheduled"]').waitFor();
  assert.equal(await doctor.locator('#notices li[data-event="accepted"]').count(), 1);
  await screenshot(doctor, "notices");
  await doctor.locator("#notices-read-all").click();
  await doctor.locator("#bell-count").waitFor({ state: "hidden" });
  // The request's page, open all along, was drawn again with the time fixed.
  await inState(doctor, "scheduled");

  // A doctor of another county sees neither the request nor its room.
  const strangerContext = await newContext(browser);
  const stranger = await strangerContext.newPage();
  await login(stranger, input.stranger.username, input.stranger.password);
  await open(stranger, `/requests/${id}`);
  assert.match(await text(stranger, "#refused"), /无权查看/);
  assert.ok(!(await stranger.locator("main").innerText()).includes(PATIENT), "no patient data on a refused page");
  await screenshot(stranger, "request-refused");
  await open(stranger, `/rooms/consultation-${id}`);
  await stranger.locator("#room-status").filter({ hasText: /./ }).waitFor();
  await stranger.waitForFunction(() => document.body.dataset.roomState !== "joining");
  assert.notEqual(await stranger.evaluate(() => document.body.dataset.roomState), "connected");
  assert.equal(await stranger.locator("video[data-identity]").count(), 0);
  await screenshot(stranger, "room-refused");
  await strangerContext.close();

  // The session: started, both join from the request page, each sees the other.
  await consultant.locator("#start").click();
  await inState(consultant, "in_session");
  // The doctor's page, open all along, shows the session begun.
  await inState(doctor, "in_session");
  await consultant.locator("#join").click();
  await doctor.locator("#join").click();
  for (const page of [doctor, consultant]) {
    await page.waitForURL((url) => url.pathname === `/rooms/consultation-${id}`);
    await page.locator('body[data-room-state="connected"]').waitFor({ state: "attached", timeout: 30_000 });
  }
  const seenByDoctor = await videoPlays(doctor);
  const seenByConsultant = await videoPlays(consultant);
  assert.equal(await doctor.locator("video[data-identity]").first().getAttribute("data-role"), "consultant");
  assert.equal(await consultant.locator("video[data-identity]").first().getAttribute("data-role"), "requester");
  for (const page of [doctor, consultant]) {
    await page.waitForFunction(() => ["good", "fair", "poor"].includes(document.querySelector("#quality")?.dataset.quality), null, { timeout: 20_000 });
  }
  await screenshot(doctor, "room-doctor");
  await screenshot(consultant, "room-consultant");

  // ICE fails (reported so on both sides): the offering side restarts ICE with new
  // credentials, the other answers, and the videos play on.
  const ufrags = () => Promise.all([doctor, consultant].map((page) => page.evaluate(() => window.__ufrags.length)));
  const [doctorBefore, consultantBefore] = await ufrags();
  assert.ok(doctorBefore > 0 && consultantBefore > 0);
  const fail = (on) => (page) => page.evaluate((on) => {
    for (const pc of window.__pcs) {
      if (pc.connectionState === "closed") continue;
      pc.__failed = on;
      if (on) pc.dispatchEvent(new Event("iceconnectionstatechange"));
    }
  }, on);
  await Promise.all([doctor, consultant].map(fail(true)));
  // Both sides end with new credentials: the offer's, and the answer's to it.
  await Promise.all([doctor, consultant].map((page, i) => page.waitForFunction((before) => {
    const u = window.__ufrags;
    return u.length > before && u.at(-1) !== u[before - 1];
  }, [doctorBefore, consultantBefore][i], { timeout: 20_000 })));
  await Promise.all([doctor, consultant].map(fail(false)));
  await videoPlays(doctor);
  await videoPlays(consultant);

  // The doctor mutes the microphone: the consultant's tile says so.
  await doctor.locator("#mic").click();
  await consultant.waitForFunction(() => document.querySelector('video[data-role="requester"]')?.dataset.audioMuted === "true");
  await doctor.locator("#mic").click();
  await consultant.waitForFunction(() => document.querySelector('video[data-role="requester"]')?.dataset.audioMuted === "false");

  // Audio only (a weak village link), switched on by either side, the one the offer rule
  // makes the offerer and the one that answers: no video crosses the link either way (the
  // other side is asked by a new offer to stop sending), and it comes back when switched off.
  for (const [side, other] of [[doctor, consultant], [consultant, doctor]]) {
    await side.locator("#audio-only").click();
    await side.locator('#audio-only[data-on="true"]').waitFor();
    await side.waitForTimeout(1500);
    const before = await Promise.all([side, other].map((page) => bytesIn(page, "video")));
    await side.waitForTimeout(2000);
    const after = await Promise.all([side, other].map((page) => bytesIn(page, "video")));
    assert.ok(after[0] - before[0] < 1500, `no video reaches the side that is audio-only (${before[0]} → ${after[0]} bytes)`);
    assert.ok(after[1] - before[1] < 1500, `none leaves it either (${before[1]} → ${after[1]} bytes)`);
    await side.locator("#audio-only").click();
    await side.locator('#audio-only[data-on="false"]').waitFor();
    await videoPlays(side);
    await videoPlays(other);
  }

  // Screen share: the consultant receives the doctor's screen, then the camera again.
  await doctor.locator("#screen").click();
  await consultant.waitForFunction(() => document.querySelector('video[data-role="requester"]')?.videoWidth > 640, null, { timeout: 20_000 });
  await screenshot(consultant, "room-screen-shared");
  await doctor.locator("#screen").click();
  // Every video the doctor sends is the camera again (a camera track has no display
  // surface), and the consultant's picture is no wider than the camera: the encoder may
  // send it smaller than at first when the machine is busy, never the screen's width.
  const cameraWidth = await doctor.waitForFunction(() => {
    const tracks = window.__pcs.filter((pc) => pc.connectionState !== "closed")
      .flatMap((pc) => pc.getSenders()).map((s) => s.track).filter((t) => t?.kind === "video");
    return tracks.length > 0 && tracks.every((t) => t.readyState === "live" && !t.getSettings().displaySurface)
      && tracks[0].getSettings().width;
  }, null, { timeout: 20_000 }).then((handle) => handle.jsonValue());
  assert.ok(cameraWidth <= 640, `the camera sends at most 640 pixels wide (${cameraWidth})`);
  await consultant.waitForFunction((width) => {
    const w = document.querySelector('video[data-role="requester"]')?.videoWidth;
    return w > 0 && w <= width;
  }, cameraWidth, { timeout: 20_000 }).catch(async (error) => {
    const now = await consultant.evaluate(() => document.querySelector('video[data-role="requester"]')?.videoWidth);
    throw new Error(`the consultant sees the camera again (at most ${cameraWidth} wide), not ${now}: ${error.message}`);
  });
  await videoPlays(consultant, 'video[data-role="requester"]');

  // The doctor's signaling connection drops: the page resumes it, the consultant sees
  // nobody leave, and both videos play on.
  const before = await doctor.evaluate(() => window.__sockets.length);
  await doctor.evaluate(() => window.__sockets.at(-1).close(4000, "cut"));
  await doctor.waitForFunction((before) => window.__sockets.length > before
    && window.__received.some((m) => m.includes('"welcome"') && m.includes('"resumed":true')), before, { timeout: 30_000 });
  await doctor.locator('body[data-room-state="connected"]').waitFor({ state: "attached" });
  assert.equal(await consultant.locator("#people-list li").count(), 2, "the consultant saw nobody leave");
  await videoPlays(doctor);
  await videoPlays(consultant);

  // The doctor leaves for the home page; the consultant leaves, writes and signs the
  // opinion, and the doctor's home page says an opinion waits, without a reload.
  await doctor.locator("#leave").click();
  await open(doctor, "/home");
  assert.equal(await doctor.locator("#opinions-waiting").isHidden(), true);
  await consultant.locator("#leave").click();
  await open(consultant, `/requests/${id}`);
  await consultant.locator("#opinion-body").fill(OPINION);
  await consultant.locator("#sign").click();
  // Signing asks for the password again, in the page, beside the signer block to be kept;
  // a wrong one is said beside the field and the dialog stays open.
  const dialog = consultant.locator("#sign-dialog[open]");
  await dialog.locator("#sign-signer").waitFor();
  assert.match(await text(consultant, "#sign-signer"), /林主任/);
  assert.match(await text(consultant, "#sign-signer"), /江门市中心医院/);
  await consultant.locator("#sign-password").fill("不是这个密码");
  await consultant.locator("#sign-confirm").click();
  await dialog.locator('[data-error-for="password"]:not(:empty)').waitFor();
  assert.match(await text(consultant, '[data-error-for="password"]'), /密码/);
  assert.equal(await consultant.locator('body[data-state="in_session"]').count(), 1, "nothing was signed");
  await screenshot(consultant, "sign-wrong-password");
  await consultant.locator("#sign-password").fill(input.consultant.password);
  await consultant.locator("#sign-confirm").click();
  await inState(consultant, "opinion_signed");
  assert.equal(await consultant.locator("#sign-dialog[open]").count(), 0, "the dialog closed");
  assert.match(await text(consultant, '.opinion-version[data-version="1"] .signer'), /林主任/);
  await screenshot(consultant, "request-signed");

  await doctor.locator("#opinions-waiting:not([hidden])").waitFor();
  assert.match(await text(doctor, "#opinions-waiting"), /1 份/);
  await screenshot(doctor, "home-opinion-waiting");

  // The county doctor reads it and acknowledges it.
  await open(doctor, `/requests/${id}`);
  await inState(doctor, "opinion_signed");
  assert.equal(await text(doctor, '.opinion-version[data-version="1"] .opinion'), OPINION);
  await doctor.locator("#acknowledge").click();
  await inState(doctor, "acknowledged");
  await screenshot(doctor, "request-acknowledged");

  // The print view, for the county's records: the facts, the opinion, the signer block
  // and the document hash; and a PDF of the version.
  assert.equal(await doctor.locator('.pdf-link[data-version="1"]').getAttribute("href"), `/api/v1/requests/${id}/opinions/1/pdf`);
  await doctor.locator("#print-view").click();
  await doctor.waitForURL((url) => url.pathname === `/requests/${id}/opinion`);
  await doctor.locator("#signer-block").waitFor();
  assert.match(await text(doctor, "#signer-block"), /林主任/);
  assert.match(await text(doctor, "#signer-block"), /主任医师/);
  assert.match(await text(doctor, "#signer-block"), /江门市中心医院/);
  assert.match(await text(doctor, "#document-facts"), new RegExp(PATIENT));
  assert.match(await text(doctor, "#document-facts"), /台山市人民医院/);
  assert.equal(await text(doctor, '#document-versions .opinion-version[data-version="1"] .opinion'), OPINION);
  assert.match(await text(doctor, "#document-hash"), /^[0-9a-f]{64}$/);
  assert.ok(await doctor.locator("#print").isVisible(), "a print button");
  await screenshot(doctor, "opinion-print-view");
  await open(doctor, `/requests/${id}`);
  await inState(doctor, "acknowledged");

  // An amendment is a new signed version; the first stays as it was.
  await consultant.reload();
  await inState(consultant, "acknowledged");
  await consultant.locator("#opinion-body").fill(`${OPINION}补充：复诊时复查血常规。`);
  await consultant.locator("#sign").click();
  await consultant.locator("#sign-password").fill(input.consultant.password);
  await consultant.locator("#sign-confirm").click();
  await inState(consultant, "opinion_signed");
  // The doctor's page, still open on the request, shows the amendment by itself.
  await inState(doctor, "opinion_signed");
  assert.equal(await text(doctor, '.opinion-version[data-version="1"] .opinion'), OPINION);
  assert.match(await text(doctor, '.opinion-version[data-version="2"] .opinion'), /补充：复诊时复查血常规/);
  await doctor.locator("#acknowledge").click();
  await inState(doctor, "acknowledged");
  await screenshot(doctor, "request-amended");

  // Everything the doctor was told, on the notifications page reached from the bell; and
  // e-mail, which this gateway cannot send (no mail server): the page says so beside the
  // choice, and keeps the address typed.
  await doctor.locator("#bell").click();
  await doctor.locator("#notices-page").click();
  await doctor.waitForURL((url) => url.pathname === "/notices");
  await doctor.locator('#notice-list li[data-event="opinion_signed"]').first().waitFor();
  for (const event of ["accepted", "scheduled", "in_session"]) {
    assert.equal(await doctor.locator(`#notice-list li[data-event="${event}"]`).count(), 1, event);
  }
  const email = doctor.locator("#email-form");
  await email.locator('[name="email_notices"]').check();
  await email.locator('button[type="submit"]').click();
  await email.locator('[data-error-for="email"]:not(:empty)').waitFor();
  await email.locator('[name="email"]').fill("wang@taishan.example");
  await email.locator('button[type="submit"]').click();
  await email.locator('[data-error-for="email_notices"]:not(:empty)').waitFor();
  assert.equal(await email.locator('[name="email"]').inputValue(), "wang@taishan.example");
  await email.locator('[name="email_notices"]').uncheck();
  await email.locator('button[type="submit"]').click();
  await doctor.locator("#notices-status.done").waitFor();
  await screenshot(doctor, "notices-page");
  return { id, slot, seenByDoctor, seenByConsultant };
});
