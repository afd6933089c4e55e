// The video room of a booked session (`/rooms/consultation-12`, `ward-round-3`,
// `teaching-5`): before it opens, the lobby (`room_lobby.js`); then the local camera, one
// tile per remote participant (or, where the forwarding unit carries the media, per video
// it forwards), the controls, and beside them who is there by name, title and
// institution (in classrooms with raised hands), the case, the chat and the opinion
// (`room_side.js`); after it, what happened and the way to the request. The connection
// itself is `../room.js`.
//
// For tests: `#room-summary` (after the session: `[data-phase]`, `#together`, `#to-request`),
// `#room-status` (the state in words), `body[data-room-state]` (joining,
// connected, reconnecting, left, replaced, removed, full, refused, closed), `#quality`
// (`data-quality`), `video#local`, `video[data-identity][data-role]` per remote tile
// (where the unit forwards: per slot with video in it, with `data-slot`; the presenter's
// identity in classrooms), `data-audio-muted`, `data-video-muted` (peer to peer), buttons `#mic`, `#camera`, `#audio-only`,
// `#screen`, `#hand`, `#leave` (`data-on` says whether the thing is on), and for
// moderators `button.grant[data-identity]` per raised hand and `button.remove[data-identity]`
// per participant.
import { t } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill } from "../dom.js";
import { RoomClient } from "../room.js";
import { lobby, chinaTime, savedDevices } from "./room_lobby.js";
import { sidePanel } from "./room_side.js";

const KINDS = [
  ["consultation-", "consultation"],
  ["ward-round-", "ward_round"],
  ["teaching-", "teaching"],
];

/** States after which the room is over for this page. */
const OVER = ["left", "replaced", "removed", "full", "refused", "closed"];

function setRoomState(state) {
  document.body.dataset.roomState = state;
}

function roleName(role) {
  return role ? t(`room.role.${role}`) : t("room.role.unknown");
}

/** A participant's name, or their role where the room does not say it. */
function nameOf(p) {
  return p.name || roleName(p.role);
}

/**
 * What happened, once the room is over for the page: for a consultation the request's
 * state, how long people were there together, and the way to the request.
 */
async function summary(root, session, brief, title, state = null, said = null) {
  setRoomState(state ?? brief.phase);
  const parts = [];
  const statusLine = state
    ? h("p", { id: "room-status", role: "status", class: state === "left" ? null : "problem" }, said ?? t(`room.status.${state}`))
    : null;
  if (!state || brief.phase !== "open") {
    parts.push(h("p", { class: "lead" }, t(`room.summary.${brief.phase === "open" ? "over" : brief.phase}`, {
      start: chinaTime(brief.starts_at), end: chinaTime(brief.ends_at),
    })));
  }
  if (brief.kind === "consultation" && brief.state) {
    parts.push(h("p", { id: "request-state" }, t("room.summary.state", { state: t(`state.${brief.state}`) })));
  }
  const { status, data } = await api("GET", `/sessions/${encodeURIComponent(session)}/attendance`);
  if (status === 200 && data.stretches.length) {
    parts.push(h("p", { id: "together", "data-seconds": data.together_seconds },
      data.together_seconds < 60
        ? t("room.summary.together_brief")
        : t("room.summary.together", { minutes: Math.round(data.together_seconds / 60) })));
  }
  const again = state && ["left", "replaced", "closed"].includes(state) && brief.phase === "open"
    ? h("button", { type: "button", id: "rejoin", class: "primary", onclick: () => location.reload() }, t("room.rejoin"))
    : null;
  fill(root, h("section", { id: "room-summary", class: "room over", "data-phase": brief.phase },
    h("header", { class: "room-head" }, h("h1", {}, title), statusLine),
    parts,
    h("div", { class: "actions" }, again,
      brief.request_id ? h("a", { class: "button", id: "to-request", href: `/requests/${brief.request_id}` }, t("room.summary.request")) : null,
      h("a", { href: "/home" }, t("room.home")))));
}

export default async function render(root, { me, segments }) {
  const session = segments[1] ?? "";
  const kind = KINDS.find(([prefix]) => session.startsWith(prefix))?.[1] ?? "consultation";
  const number = session.slice(session.lastIndexOf("-") + 1);
  const title = t(`room.title.${kind}`, { id: number });

  const { status: briefStatus, data: brief } = await api("GET", `/sessions/${encodeURIComponent(session)}`);
  if (briefStatus !== 200) {
    setRoomState("refused");
    fill(root, h("section", { class: "room over" },
      h("header", { class: "room-head" }, h("h1", {}, title),
        h("p", { id: "room-status", role: "status", class: "problem" }, problemText(briefStatus, brief))),
      h("div", { class: "actions" }, h("a", { href: "/home" }, t("room.home")))));
    return;
  }
  if (brief.phase === "early") {
    // The page is drawn: the lobby waits, and lets the person in when the room opens.
    setRoomState("lobby");
    lobby(root, session, brief, title).then((opened) => enter(root, me, session, opened, title));
    return;
  }
  await enter(root, me, session, brief, title);
}

/** Into the room of `brief`, if it is open; else what happened. */
async function enter(root, me, session, brief, title) {
  if (brief.phase !== "open") return summary(root, session, brief, title);

  const client = new RoomClient(session);
  client.devices = savedDevices();
  const status = h("p", { id: "room-status", role: "status" }, t("room.status.joining"));
  const quality = h("span", { id: "quality", class: "quality", "data-quality": "unknown" }, t("room.quality.unknown"));
  const notice = h("p", { id: "room-notice", class: "problem", role: "alert" });
  const localVideo = h("video", { id: "local", autoplay: true, playsinline: true, muted: true });
  localVideo.muted = true;
  const localCaption = h("figcaption", {});
  const localTile = h("figure", { class: "tile self empty" }, localVideo,
    h("span", { class: "placeholder" }, t("room.tile.camera_off")), localCaption);
  const tiles = h("div", { id: "tiles", class: "tiles", "data-count": "0" }, localTile);
  const sounds = h("div", { class: "room-sounds", "aria-hidden": "true" });
  const peopleList = h("ul", { id: "people-list" });
  const peopleTitle = h("h2", {}, t("room.people.title", { n: 1 }));
  const people = h("section", { id: "people", class: "side-panel" }, peopleTitle, peopleList);
  const side = sidePanel(brief, me, people);

  const button = (id, onclick, cls = null) => h("button", { type: "button", id, class: cls, onclick });
  const mic = button("mic", () => client.toggleMic());
  const camera = button("camera", () => client.toggleCamera());
  const audioOnly = button("audio-only", () => client.setAudioOnly(!client.audioOnly));
  const screen = button("screen", () => client.toggleScreen());
  const hand = button("hand", () => client.raiseHand(!client.handRaised));
  const sound = button("sound", () => unblockSound(), "primary");
  const leave = button("leave", () => client.leave(), "danger");
  fill(leave, t("room.leave"));
  fill(sound, t("room.sound"));
  hand.hidden = true;
  sound.hidden = true;
  if (!navigator.mediaDevices?.getDisplayMedia) screen.hidden = true;
  const controls = h("div", { class: "room-controls", role: "toolbar", "aria-label": t("room.controls") },
    mic, camera, audioOnly, screen, hand, sound, leave);

  const head = h("header", { class: "room-head" },
    h("h1", {}, title, brief.topic ? h("span", { class: "muted" }, ` · ${brief.topic}`) : null), status, quality);
  const room = h("section", { class: "room", "data-session": session },
    head,
    notice,
    h("div", { class: "room-body" }, h("div", { class: "room-stage" }, tiles, sounds), side.element),
    controls);

  /** Remote tiles (and, where the unit forwards, audio slots) by key. */
  const remotes = new Map();
  /** Media elements the browser would not start with sound. */
  const blocked = new Set();
  let noticeTimer = null;

  function say(text, { problem = false } = {}) {
    fill(status, text);
    status.classList.toggle("problem", problem);
  }

  function tell(text) {
    fill(notice, text);
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => fill(notice), 8_000);
  }

  function play(el) {
    const started = el.play();
    if (!started) return;
    started.catch((e) => {
      if (e.name !== "NotAllowedError") return;
      // No sound before the user touches the page: play muted, offer a button for sound.
      el.muted = true;
      blocked.add(el);
      sound.hidden = false;
      el.play().catch(() => {});
    });
  }

  function unblockSound() {
    for (const el of blocked) {
      el.muted = false;
      el.play().catch(() => {});
    }
    blocked.clear();
    sound.hidden = true;
  }

  function attach(el, stream) {
    const ids = (s) => (s ? s.getTracks().map((x) => x.id).sort().join() : "");
    if (ids(el.srcObject) === ids(stream)) return;
    el.srcObject = stream;
    if (stream) play(el);
  }

  function connectedText() {
    const n = client.participants.size;
    return n === 0 ? t("room.status.waiting") : t("room.status.connected", { n: n + 1 });
  }

  // ---- tiles -----------------------------------------------------------------------

  function countTiles() {
    tiles.dataset.count = String([...remotes.values()].filter((r) => r.kind === "video" && !r.fig.hidden).length);
  }

  /**
   * The tile of `key`. A participant's tile (peer to peer) shows from the start; a slot
   * the unit forwards into shows, with whose it is, once video decodes in it (the unit's
   * bandwidth probes wake up empty slots too).
   */
  function tile(key, { identity = null, role = null, slot = null } = {}) {
    let r = remotes.get(key);
    if (!r || r.kind !== "video") {
      const video = h("video", { autoplay: true, playsinline: true, dataset: slot !== null ? { slot } : {} });
      const name = h("span", { class: "name" });
      const badges = h("span", { class: "badges" });
      const placeholder = h("span", { class: "placeholder" }, t("room.tile.waiting"));
      const fig = h("figure", { class: "tile" }, video, placeholder, h("figcaption", {}, name, badges));
      r = { kind: "video", fig, video, name, badges, placeholder, slot: slot !== null, identity: null, role: null };
      const seen = () => {
        const has = video.videoWidth > 0;
        fig.classList.toggle("has-video", has);
        if (has && r.slot && fig.hidden) {
          fig.hidden = false;
          label(r);
          countTiles();
        }
      };
      video.addEventListener("resize", seen);
      video.addEventListener("loadeddata", seen);
      fig.hidden = r.slot;
      tiles.append(fig);
      remotes.set(key, r);
    }
    if (identity) r.identity = identity;
    if (role) r.role = role;
    if (!r.slot || !r.fig.hidden) label(r);
    countTiles();
    return r;
  }

  function label(r) {
    if (r.identity) r.video.dataset.identity = r.identity;
    if (r.role) r.video.dataset.role = r.role;
    const p = r.identity ? client.participants.get(r.identity) : null;
    fill(r.name, p?.name ? `${p.name}（${roleName(r.role)}）` : r.role ? roleName(r.role) : t("room.tile.forwarded"));
  }

  function badgesOf(p) {
    // Where the unit forwards, trainees send nothing unless given the microphone: their
    // mute state says nothing.
    const listener = client.forwarded && p.role === "trainee";
    return [
      p.audioMuted && (!listener || p.mic) ? h("span", { class: "badge" }, t("room.badge.muted")) : null,
      p.videoMuted && !listener ? h("span", { class: "badge" }, t("room.badge.camera_off")) : null,
      p.hand ? h("span", { class: "badge hand" }, t("room.badge.hand")) : null,
      p.mic && client.forwarded ? h("span", { class: "badge speaking" }, t("room.badge.speaking")) : null,
    ];
  }

  function removeRemote(key) {
    const r = remotes.get(key);
    if (!r) return;
    remotes.delete(key);
    const el = r.kind === "video" ? r.video : r.audio;
    el.srcObject = null;
    blocked.delete(el);
    (r.kind === "video" ? r.fig : r.audio).remove();
    countTiles();
  }

  // ---- who is there ----------------------------------------------------------------

  function drawPeople() {
    const me = {
      identity: client.identity, role: client.role, hand: client.handRaised,
      name: client.admission?.name, about: client.admission?.about,
      mic: client.micGranted, ...mutedSelf(),
    };
    const everyone = [me, ...client.participants.values()];
    fill(peopleTitle, t("room.people.title", { n: everyone.length }));
    const moderating = client.grants.moderate && client.forwarded;
    fill(peopleList, everyone.map((p) => {
      const self = p.identity === client.identity;
      const actions = [];
      if (moderating && !self && p.hand && !p.mic) {
        actions.push(h("button", {
          type: "button", class: "grant primary", "data-identity": p.identity,
          onclick: () => client.grant(p.identity, true),
        }, t("room.grant")));
      }
      if (moderating && !self && p.mic) {
        actions.push(h("button", {
          type: "button", class: "revoke", "data-identity": p.identity,
          onclick: () => client.grant(p.identity, false),
        }, t("room.revoke")));
      }
      if (client.grants.moderate && !self) {
        actions.push(h("button", {
          type: "button", class: "remove danger", "data-identity": p.identity,
          onclick: () => {
            if (confirm(t("room.remove_confirm", { role: nameOf(p) }))) client.remove(p.identity);
          },
        }, t("room.remove")));
      }
      return h("li", { "data-identity": p.identity, "data-role": p.role ?? "", class: self ? "self" : null },
        h("span", { class: "name" }, self ? t("room.people.me", { name: nameOf(p) }) : nameOf(p)),
        p.about ? h("span", { class: "muted about" }, p.about) : null,
        h("span", { class: "badge role" }, roleName(p.role)),
        h("span", { class: "badges" }, badgesOf(p)),
        actions.length ? h("span", { class: "actions" }, actions) : null);
    }));
  }

  function mutedSelf() {
    return {
      audioMuted: !(client.mic && client.micOn && client.mayTalk),
      videoMuted: !(client.grants.publish && client.cam && !client.audioOnly && (client.sharing || client.camOn)),
    };
  }

  // ---- controls --------------------------------------------------------------------

  function drawControls() {
    const micUsable = Boolean(client.mic) && client.mayTalk;
    mic.disabled = !micUsable;
    mic.dataset.on = String(micUsable && client.micOn);
    fill(mic, micUsable && client.micOn ? t("room.mic.off") : t("room.mic.on"));
    camera.disabled = !client.cam || client.audioOnly;
    camera.dataset.on = String(Boolean(client.cam) && client.camOn);
    fill(camera, client.cam && client.camOn ? t("room.camera.off") : t("room.camera.on"));
    audioOnly.dataset.on = String(client.audioOnly);
    audioOnly.setAttribute("aria-pressed", String(client.audioOnly));
    fill(audioOnly, client.audioOnly ? t("room.audio_only.off") : t("room.audio_only.on"));
    screen.hidden = !navigator.mediaDevices?.getDisplayMedia || !client.grants.publish;
    screen.disabled = client.audioOnly;
    screen.dataset.on = String(client.sharing);
    screen.setAttribute("aria-pressed", String(client.sharing));
    fill(screen, client.sharing ? t("room.screen.off") : t("room.screen.on"));
    hand.hidden = !(client.forwarded && !client.grants.publish);
    hand.disabled = client.micGranted;
    hand.dataset.on = String(client.handRaised);
    hand.setAttribute("aria-pressed", String(client.handRaised));
    fill(hand, client.handRaised ? t("room.hand.lower") : t("room.hand.raise"));
    room.classList.toggle("audio-only", client.audioOnly);
    localTile.classList.toggle("video-off", mutedSelf().videoMuted);
    fill(localCaption,
      h("span", { class: "name" }, t("room.tile.me")),
      h("span", { class: "badges" }, badgesOf({ ...mutedSelf(), videoMuted: false })));
    drawPeople();
  }

  // ---- what the client says ----------------------------------------------------------

  client.addEventListener("state", ({ detail }) => {
    setRoomState(detail.state);
    switch (detail.state) {
      case "joining": say(t("room.status.joining")); break;
      case "connecting": say(t("room.status.connecting")); break;
      case "connected": say(connectedText()); break;
      case "reconnecting": say(t("room.status.reconnecting", { attempt: detail.attempt ?? 1 }), { problem: true }); break;
      case "refused": say(problemText(detail.status, detail.problem), { problem: true }); break;
      default: say(t(`room.status.${detail.state}`), { problem: detail.state !== "left" });
    }
    if (OVER.includes(detail.state) && room.isConnected) over(detail.state);
  });

  client.addEventListener("welcome", () => {
    drawControls();
  });

  client.addEventListener("participant", ({ detail: p }) => {
    if (!client.forwarded) {
      const r = tile(p.identity, { identity: p.identity, role: p.role });
      fill(r.badges, badgesOf(p));
      r.video.dataset.audioMuted = String(Boolean(p.audioMuted));
      r.video.dataset.videoMuted = String(Boolean(p.videoMuted));
      r.fig.classList.toggle("video-off", Boolean(p.videoMuted));
      fill(r.placeholder, p.videoMuted ? t("room.tile.camera_off") : t("room.tile.waiting"));
    }
    drawPeople();
    if (client.state === "connected") say(connectedText());
  });

  client.addEventListener("departed", ({ detail }) => {
    removeRemote(detail.identity);
    drawPeople();
    if (client.state === "connected") say(connectedText());
  });

  client.addEventListener("remote", ({ detail }) => {
    if (detail.kind === "audio") {
      let r = remotes.get(detail.key);
      if (!r) {
        const audio = h("audio", { autoplay: true, dataset: { slot: detail.slot ?? "" } });
        sounds.append(audio);
        r = { kind: "audio", audio };
        remotes.set(detail.key, r);
      }
      attach(r.audio, detail.stream);
      return;
    }
    const r = tile(detail.key, { identity: detail.identity, role: detail.role, slot: detail.slot ?? null });
    attach(r.video, detail.stream);
  });

  client.addEventListener("remote-gone", ({ detail }) => removeRemote(detail.key));

  // Where the unit forwards: a slot shows while video decodes in it.
  client.addEventListener("slot", ({ detail }) => {
    const r = remotes.get(detail.key);
    if (!r || !r.slot) return;
    if (detail.active && r.fig.hidden) {
      r.fig.hidden = false;
      label(r);
    } else if (!detail.active && !r.fig.hidden) {
      r.fig.hidden = true;
      delete r.video.dataset.identity;
      delete r.video.dataset.role;
    }
    countTiles();
  });

  client.addEventListener("local", ({ detail }) => {
    attach(localVideo, detail.stream);
    localTile.classList.toggle("empty", !detail.stream);
    drawControls();
  });

  client.addEventListener("controls", () => drawControls());

  client.addEventListener("quality", ({ detail }) => {
    quality.dataset.quality = detail.quality;
    fill(quality, t(`room.quality.${detail.quality}`));
    if (detail.quality === "unknown") {
      quality.removeAttribute("title");
    } else {
      quality.title = t("room.quality.detail", {
        rtt: detail.rtt === undefined ? "–" : Math.round(detail.rtt * 1000),
        loss: detail.loss === undefined ? "–" : (detail.loss * 100).toFixed(1),
        kbps: detail.bitrate === undefined ? "–" : Math.round(detail.bitrate / 1000),
      });
    }
  });

  client.addEventListener("problem", ({ detail }) => {
    const key = `room.problem.${detail.code}`;
    const text = t(key);
    tell(text === key ? t("room.problem.other", { code: detail.code }) : text);
  });

  client.addEventListener("media-error", ({ detail }) => {
    if (detail.what === "screen" && detail.error?.name === "NotAllowedError") return;
    tell(t(`room.media.${detail.what}`));
  });

  /** The room is over for this page: say why, what happened, and offer the way back. */
  async function over(state) {
    for (const r of remotes.values()) (r.kind === "video" ? r.video : r.audio).srcObject = null;
    localVideo.srcObject = null;
    side.stop();
    const { status: s, data } = await api("GET", `/sessions/${encodeURIComponent(session)}`);
    await summary(root, session, s === 200 ? data : brief, title, state, status.textContent);
  }

  window.addEventListener("pagehide", () => client.leave());

  fill(root, status);
  const answer = await client.start();
  if (answer.status !== 200 || OVER.includes(client.state)) {
    side.stop();
    return;
  }
  drawControls();
  head.insertBefore(status, quality);
  fill(root, room);
}
