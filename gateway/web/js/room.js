// The video room client: admission (`POST /sessions/{session}/join`), the signaling
// WebSocket of `signaling/PROTOCOL.md`, and the browser's peer connections. It draws
// nothing; the page (`pages/room.js`) listens to its events.
//
// Media goes from peer to peer (a mesh: consultations, small ward rounds) or, when the
// welcome names a forwarding unit (`unit: "@sfu"`: teaching, large ward rounds), over one
// connection to the unit, which this client always offers to.
//
// Events (`addEventListener(type, e => e.detail)`):
//   state        {state, code?, problem?, status?, attempt?}  joining | connecting |
//                connected | reconnecting | left | replaced | removed | full | refused | closed
//   welcome      {identity, resumed, unit}
//   participant  {identity, role, audioMuted, videoMuted, hand, mic, again}  (added or changed)
//   departed     {identity}
//   remote       {key, identity, role, stream, kind: "video" | "audio", slot}  media to show
//   remote-gone  {key}
//   slot         {key, active}        where the unit forwards: video decodes in a slot, or stopped
//   local        {stream, audio, video, sharing}                 the local preview changed
//   controls     {}                                              mic, camera, audio-only, screen,
//                                                               hand or grant state changed
//   quality      {quality: good | fair | poor | unknown, rtt, loss, bitrate}
//   problem      {code, message}                                 a refused message (the room stays)
//   media-error  {what: "camera" | "microphone" | "screen", error}
import { api } from "./api.js";

/** The identity of the forwarding unit. */
export const UNIT = "@sfu";

/** Simulcast layers a publisher sends to the unit (RIDs as the unit knows them). */
const LAYERS = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_200_000 },
];

/** Reconnect delays: doubling from this, up to the maximum (with some jitter). */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 8_000;
/** How long a connection must hold before the reconnect back-off starts over. */
const STABLE_MS = 30_000;
/** The server pings after 10 s of silence; nothing heard for this long means a dead link. */
const SILENCE_MS = 30_000;
/** A socket that is open but not welcomed within this long is given up. */
const HANDSHAKE_MS = 12_000;
/** A peer connection disconnected this long is restarted as if it had failed. */
const DISCONNECTED_MS = 8_000;
/** How long an offer to the forwarding unit waits for its answer before another may go. */
const ANSWER_MS = 10_000;
/** How often the network quality is measured. */
const STATS_MS = 2_000;
/** The available outgoing bitrate counts in the quality once a connection is this old. */
const BITRATE_AFTER_MS = 10_000;

const encoder = new TextEncoder();

/** Whether identity `a` sorts before `b` in byte order (the offer rule). */
export function sortsBefore(a, b) {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i];
  }
  return x.length < y.length;
}

/** Grades one connection's figures. */
export function grade({ rtt, loss, bitrate, sendingVideo }) {
  if (rtt === undefined && loss === undefined) return "unknown";
  if ((rtt ?? 0) > 0.4 || (loss ?? 0) > 0.08 || (sendingVideo && bitrate !== undefined && bitrate < 150_000)) {
    return "poor";
  }
  if ((rtt ?? 0) > 0.2 || (loss ?? 0) > 0.02 || (sendingVideo && bitrate !== undefined && bitrate < 300_000)) {
    return "fair";
  }
  return "good";
}

const RANK = { unknown: 0, good: 1, fair: 2, poor: 3 };

export class RoomClient extends EventTarget {
  /** `session`: `consultation-12`, `ward-round-3`, `teaching-5`. */
  constructor(session) {
    super();
    this.session = session;
    /** The answer of `/join`: token, identity, role, grants, signal_url, ice_servers. */
    this.admission = null;
    this.identity = null;
    this.role = null;
    this.grants = { publish: false, subscribe: false, moderate: false };
    this.unit = null;
    this.state = "idle";
    this.participants = new Map();
    this.peers = new Map();
    this.sfu = null;
    /** Whether to offer to the unit again once the offer out is answered. */
    this.sfuAgain = false;
    this.iceServers = [];
    /** The camera and microphone chosen in the lobby (`deviceId`s), else the defaults. */
    this.devices = { audio: null, video: null };

    this.mic = null;
    this.cam = null;
    this.screen = null;
    this.micOn = true;
    this.camOn = true;
    this.audioOnly = false;
    this.handRaised = false;
    this.micGranted = false;

    this.ws = null;
    this.welcomed = false;
    this.sessionId = null;
    this.lastSeq = 0;
    this.outbox = [];
    this.attempt = 0;
    this.freshTokenFailures = 0;
    this.lastHeard = 0;
    this.retryTimer = null;
    this.handshakeTimer = null;
    this.watchdog = null;
    this.statsTimer = null;
    this.prevStats = new WeakMap();
    this.connectedAt = new WeakMap();
    /** Frames decoded per slot of the unit's connection, and samples without a new one. */
    this.slotFrames = new Map();
    this.chain = Promise.resolve();
    this.quality = "unknown";
    this.onOnline = () => {
      if (this.state === "reconnecting") this.#reconnect({ now: true });
    };
  }

  #emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #setState(state, extra = {}) {
    this.state = state;
    this.#emit("state", { state, ...extra });
  }

  /** Whether this room's media goes through the forwarding unit. */
  get forwarded() {
    return this.unit === UNIT;
  }

  /** Whether this participant sends audio now (its grant and the moderator's). */
  get mayTalk() {
    return this.grants.publish || this.micGranted;
  }

  get sharing() {
    return this.screen !== null;
  }

  /**
   * Asks for admission and, when given, opens the camera and microphone and enters the
   * room. Resolves to `{status, data}` of `/join` (the page shows a refusal).
   */
  async start() {
    this.#setState("joining");
    const answer = await this.#admit();
    if (answer.status !== 200) {
      this.#setState("refused", { status: answer.status, problem: answer.data });
      return answer;
    }
    if (this.grants.publish) await this.#openMedia();
    window.addEventListener("online", this.onOnline);
    this.statsTimer = setInterval(() => this.#measure(), STATS_MS);
    this.#connect(false);
    return answer;
  }

  async #admit() {
    const answer = await api("POST", `/sessions/${encodeURIComponent(this.session)}/join`);
    if (answer.status === 200) {
      this.admission = answer.data;
      this.identity = answer.data.identity;
      this.role = answer.data.role;
      this.grants = answer.data.grants;
      this.iceServers = answer.data.ice_servers ?? [];
    }
    return answer;
  }

  // ---- local media ---------------------------------------------------------------

  async #openMedia() {
    const video = this.session.startsWith("teaching-")
      ? { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 25 } }
      : { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 25 } };
    const audio = this.devices.audio ? { deviceId: this.devices.audio } : true;
    if (this.devices.video) video.deviceId = this.devices.video;
    let stream = null;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio, video });
    } catch (error) {
      this.#emit("media-error", { what: "camera", error });
      try {
        stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      } catch (error2) {
        this.#emit("media-error", { what: "microphone", error: error2 });
      }
    }
    this.mic = stream?.getAudioTracks()[0] ?? null;
    this.cam = stream?.getVideoTracks()[0] ?? null;
    if (this.mic) this.mic.enabled = this.micOn;
    if (this.cam) this.cam.enabled = this.camOn;
    this.#emitLocal();
  }

  /** The microphone, opened when a trainee is given it. */
  async #openMic() {
    if (this.mic && this.mic.readyState === "live") return true;
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      this.mic = stream.getAudioTracks()[0];
      this.micOn = true;
      return true;
    } catch (error) {
      this.#emit("media-error", { what: "microphone", error });
      return false;
    }
  }

  /** What the video senders send: nothing in audio-only mode, else screen or camera. */
  #videoOut() {
    if (this.audioOnly) return null;
    return this.screen ?? this.cam;
  }

  #emitLocal() {
    const preview = this.screen ?? this.cam;
    this.#emit("local", {
      stream: preview ? new MediaStream([preview]) : null,
      audio: Boolean(this.mic) && this.micOn && this.mayTalk,
      video: Boolean(preview) && !this.audioOnly && (this.sharing || this.camOn),
      sharing: this.sharing,
    });
    this.#emit("controls");
  }

  /** The mute state as others are told it. */
  #muteState() {
    const audio = !(this.mic && this.micOn && this.mayTalk);
    const out = this.#videoOut();
    const video = !(this.grants.publish && out && (this.sharing || this.camOn));
    return { audio, video };
  }

  #sendMute() {
    const { audio, video } = this.#muteState();
    this.#send({ type: "mute", audio, video });
  }

  async #applyVideo() {
    const track = this.#videoOut();
    const senders = [...this.peers.values()].map((p) => p.videoSender);
    if (this.sfu) senders.push(this.sfu.videoSender);
    await Promise.all(
      senders.filter(Boolean).map((s) => s.replaceTrack(track).catch((e) => console.warn("replaceTrack", e))),
    );
  }

  /** Turns the microphone on or off; returns whether it is on. */
  toggleMic() {
    if (!this.mic || !this.mayTalk) return false;
    this.micOn = !this.micOn;
    this.mic.enabled = this.micOn;
    this.#sendMute();
    this.#emitLocal();
    return this.micOn;
  }

  /** Turns the camera on or off; returns whether it is on. */
  toggleCamera() {
    if (!this.cam) return false;
    this.camOn = !this.camOn;
    this.cam.enabled = this.camOn;
    this.#sendMute();
    this.#emitLocal();
    return this.camOn;
  }

  /**
   * Audio only: sends no video and asks for none. From peer to peer the video senders
   * stop and each connection's video is renegotiated as inactive, so the others stop
   * sending theirs; through the unit it is asked (`audio_only`) to forward no video.
   */
  async setAudioOnly(on) {
    this.audioOnly = Boolean(on);
    await this.#applyVideo();
    for (const peer of this.peers.values()) {
      const video = peer.pc.getTransceivers().find((t) => t.sender === peer.videoSender);
      // A new direction makes the connection negotiate again.
      if (video && video.direction !== "stopped") video.direction = this.#videoDirection();
      this.#applyIncomingVideo(peer.pc);
    }
    if (this.sfu) this.#applyIncomingVideo(this.sfu.pc);
    if (this.forwarded) this.#send({ type: "audio_only", on: this.audioOnly });
    this.#sendMute();
    this.#emitLocal();
    return this.audioOnly;
  }

  #applyIncomingVideo(pc) {
    for (const r of pc.getReceivers()) {
      if (r.track?.kind === "video") r.track.enabled = !this.audioOnly;
    }
  }

  /** Shares the screen instead of the camera, or stops sharing. */
  async toggleScreen() {
    if (this.screen) {
      await this.#stopScreen();
      return false;
    }
    if (!this.grants.publish) return false;
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (error) {
      this.#emit("media-error", { what: "screen", error });
      return false;
    }
    const track = stream.getVideoTracks()[0];
    if (!track) return false;
    track.contentHint = "detail";
    track.addEventListener("ended", () => {
      if (this.screen === track) this.#stopScreen();
    });
    this.screen = track;
    await this.#applyVideo();
    this.#sendMute();
    this.#emitLocal();
    return true;
  }

  async #stopScreen() {
    const track = this.screen;
    this.screen = null;
    track?.stop();
    await this.#applyVideo();
    this.#sendMute();
    this.#emitLocal();
  }

  /** Trainees: raises or lowers the hand. */
  raiseHand(raised) {
    this.handRaised = Boolean(raised);
    this.#send({ type: "hand", raised: this.handRaised });
    this.#emit("controls");
  }

  /** Moderators: gives `identity` the microphone, or takes it back. */
  grant(identity, audio) {
    this.#send({ type: "grant", to: identity, audio: Boolean(audio) });
  }

  /** Moderators: removes `identity` for the rest of the session. */
  remove(identity) {
    this.#send({ type: "remove", identity });
  }

  /** Leaves the room for good. */
  leave() {
    if (["left", "replaced", "removed", "full", "refused", "closed"].includes(this.state)) return;
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN && this.welcomed) {
      ws.send(JSON.stringify({ v: 1, type: "leave" }));
    }
    this.#shutdown("left");
  }

  /** Stops everything: sockets, timers, peer connections, the camera and microphone. */
  #shutdown(state, extra = {}) {
    clearTimeout(this.retryTimer);
    clearTimeout(this.stableTimer);
    clearTimeout(this.handshakeTimer);
    clearInterval(this.watchdog);
    clearInterval(this.statsTimer);
    window.removeEventListener("online", this.onOnline);
    const ws = this.ws;
    this.ws = null;
    this.welcomed = false;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      try { ws.close(1000); } catch { /* closed already */ }
    }
    for (const id of [...this.peers.keys()]) this.#dropPeer(id);
    this.#dropSfu();
    for (const track of [this.mic, this.cam, this.screen]) track?.stop();
    this.screen = null;
    this.quality = "unknown";
    this.#emit("quality", { quality: "unknown" });
    this.#setState(state, extra);
  }

  // ---- the signaling socket ------------------------------------------------------

  #connect(resume) {
    clearTimeout(this.retryTimer);
    const url = new URL(this.admission.signal_url, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    this.welcomed = false;
    if (this.state !== "reconnecting") this.#setState("connecting");
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      console.warn("websocket", e);
      this.#reconnect({});
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      const token = this.admission.token;
      const first = resume && this.sessionId
        ? { v: 1, type: "resume", token, session_id: this.sessionId, last_seq: this.lastSeq }
        : { v: 1, type: "join", token };
      ws.send(JSON.stringify(first));
    };
    ws.onmessage = (e) => {
      if (ws !== this.ws) return;
      this.lastHeard = Date.now();
      let m;
      try { m = JSON.parse(e.data); } catch { return; }
      if (m.type === "ping") {
        ws.send(JSON.stringify({ v: 1, type: "pong" }));
      }
      // Messages are handled one after the other: an offer waits for the one before.
      this.chain = this.chain.then(() => this.#handle(m)).catch((err) => console.error("room", m.type, err));
    };
    ws.onclose = (e) => {
      if (ws !== this.ws) return;
      this.#closed(e.code);
    };
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = setTimeout(() => {
      if (ws === this.ws && !this.welcomed) this.#abandon();
    }, HANDSHAKE_MS);
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => {
      if (ws === this.ws && this.welcomed && Date.now() - this.lastHeard > SILENCE_MS) this.#abandon();
    }, 5_000);
  }

  /** Gives up a socket that has gone quiet, and reconnects. */
  #abandon() {
    const ws = this.ws;
    if (!ws) return;
    ws.onclose = null;
    ws.onmessage = null;
    try { ws.close(); } catch { /* closed */ }
    this.#closed(4000);
  }

  #closed(code) {
    this.ws = null;
    this.welcomed = false;
    clearTimeout(this.handshakeTimer);
    clearInterval(this.watchdog);
    if (["left", "replaced", "removed", "full", "refused", "closed"].includes(this.state)) return;
    switch (code) {
      case 4001: this.#shutdown("replaced", { code }); return;
      case 4004: this.#shutdown("full", { code }); return;
      case 4007: this.#shutdown("removed", { code }); return;
      // Left; or refused for too many bad messages or too large a frame: coming back at
      // once would only be refused again.
      case 1000:
      case 1008:
      case 1009: this.#shutdown("closed", { code }); return;
      case 4003:
        // The token was refused: ask for a new one and join afresh (twice at most in a row).
        this.freshTokenFailures += 1;
        if (this.freshTokenFailures > 2) {
          this.#shutdown("closed", { code });
          return;
        }
        this.sessionId = null;
        this.#reconnect({ fresh: true });
        return;
      default:
        this.#reconnect({});
    }
  }

  /**
   * Connects again after a delay that doubles each attempt: with `resume` while there is a
   * session to resume, else a fresh `/join` and `join`.
   */
  #reconnect({ fresh = false, now = false }) {
    clearTimeout(this.retryTimer);
    const delay = now ? 0 : Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    if (this.state !== "reconnecting") this.#setState("reconnecting", { attempt: this.attempt });
    else this.#emit("state", { state: "reconnecting", attempt: this.attempt });
    this.retryTimer = setTimeout(async () => {
      if (this.state !== "reconnecting") return;
      const expiresIn = Date.parse(this.admission.expires_at) - Date.now();
      if (fresh || !this.sessionId || !(expiresIn > 30_000)) {
        const answer = await this.#admit();
        if (this.state !== "reconnecting") return;
        if (answer.status === 0 || answer.status >= 500) {
          this.#reconnect({ fresh });
          return;
        }
        if (answer.status !== 200) {
          this.#shutdown("refused", { status: answer.status, problem: answer.data });
          return;
        }
      }
      this.#connect(!fresh && Boolean(this.sessionId));
    }, delay);
  }

  /** Sends a message now, or after the next welcome if the socket is down. */
  #send(message) {
    const full = { v: 1, ...message };
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN && this.welcomed) {
      ws.send(JSON.stringify(full));
    } else {
      this.outbox.push(full);
    }
  }

  #flush() {
    const waiting = this.outbox;
    this.outbox = [];
    for (const m of waiting) this.#send(m);
  }

  async #handle(m) {
    if (m.type !== "welcome" && m.seq > 0) {
      if (m.seq <= this.lastSeq) return;
      this.lastSeq = m.seq;
    }
    switch (m.type) {
      case "welcome": return this.#welcome(m);
      case "joined": return this.#joined(m.participant);
      case "left": return this.#left(m.identity);
      case "offer": return this.#offer(m.from, m.sdp);
      case "answer": return this.#answer(m.from, m.sdp);
      case "candidate": return this.#candidate(m);
      case "mute": return this.#update(m.identity, { audioMuted: m.audio, videoMuted: m.video });
      case "hand": return this.#hand(m.identity, m.raised);
      case "granted": return this.#granted(m.identity, m.audio);
      case "error": return this.#problem(m);
      default: return undefined;
    }
  }

  async #welcome(m) {
    clearTimeout(this.handshakeTimer);
    this.welcomed = true;
    // The back-off starts over only once a connection has held for a while: a server that
    // closes each one right after its welcome must not be called twice a second.
    clearTimeout(this.stableTimer);
    const ws = this.ws;
    this.stableTimer = setTimeout(() => {
      if (this.ws === ws && this.welcomed) {
        this.attempt = 0;
        this.freshTokenFailures = 0;
      }
    }, STABLE_MS);
    this.identity = m.identity;
    this.sessionId = m.session_id;
    this.unit = m.unit ?? null;
    if (Array.isArray(m.ice_servers) && m.ice_servers.length) this.iceServers = m.ice_servers;
    if (m.resumed) {
      // The peer connections lived on; what was missed follows this welcome, numbered
      // from the last message seen (so `lastSeq` stays where it was).
      for (const p of m.participants) this.#remember(p, false);
      this.#setState("connected", { resumed: true });
      this.#emit("welcome", { identity: this.identity, resumed: true, unit: this.unit });
      this.#flush();
      return;
    }
    // A fresh entry: everyone negotiates with this connection anew, and the room has
    // forgotten any microphone a moderator gave.
    this.lastSeq = m.seq;
    this.outbox = [];
    if (this.micGranted && !this.grants.publish) {
      this.micGranted = false;
      this.mic?.stop();
      this.mic = null;
      this.#emitLocal();
    }
    for (const id of [...this.peers.keys()]) this.#dropPeer(id);
    this.#dropSfu();
    for (const id of [...this.participants.keys()]) {
      if (!m.participants.some((p) => p.identity === id)) {
        this.participants.delete(id);
        this.#emit("departed", { identity: id });
      }
    }
    for (const p of m.participants) this.#remember(p, false);
    this.#setState("connected", { resumed: false });
    this.#emit("welcome", { identity: this.identity, resumed: false, unit: this.unit });
    // The room's idea of this participant starts unmuted (muted, where the unit forwards
    // and it may not send): say how it really is.
    const { audio, video } = this.#muteState();
    const assumed = this.forwarded && !this.grants.publish;
    if (audio !== assumed || video !== assumed) this.#sendMute();
    if (this.handRaised) this.#send({ type: "hand", raised: true });
    if (this.forwarded) {
      await this.#sfuConnect();
    } else {
      for (const p of m.participants) {
        if (sortsBefore(this.identity, p.identity)) this.#createPeer(p.identity, true);
      }
    }
  }

  #remember(p, again) {
    const known = this.participants.get(p.identity);
    const info = {
      identity: p.identity,
      role: p.role,
      name: p.name ?? null,
      about: p.about ?? null,
      audioMuted: p.audio_muted,
      videoMuted: p.video_muted,
      hand: known?.hand ?? false,
      mic: known?.mic ?? false,
    };
    this.participants.set(p.identity, info);
    this.#emit("participant", { ...info, again });
    return info;
  }

  #update(identity, change) {
    const p = this.participants.get(identity);
    if (!p) return;
    Object.assign(p, change);
    this.#emit("participant", { ...p, again: false });
  }

  async #joined(p) {
    const again = this.participants.has(p.identity);
    this.#remember(p, again);
    if (this.forwarded) {
      // Everyone sends (a large ward round): a newcomer needs a free slot here.
      if (this.sfu && this.grants.publish && this.role !== "presenter"
          && this.participants.size > this.sfu.videoSlots) {
        await this.#sfuConnect();
      }
      return;
    }
    // Someone already present joined again (a new device): start over with it.
    if (again) this.#dropPeer(p.identity);
    if (sortsBefore(this.identity, p.identity)) this.#createPeer(p.identity, true);
  }

  #left(identity) {
    this.participants.delete(identity);
    this.#dropPeer(identity);
    this.#emit("departed", { identity });
  }

  #hand(identity, raised) {
    if (identity === this.identity) {
      this.handRaised = raised;
      this.#emit("controls");
    }
    this.#update(identity, { hand: raised });
  }

  async #granted(identity, audio) {
    const change = { mic: audio };
    if (audio) change.hand = false;
    this.#update(identity, change);
    if (identity !== this.identity) return;
    if (audio) this.handRaised = false;
    if (this.grants.publish) {
      this.#emit("controls");
      return;
    }
    this.micGranted = audio;
    if (audio) {
      await this.#openMic();
    } else {
      this.mic?.stop();
      this.mic = null;
    }
    // What this participant sends changed: it offers again, with (or without) its microphone.
    if (this.forwarded) await this.#sfuConnect();
    this.#sendMute();
    this.#emitLocal();
  }

  #problem(m) {
    if (m.code === "resume_refused") {
      // Too much was missed, or the room forgot us: join afresh.
      this.sessionId = null;
      const ws = this.ws;
      if (ws) {
        ws.onclose = null;
        ws.onmessage = null;
        try { ws.close(1000); } catch { /* closed */ }
      }
      this.ws = null;
      this.#reconnect({ fresh: true, now: true });
      return;
    }
    if (m.code === "removed") {
      this.#shutdown("removed");
      return;
    }
    if (m.code === "media_refused" && this.sfu?.awaiting) this.#sfuAnswered(this.sfu);
    this.#emit("problem", { code: m.code, message: m.message });
  }

  // ---- peer to peer --------------------------------------------------------------

  #config() {
    return { iceServers: this.iceServers, bundlePolicy: "max-bundle" };
  }

  #createPeer(id, offerer) {
    this.#dropPeer(id);
    const pc = new RTCPeerConnection(this.#config());
    const peer = {
      id, pc, offerer, pending: [], tracks: [], audioSender: null, videoSender: null,
      disconnectedTimer: null,
    };
    this.peers.set(id, peer);
    pc.onicecandidate = (e) => {
      if (this.peers.get(id) === peer && e.candidate && e.candidate.candidate) {
        this.#send({
          type: "candidate", to: id, candidate: e.candidate.candidate,
          sdp_mid: e.candidate.sdpMid, sdp_mline_index: e.candidate.sdpMLineIndex,
        });
      }
    };
    pc.ontrack = (e) => {
      if (this.peers.get(id) !== peer) return;
      const track = e.track;
      if (track.kind === "video") track.enabled = !this.audioOnly;
      peer.tracks = peer.tracks.filter((t) => t.kind !== track.kind).concat(track);
      this.#emitPeerMedia(peer);
      track.addEventListener("unmute", () => {
        if (this.peers.get(id) === peer) this.#emitPeerMedia(peer);
      });
    };
    pc.oniceconnectionstatechange = () => this.#iceState(peer);
    if (offerer) {
      peer.audioSender = pc.addTransceiver(this.mic ?? "audio", { direction: "sendrecv" }).sender;
      peer.videoSender = pc.addTransceiver(this.#videoOut() ?? "video", { direction: this.#videoDirection() }).sender;
    }
    // Either side offers again when what it sends or receives changes (audio only).
    pc.onnegotiationneeded = () => this.#queueNegotiate(peer, false);
    return peer;
  }

  #emitPeerMedia(peer) {
    this.#emit("remote", {
      key: peer.id,
      identity: peer.id,
      role: this.participants.get(peer.id)?.role,
      stream: new MediaStream(peer.tracks),
      kind: "video",
    });
  }

  #dropPeer(id) {
    const peer = this.peers.get(id);
    if (!peer) return;
    this.peers.delete(id);
    clearTimeout(peer.disconnectedTimer);
    peer.pc.onicecandidate = null;
    peer.pc.ontrack = null;
    peer.pc.oniceconnectionstatechange = null;
    peer.pc.onnegotiationneeded = null;
    peer.pc.close();
    if (!this.participants.has(id)) this.#emit("remote-gone", { key: id });
  }

  /** Offers once the messages before are handled, so that an offer never crosses one of ours. */
  #queueNegotiate(peer, iceRestart) {
    this.chain = this.chain.then(() => this.#negotiate(peer, iceRestart));
  }

  /**
   * Offers (again) to a peer: first by the offer rule, later by either side when what it
   * sends or receives changes; `iceRestart` after a failure. Runs in the message chain.
   */
  async #negotiate(peer, iceRestart) {
    if (this.peers.get(peer.id) !== peer || peer.pc.signalingState === "closed") return;
    // The side that answered first offers only once something has been negotiated.
    if (!peer.offerer && !peer.pc.currentRemoteDescription) return;
    try {
      const pc = peer.pc;
      if (pc.signalingState === "have-local-offer") await pc.setLocalDescription({ type: "rollback" });
      const offer = await pc.createOffer(iceRestart ? { iceRestart: true } : {});
      if (this.peers.get(peer.id) !== peer) return;
      await pc.setLocalDescription(offer);
      this.#send({ type: "offer", to: peer.id, sdp: pc.localDescription.sdp });
    } catch (e) {
      console.warn("offer to", peer.id, e);
    }
  }

  /** Video goes both ways, or, audio only, neither way: the other side stops sending it. */
  #videoDirection() {
    return this.audioOnly ? "inactive" : "sendrecv";
  }

  /** The answering side attaches its tracks to the transceivers the offer made. */
  async #attachLocal(peer) {
    for (const t of peer.pc.getTransceivers()) {
      if (t.currentDirection === "stopped" || t.direction === "stopped") continue;
      const kind = t.receiver.track.kind;
      if (kind === "audio" && !peer.audioSender) {
        peer.audioSender = t.sender;
        await t.sender.replaceTrack(this.mic);
        t.direction = "sendrecv";
      } else if (kind === "video" && !peer.videoSender) {
        peer.videoSender = t.sender;
        await t.sender.replaceTrack(this.#videoOut());
        t.direction = this.#videoDirection();
      }
    }
  }

  async #offer(from, sdp) {
    if (from === UNIT || !this.participants.has(from)) return;
    let peer = this.peers.get(from);
    if (peer && peer.pc.signalingState === "have-local-offer") {
      // Both offered at once: the offer of the side the rule makes the offerer wins; the
      // other side takes its own back and answers.
      if (peer.offerer) return;
      await peer.pc.setLocalDescription({ type: "rollback" });
    }
    if (!peer || peer.pc.signalingState === "closed") peer = this.#createPeer(from, false);
    const pc = peer.pc;
    await pc.setRemoteDescription({ type: "offer", sdp });
    await this.#attachLocal(peer);
    await this.#flushCandidates(peer);
    const answer = await pc.createAnswer();
    if (this.peers.get(from) !== peer) return;
    await pc.setLocalDescription(answer);
    this.#send({ type: "answer", to: from, sdp: pc.localDescription.sdp });
  }

  async #answer(from, sdp) {
    const peer = from === UNIT ? this.sfu : this.peers.get(from);
    if (!peer || peer.pc.signalingState !== "have-local-offer") return;
    await peer.pc.setRemoteDescription({ type: "answer", sdp });
    await this.#flushCandidates(peer);
    if (from === UNIT) {
      if (this.audioOnly) this.#send({ type: "audio_only", on: true });
      await this.#sfuAnswered(peer);
    }
  }

  async #candidate(m) {
    const peer = m.from === UNIT ? this.sfu : this.peers.get(m.from);
    if (!peer) return;
    const candidate = { candidate: m.candidate, sdpMid: m.sdp_mid ?? null, sdpMLineIndex: m.sdp_mline_index ?? null };
    if (!peer.pc.remoteDescription) {
      peer.pending.push(candidate);
      return;
    }
    await peer.pc.addIceCandidate(candidate).catch((e) => console.warn("candidate", e));
  }

  async #flushCandidates(peer) {
    const waiting = peer.pending;
    peer.pending = [];
    for (const c of waiting) {
      await peer.pc.addIceCandidate(c).catch((e) => console.warn("candidate", e));
    }
  }

  #iceState(peer) {
    const state = peer.pc.iceConnectionState;
    clearTimeout(peer.disconnectedTimer);
    if (state === "failed") {
      this.#restart(peer);
    } else if (state === "disconnected") {
      peer.disconnectedTimer = setTimeout(() => {
        if (peer.pc.iceConnectionState === "disconnected") this.#restart(peer);
      }, DISCONNECTED_MS);
    }
  }

  /** ICE restart: the offering side offers again with new ICE credentials. */
  #restart(peer) {
    if (peer === this.sfu) {
      // The unit takes a new offer as a new connection: make one.
      if (this.sfu === peer) this.#sfuConnect();
      return;
    }
    if (this.peers.get(peer.id) !== peer || !peer.offerer) return;
    if (peer.pc.signalingState === "stable") {
      peer.pc.restartIce();
      // `restartIce` fires negotiationneeded; offer directly in case it does not come.
      setTimeout(() => {
        if (peer.pc.signalingState === "stable"
            && ["failed", "disconnected"].includes(peer.pc.iceConnectionState)) {
          this.#queueNegotiate(peer, true);
        }
      }, 1_000);
    } else {
      this.#queueNegotiate(peer, true);
    }
  }

  // ---- through the forwarding unit -----------------------------------------------

  /** Receive slots to offer: [audio, video]. */
  #slotsWanted() {
    if (!this.grants.subscribe) return [0, 0];
    if (!this.grants.publish) {
      // A trainee: the presenter's audio and two video slots (camera, screen share), and
      // audio for trainees given the microphone.
      return [3, 2];
    }
    if (this.role === "presenter") return [2, 0];
    // Everyone sends (a large ward round): one audio and one video slot for each other
    // participant, and two spare for those to come.
    const others = this.participants.size;
    return [others + 2, others + 2];
  }

  #dropSfu() {
    const sfu = this.sfu;
    if (!sfu) return;
    this.sfu = null;
    sfu.pc.onicecandidate = null;
    sfu.pc.ontrack = null;
    sfu.pc.oniceconnectionstatechange = null;
    sfu.pc.close();
    clearTimeout(sfu.disconnectedTimer);
    clearTimeout(sfu.answerTimer);
    for (const key of sfu.keys) this.#emit("remote-gone", { key });
    this.slotFrames.clear();
  }

  /**
   * Offers to the unit on a new connection, which replaces the old one. One offer is out
   * at a time, so that the answer that comes is the one to the connection waiting for it:
   * a change meanwhile (a microphone given and taken back) offers once it has come.
   */
  async #sfuConnect() {
    if (this.sfu?.awaiting) {
      this.sfuAgain = true;
      return;
    }
    this.sfuAgain = false;
    this.#dropSfu();
    const pc = new RTCPeerConnection(this.#config());
    const sfu = {
      pc, pending: [], keys: new Set(), videoSender: null, audioSender: null, videoSlots: 0,
      // Awaiting from the start, so that a change while the offer is made waits for it.
      disconnectedTimer: null, awaiting: true, answerTimer: null,
    };
    this.sfu = sfu;
    const stream = new MediaStream();
    if (this.mic && this.mayTalk) {
      sfu.audioSender = pc.addTransceiver(this.mic, { direction: "sendonly", streams: [stream] }).sender;
    }
    if (this.grants.publish) {
      sfu.videoSender = pc.addTransceiver(this.#videoOut() ?? "video", {
        direction: "sendonly", streams: [stream], sendEncodings: LAYERS.map((l) => ({ ...l })),
      }).sender;
    }
    const [audioSlots, videoSlots] = this.#slotsWanted();
    for (let i = 0; i < audioSlots; i++) pc.addTransceiver("audio", { direction: "recvonly" });
    for (let i = 0; i < videoSlots; i++) pc.addTransceiver("video", { direction: "recvonly" });
    sfu.videoSlots = videoSlots;
    pc.onicecandidate = (e) => {
      if (this.sfu === sfu && e.candidate && e.candidate.candidate) {
        this.#send({
          type: "candidate", to: UNIT, candidate: e.candidate.candidate,
          sdp_mid: e.candidate.sdpMid, sdp_mline_index: e.candidate.sdpMLineIndex,
        });
      }
    };
    pc.ontrack = (e) => {
      if (this.sfu !== sfu) return;
      const track = e.track;
      const slot = e.transceiver.mid;
      const key = `slot:${slot}`;
      const show = () => {
        if (this.sfu !== sfu) return;
        sfu.keys.add(key);
        // Only a presenter sends video in a classroom; elsewhere the unit does not say whose
        // track a slot carries.
        const presenter = [...this.participants.values()].find((p) => p.role === "presenter");
        const identity = track.kind === "video" && this.role !== "presenter" && presenter ? presenter.identity : null;
        this.#emit("remote", {
          key, identity, role: identity ? "presenter" : null, slot,
          stream: new MediaStream([track]), kind: track.kind,
        });
      };
      if (track.kind === "video") {
        track.enabled = !this.audioOnly;
        // A video slot is shown once something arrives in it.
        if (!track.muted) show();
        track.addEventListener("unmute", show);
      } else {
        show();
      }
    };
    pc.oniceconnectionstatechange = () => {
      if (this.sfu !== sfu) return;
      const state = pc.iceConnectionState;
      clearTimeout(sfu.disconnectedTimer);
      if (state === "failed") {
        sfu.disconnectedTimer = setTimeout(() => this.#restart(sfu), 1_000);
      } else if (state === "disconnected") {
        sfu.disconnectedTimer = setTimeout(() => {
          if (this.sfu === sfu && pc.iceConnectionState === "disconnected") this.#restart(sfu);
        }, DISCONNECTED_MS);
      }
    };
    try {
      const offer = await pc.createOffer();
      if (this.sfu !== sfu) return;
      await pc.setLocalDescription(offer);
      // An answer that never comes (the offer lost with a connection) does not hold
      // the next offer back for ever.
      sfu.answerTimer = setTimeout(() => {
        if (this.sfu === sfu && sfu.awaiting) this.#sfuAnswered(sfu);
      }, ANSWER_MS);
      this.#send({ type: "offer", to: UNIT, sdp: pc.localDescription.sdp });
    } catch (e) {
      console.warn("offer to the unit", e);
      this.#emit("problem", { code: "media_refused", message: String(e) });
      await this.#sfuAnswered(sfu);
    }
  }

  /** The unit answered (or refused) the offer out: a change meanwhile offers now. */
  async #sfuAnswered(sfu) {
    sfu.awaiting = false;
    clearTimeout(sfu.answerTimer);
    if (this.sfu === sfu && this.sfuAgain) await this.#sfuConnect();
  }

  // ---- network quality -----------------------------------------------------------

  async #measure() {
    const pcs = [...this.peers.values()].map((p) => p.pc);
    if (this.sfu) pcs.push(this.sfu.pc);
    const live = pcs.filter((pc) => ["connected", "completed"].includes(pc.iceConnectionState));
    if (!live.length) {
      this.#setQuality({ quality: "unknown" });
      return;
    }
    let worst = { quality: "unknown" };
    for (const pc of live) {
      let stats;
      try {
        stats = await pc.getStats();
      } catch {
        continue;
      }
      let pair = null;
      let lost = 0;
      let received = 0;
      let sendingVideo = false;
      const slots = pc === this.sfu?.pc ? new Map() : null;
      stats.forEach((r) => {
        if (slots && r.type === "inbound-rtp" && r.kind === "video" && r.mid !== undefined) {
          slots.set(`slot:${r.mid}`, r.framesDecoded ?? 0);
        }
        if (r.type === "transport" && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId) ?? pair;
        if (r.type === "inbound-rtp") {
          lost += r.packetsLost ?? 0;
          received += r.packetsReceived ?? 0;
        }
        if (r.type === "outbound-rtp" && r.kind === "video" && (r.bytesSent ?? 0) > 0) sendingVideo = true;
      });
      if (!pair) {
        stats.forEach((r) => {
          if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") pair = r;
        });
      }
      if (slots) this.#slotActivity(slots);
      const prev = this.prevStats.get(pc);
      this.prevStats.set(pc, { lost, received });
      let loss;
      if (prev) {
        const dl = Math.max(0, lost - prev.lost);
        const dr = Math.max(0, received - prev.received);
        loss = dl + dr > 0 ? dl / (dl + dr) : 0;
      }
      // The estimate of what can be sent starts low and climbs: judge it after a while.
      if (!this.connectedAt.has(pc)) this.connectedAt.set(pc, Date.now());
      const settled = Date.now() - this.connectedAt.get(pc) > BITRATE_AFTER_MS;
      const figures = {
        rtt: pair?.currentRoundTripTime,
        loss,
        bitrate: settled ? pair?.availableOutgoingBitrate : undefined,
        sendingVideo: sendingVideo && !this.audioOnly,
      };
      const quality = grade(figures);
      if (RANK[quality] >= RANK[worst.quality]) worst = { quality, ...figures };
    }
    this.#setQuality(worst);
  }

  /** Says which of the unit's video slots have video decoding (two idle samples: none). */
  #slotActivity(frames) {
    for (const [key, decoded] of frames) {
      const before = this.slotFrames.get(key) ?? { decoded: 0, idle: 0, active: false };
      const now = { decoded, idle: decoded > before.decoded ? 0 : before.idle + 1, active: before.active };
      if (decoded > before.decoded) now.active = true;
      else if (now.idle >= 2) now.active = false;
      this.slotFrames.set(key, now);
      if (now.active !== before.active) this.#emit("slot", { key, active: now.active });
    }
  }

  #setQuality(q) {
    this.quality = q.quality;
    const { sendingVideo, ...shown } = q;
    this.#emit("quality", shown);
  }
}
