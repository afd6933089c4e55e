// Two people meet in a consultation room through the TURN server only, as on a hospital
// network that lets nothing else through: each browser is made to use relayed
// candidates alone (`iceTransportPolicy: "relay"`), with the TURN credentials the
// gateway hands out at join. Both see the other's video playing, over a relayed pair.
// Input: {"doctor": {username, password}, "consultant": {…}, "id"}.
import { assert, input, scenario, newContext, login, open, screenshot } from "./lib.mjs";

/** Relayed candidates only, as the network allows; the connections kept at hand. */
function relayOnly() {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Native {
    constructor(config = {}, ...rest) {
      super({ ...config, iceTransportPolicy: "relay" }, ...rest);
      window.__pcs.push(this);
    }
  };
}

/** The candidate types of the pair each open connection uses, e.g. ["relay/relay"]. */
function selectedPairs(page) {
  return page.evaluate(async () => {
    const pairs = [];
    for (const pc of window.__pcs) {
      if (pc.connectionState === "closed") continue;
      const stats = await pc.getStats();
      stats.forEach((r) => {
        if (r.type !== "transport" || !r.selectedCandidatePairId) return;
        const pair = stats.get(r.selectedCandidatePairId);
        const local = stats.get(pair?.localCandidateId);
        const remote = stats.get(pair?.remoteCandidateId);
        pairs.push(`${local?.candidateType}/${remote?.candidateType}`);
      });
    }
    return pairs;
  });
}

async function remotePlays(page) {
  await page.waitForFunction(() => {
    const v = document.querySelector("video[data-identity]");
    return v && v.videoWidth > 0 && v.readyState >= 2;
  }, null, { timeout: 30_000 });
  const frames = () => page.evaluate(() => document.querySelector("video[data-identity]").getVideoPlaybackQuality().totalVideoFrames);
  const before = await frames();
  await page.waitForTimeout(1500);
  const after = await frames();
  assert.ok(after > before, `the remote video plays (${before} → ${after} frames)`);
}

await scenario("relay", async ({ browser }) => {
  const pages = [];
  for (const who of ["doctor", "consultant"]) {
    const context = await newContext(browser);
    await context.addInitScript(relayOnly);
    const page = await context.newPage();
    await login(page, input[who].username, input[who].password);
    await open(page, `/rooms/consultation-${input.id}`);
    await page.locator('body[data-room-state="connected"]').waitFor({ state: "attached", timeout: 30_000 });
    pages.push(page);
  }
  for (const page of pages) {
    await remotePlays(page);
    const servers = await page.evaluate(() => window.__pcs[0]?.getConfiguration().iceServers ?? []);
    assert.ok(servers.some((s) => [].concat(s.urls).some((u) => u.startsWith("turn:")) && s.username && s.credential),
      `the page was given TURN credentials: ${JSON.stringify(servers.map((s) => s.urls))}`);
    const pairs = await selectedPairs(page);
    assert.ok(pairs.length > 0 && pairs.every((p) => p === "relay/relay"), `every pair is relayed: ${pairs}`);
  }
  await screenshot(pages[0], "room-relayed");
  return {};
});
