// A remote ward round: the supporting team's leader and a doctor of the ward's hospital
// find it on their home pages, join its room (media through the forwarding unit, where
// everyone sends), and each sees the other's video playing.
// Input: {"leader": {username, password}, "ward_doctor": {…}, "round": id}.
import { assert, input, scenario, newContext, login, open, screenshot } from "./lib.mjs";

/** Some video the unit forwards to `page` plays: its frames advance. */
async function forwardedVideoPlays(page) {
  const playing = () => page.evaluate(() => [...document.querySelectorAll("video[data-slot]")]
    .filter((v) => v.videoWidth > 0)
    .map((v) => ({ slot: v.dataset.slot, frames: v.getVideoPlaybackQuality().totalVideoFrames })));
  await page.waitForFunction(() => [...document.querySelectorAll("video[data-slot]")].some((v) => v.videoWidth > 0), null, { timeout: 30_000 });
  const a = await playing();
  await page.waitForTimeout(1500);
  const b = await playing();
  assert.ok(b.some((x) => (a.find((y) => y.slot === x.slot)?.frames ?? 0) < x.frames), `forwarded video plays: ${JSON.stringify(a)} → ${JSON.stringify(b)}`);
}

await scenario("ward_round", async ({ browser }) => {
  const pages = [];
  for (const who of [input.leader, input.ward_doctor]) {
    const context = await newContext(browser);
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
