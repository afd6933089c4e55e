// Two people meet in a consultation room through the TURN server only, as on a hospital
// network that lets nothing else through: each browser is made to use relayed
// candidates alone (`iceTransportPolicy: "relay"`), with the TURN credentials the
// gateway hands out at join. Both see the other's video playing, over a relayed pair.
// Then the TURN server stops answering for a while: the connection drops for real, the
// pages restart ICE, and the videos play on once it answers again.
// Input: {"doctor": {username, password}, "consultant": {…}, "id", "turn_pid"}.
import { assert, input, scenario, newContext, login, open, screenshot, keepPeerConnections, videoPlays } from "./lib.mjs";

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

await scenario("relay", async ({ browser }) => {
  const pages = [];
  for (const who of ["doctor", "consultant"]) {
    const context = await newContext(browser);
    // Relayed candidates only, as the network allows.
    await context.addInitScript(keepPeerConnections, { iceTransportPolicy: "relay" });
    const page = await context.newPage();
    await login(page, input[who].username, input[who].password);
    await open(page, `/rooms/consultation-${input.id}`);
    await page.locator('body[data-room-state="connected"]').waitFor({ state: "attached", timeout: 30_000 });
    pages.push(page);
  }
  for (const page of pages) {
    await videoPlays(page);
    const servers = await page.evaluate(() => window.__pcs[0]?.getConfiguration().iceServers ?? []);
    assert.ok(servers.some((s) => [].concat(s.urls).some((u) => u.startsWith("turn:")) && s.username && s.credential),
      `the page was given TURN credentials: ${JSON.stringify(servers.map((s) => s.urls))}`);
    const pairs = await selectedPairs(page);
    assert.ok(pairs.length > 0 && pairs.every((p) => p === "relay/relay"), `every pair is relayed: ${pairs}`);
  }
  await screenshot(pages[0], "room-relayed");

  // The TURN server stops answering, as a link that dies would (the process is stopped,
  // not told): both pages see their connection drop for real and restart ICE with new
  // credentials; once the server answers again, the videos play on.
  const ufrags = () => Promise.all(pages.map((page) => page.evaluate(() => window.__pcs
    .filter((pc) => pc.connectionState !== "closed")
    .map((pc) => /a=ice-ufrag:(\S+)/.exec(pc.localDescription?.sdp ?? "")?.[1]))));
  const before = await ufrags();
  process.kill(input.turn_pid, "SIGSTOP");
  try {
    for (const page of pages) {
      await page.waitForFunction(() => window.__pcs.some((pc) => ["disconnected", "failed"].includes(pc.iceConnectionState)),
        null, { timeout: 30_000 });
    }
    // The offering side offers again with new credentials, and the other answers so.
    for (const [i, page] of pages.entries()) {
      await page.waitForFunction((before) => {
        const now = window.__pcs.filter((pc) => pc.connectionState !== "closed")
          .map((pc) => /a=ice-ufrag:(\S+)/.exec(pc.localDescription?.sdp ?? "")?.[1]);
        return now.length > 0 && now.every((u) => u && !before.includes(u));
      }, before[i], { timeout: 30_000, polling: 500 });
    }
  } finally {
    process.kill(input.turn_pid, "SIGCONT");
  }
  const after = await ufrags();
  for (const [i, page] of pages.entries()) {
    assert.ok(after[i].every((u) => !before[i].includes(u)), `new ICE credentials on both sides (${before[i]} → ${after[i]})`);
    await page.waitForFunction(() => window.__pcs.some((pc) => ["connected", "completed"].includes(pc.iceConnectionState)),
      null, { timeout: 45_000 });
    // The picture settles within half a minute of the link coming back (it may stall as
    // the old and the new paths sort themselves out): three seconds in a row with frames.
    await page.waitForFunction(() => {
      const frames = document.querySelector("video[data-identity]").getVideoPlaybackQuality().totalVideoFrames;
      const s = (window.__steady ??= { frames, run: 0 });
      s.run = frames > s.frames ? s.run + 1 : 0;
      s.frames = frames;
      return s.run >= 3;
    }, null, { timeout: 30_000, polling: 1_000 });
    await videoPlays(page);
  }
  return {};
});
