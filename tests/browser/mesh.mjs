// Three people in one consultation room, peer to peer (a mesh): the county doctor, the
// village doctor accompanying the patient, and the consultant. Each sees the other two's
// video playing. The village doctor, on the weakest link, goes audio only: no video
// reaches it and none leaves it, while the other two still see each other; switched
// back, every video plays again. Then the village doctor leaves, and the other two see
// it go and play on.
// Input: {"doctor": {username, password}, "accompanying": {…}, "consultant": {…}, "id"}.
import {
  assert, input, scenario, newContext, login, open, screenshot, keepPeerConnections, bytesIn, framesShown, videoPlays,
} from "./lib.mjs";

/** The tile of `role` on `page`. */
const tile = (role) => `video[data-role="${role}"]`;

await scenario("mesh", async ({ browser }) => {
  const room = `/rooms/consultation-${input.id}`;
  const pages = {};
  for (const who of ["doctor", "accompanying", "consultant"]) {
    const context = await newContext(browser);
    await context.addInitScript(keepPeerConnections);
    const page = await context.newPage();
    await login(page, input[who].username, input[who].password);
    await open(page, room);
    await page.locator('body[data-room-state="connected"]').waitFor({ state: "attached", timeout: 30_000 });
    pages[who] = page;
  }
  const { doctor, accompanying, consultant } = pages;
  const sees = { doctor: ["accompanying", "consultant"], accompanying: ["requester", "consultant"], consultant: ["requester", "accompanying"] };
  for (const [who, roles] of Object.entries(sees)) {
    for (const role of roles) await videoPlays(pages[who], tile(role));
    assert.equal(await pages[who].locator("#people-list li").count(), 3, `${who} lists three people`);
  }
  await screenshot(doctor, "room-of-three");

  // The village doctor goes audio only.
  await accompanying.locator("#audio-only").click();
  await accompanying.locator('#audio-only[data-on="true"]').waitFor();
  await accompanying.waitForTimeout(1500);
  const received = await bytesIn(accompanying, "video");
  const shown = await Promise.all([framesShown(doctor, tile("accompanying")), framesShown(consultant, tile("accompanying"))]);
  await accompanying.waitForTimeout(2000);
  const more = (await bytesIn(accompanying, "video")) - received;
  assert.ok(more < 1500, `no video reaches the village doctor while audio only (${more} bytes)`);
  const after = await Promise.all([framesShown(doctor, tile("accompanying")), framesShown(consultant, tile("accompanying"))]);
  assert.ok(after[0] - shown[0] <= 2 && after[1] - shown[1] <= 2,
    `the village doctor's video stops reaching the others (${shown} → ${after} frames)`);
  await videoPlays(doctor, tile("consultant"));
  await videoPlays(consultant, tile("requester"));
  await screenshot(accompanying, "room-of-three-audio-only");

  await accompanying.locator("#audio-only").click();
  await accompanying.locator('#audio-only[data-on="false"]').waitFor();
  for (const [who, roles] of Object.entries(sees)) {
    for (const role of roles) await videoPlays(pages[who], tile(role));
  }

  // The village doctor leaves: the others see it go, and see each other still.
  await accompanying.locator("#leave").click();
  for (const page of [doctor, consultant]) {
    await page.waitForFunction(() => !document.querySelector('video[data-role="accompanying"]')
      && document.querySelectorAll("#people-list li").length === 2, null, { timeout: 20_000 });
  }
  await videoPlays(doctor, tile("consultant"));
  await videoPlays(consultant, tile("requester"));
  return { id: input.id };
});
