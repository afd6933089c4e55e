// A remote ward round: the supporting team's leader and a doctor of the ward's hospital
// find it on their home pages, join its room (media through the forwarding unit, where
// everyone sends), and each sees the other's video playing.
// Input: {"leader": {username, password}, "ward_doctor": {…}, "round": id}.
import { assert, input, scenario, newContext, login, open, screenshot } from "./lib.mjs";

/**
 * Some video the unit forwards to `page` plays: a slot's frames advance by several within
 * 1.5 s. Slots woken by the unit's bandwidth probes show a frame or two and stop, so
 * the check looks for up to 20 s for one that keeps going.
 */
async function forwardedVideoPlays(page) {
  const frames = () => page.evaluate(() => Object.fromEntries([...document.querySelectorAll("video[data-slot]")]
    .map((v) => [v.dataset.slot, v.getVideoPlaybackQuality().totalVideoFrames])));
  const seen = [];
  for (let tries = 0; tries < 13; tries++) {
    const a = await frames();
    await page.waitForTimeout(1500);
    const b = await frames();
    seen.push(b);
    if (Object.entries(b).some(([slot, n]) => n - (a[slot] ?? 0) >= 5)) return;
  }
  const stats = await page.evaluate(async () => {
    const out = [];
    for (const pc of window.__pcs ?? []) {
      const r = await pc.getStats();
      r.forEach((x) => { if ((x.type === "inbound-rtp" || x.type === "outbound-rtp") && x.kind === "video") out.push({ type: x.type, mid: x.mid, rid: x.rid, packets: x.packetsReceived ?? x.packetsSent, frames: x.framesDecoded ?? x.framesSent, keys: x.keyFramesDecoded ?? x.keyFramesEncoded, pli: x.pliCount, nack: x.nackCount, w: x.frameWidth }); });
      out.push({ state: pc.connectionState, sdp: (pc.remoteDescription?.sdp ?? "").split("\n").filter((l) => /^a=(mid|sendrecv|recvonly|sendonly|inactive|ssrc:\d+ msid)/.test(l)).join(" | ") });
    }
    return out;
  });
  assert.fail(`no forwarded video plays on ${page.url()} ${await page.evaluate(() => document.querySelector("#people-list li.self")?.dataset.role)}: ${JSON.stringify(seen)} ${JSON.stringify(stats)}`);
}

await scenario("ward_round", async ({ browser }) => {
  const pages = [];
  for (const who of [input.leader, input.ward_doctor]) {
    const context = await newContext(browser);
    await context.addInitScript(() => {
      const Native = window.RTCPeerConnection;
      window.__pcs = [];
      window.RTCPeerConnection = class extends Native {
        constructor(...a) { super(...a); window.__pcs.push(this); }
      };
    });
    const page = await context.newPage();
    await login(page, who.username, who.password);
    const item = page.locator(`#upcoming li[data-room="ward-round-${input.round}"]`);
    await item.waitFor();
    assert.match(await item.innerText(), /内科病区/);
    pages.push(page);
  }
  await screenshot(pages[0], "home-leader");
  for (const page of pages) {
    await page.locator(`#upcoming li[data-room="ward-round-${input.round}"] a.join`).click();
    await page.locator('body[data-room-state="connected"]').waitFor({ state: "attached", timeout: 30_000 });
  }
  for (const page of pages) await forwardedVideoPlays(page);
  assert.equal(await pages[0].locator("#people-list li").count(), 2);
  await screenshot(pages[0], "ward-round-leader");
  await screenshot(pages[1], "ward-round-ward");
  return {};
});
