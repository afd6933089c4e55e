// Three people in one consultation room, peer to peer (a mesh): the county doctor, the
// village doctor accompanying the patient, and the consultant. Each sees the other two's
// video playing. The village doctor, on the weakest link, goes audio only: no video
// reaches it and none leaves it, while the other two still see each other; switched
// back, every video plays again. Then the village doctor leaves, and the other two see
// it go and play on.
// Input: {"doctor": {username, password}, "accompanying": {…}, "consultant": {…}, "id"}.
import { assert, input, scenario, newContext, login, open, screenshot } from "./lib.mjs";

/** Keeps the page's peer connections at hand. */
function watch() {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      window.__pcs.push(this);
    }
  };
}

/** Bytes of video the page has received so far over its open peer connections. */
function videoBytesIn(page) {
  return page.evaluate(async () => {
    let total = 0;
    for (const pc of window.__pcs) {
      if (pc.connectionState === "closed") continue;
      (await pc.getStats()).forEach((r) => {
        if (r.type === "inbound-rtp" && r.kind === "video") total += r.bytesReceived ?? 0;
      });
    }
    return total;
  });
}

/** Frames shown so far by the tile of `role` on `page` (0 when there is none). */
function frames(page, role) {
  return page.evaluate((role) => {
    const v = document.querySelector(`video[data-role="${role}"]`);
    return v ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
  }, role);
}

/** The tile of `role` on `page` plays: it has a picture, and its frames advance. */
async function plays(page, role) {
  await page.waitForFunction((role) => {
    const v = document.querySelector(`video[data-role="${role}"]`);
    return v && v.videoWidth > 0 && v.readyState >= 2;
  }, role, { timeout: 30_000 });
  const before = await frames(page, role);
  await page.waitForTimeout(1500);
  const after = await frames(page, role);
  assert.ok(after > before, `${role}'s video plays (${before} → ${after} frames)`);
}

await scenario("mesh", async ({ browser }) => {
  const room = `/rooms/consultation-${input.id}`;
  const pages = {};
  for (const who of ["doctor", "accompanying", "consultant"]) {
    const context = await newContext(browser);
    await context.addInitScript(watch);
    const page = await context.newPage();
    await login(page, input[who].username, input[who].password);
    await open(page, room);
    await page.locator('body[data-room-state="connected"]').waitFor({ state: "attached", timeout: 30_000 });
    pages[who] = page;
  }
  const { doctor, accompanying, consultant } = pages;
  const sees = { doctor: ["accompanying", "consultant"], accompanying: ["requester", "consultant"], consultant: ["requester", "accompanying"] };
  for (const [who, roles] of Object.entries(sees)) {
    for (const role of roles) await plays(pages[who], role);
    assert.equal(await pages[who].locator("#people-list li").count(), 3, `${who} lists three people`);
  }
  await screenshot(doctor, "room-of-three");

  // The village doctor goes audio only.
  await accompanying.locator("#audio-only").click();
  await accompanying.locator('#audio-only[data-on="true"]').waitFor();
  await accompanying.waitForTimeout(1500);
  const received = await videoBytesIn(accompanying);
  const shown = await Promise.all([frames(doctor, "accompanying"), frames(consultant, "accompanying")]);
  await accompanying.waitForTimeout(2000);
  const more = (await videoBytesIn(accompanying)) - received;
  assert.ok(more < 1500, `no video reaches the village doctor while audio only (${more} bytes)`);
  const after = await Promise.all([frames(doctor, "accompanying"), frames(consultant, "accompanying")]);
  assert.ok(after[0] - shown[0] <= 2 && after[1] - shown[1] <= 2,
    `the village doctor's video stops reaching the others (${shown} → ${after} frames)`);
  await plays(doctor, "consultant");
  await plays(consultant, "requester");
  await screenshot(accompanying, "room-of-three-audio-only");

  await accompanying.locator("#audio-only").click();
  await accompanying.locator('#audio-only[data-on="false"]').waitFor();
  for (const [who, roles] of Object.entries(sees)) {
    for (const role of roles) await plays(pages[who], role);
  }

  // The village doctor leaves: the others see it go, and see each other still.
  await accompanying.locator("#leave").click();
  for (const page of [doctor, consultant]) {
    await page.waitForFunction(() => !document.querySelector('video[data-role="accompanying"]')
      && document.querySelectorAll("#people-list li").length === 2, null, { timeout: 20_000 });
  }
  await plays(doctor, "consultant");
  await plays(consultant, "requester");
  return { id: input.id };
});
