// The lobby of a room for those who arrive early: when the room opens, a countdown by
// the gateway's clock, who will be there, and a camera and microphone check with the
// devices to use. It asks the gateway again every few seconds and at the countdown's end,
// and lets the person in by itself as soon as the room opens.
//
// For tests: `#lobby`, `#opens-at`, `#countdown` (`data-seconds`), `#expected li`,
// `#device-check`, `video#preview`, `#mic-level` (`data-level`, 0 to 1), `select#camera-choice`,
// `select#mic-choice`, `#device-note`.
import { t } from "../i18n.js";
import { api } from "../api.js";
import { h, fill, field } from "../dom.js";

/** How often the lobby asks whether the room is open, at most. */
const POLL_MS = 5_000;
/** Where the chosen devices are remembered. */
const DEVICES_KEY = "duikou.room.devices";

/** `HH:MM` on `M月D日` (or the English) in China time. */
export function chinaTime(iso) {
  return new Intl.DateTimeFormat(document.documentElement.lang || "zh-CN", {
    timeZone: "Asia/Shanghai", month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false,
  }).format(new Date(iso));
}

/** The devices chosen in an earlier lobby, if any. */
export function savedDevices() {
  try {
    const saved = JSON.parse(localStorage.getItem(DEVICES_KEY) ?? "{}");
    return { audio: saved.audio ?? null, video: saved.video ?? null };
  } catch {
    return { audio: null, video: null };
  }
}

/** A person the booking names, as a line. */
export function personLine(p) {
  return h("li", { "data-role": p.role },
    h("strong", { class: "name" }, p.name), " ",
    h("span", { class: "muted about" }, p.about), " ",
    h("span", { class: "badge" }, t(`room.role.${p.role}`)));
}

function countdownText(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return hours > 0
    ? t("room.lobby.countdown_hours", { h: hours, m: String(minutes).padStart(2, "0"), s: rest })
    : t("room.lobby.countdown", { m: minutes, s: rest });
}

/**
 * Shows the lobby in `root` for `brief` (its phase `early`) and resolves with the brief
 * of the room once it is open (or has become something else, such as cancelled).
 */
export function lobby(root, session, brief, title) {
  let current = brief;
  let offset = new Date(brief.now).getTime() - Date.now();
  const opensAt = h("p", { id: "opens-at" });
  const countdown = h("p", { id: "countdown", class: "countdown", role: "timer", "aria-live": "off" });
  const expected = h("ul", { id: "expected", class: "people" }, brief.people.map(personLine));

  const preview = h("video", { id: "preview", autoplay: true, playsinline: true, muted: true });
  preview.muted = true;
  const level = h("meter", { id: "mic-level", min: 0, max: 1, value: 0, "data-level": "0" });
  const cameraChoice = h("select", { id: "camera-choice", name: "camera" });
  const micChoice = h("select", { id: "mic-choice", name: "microphone" });
  const deviceNote = h("p", { id: "device-note", class: "muted", role: "status" }, t("room.lobby.checking"));
  const check = h("section", { id: "device-check", class: "card" },
    h("h2", {}, t("room.lobby.check")),
    h("figure", { class: "tile self preview" }, preview),
    field(t("room.lobby.camera"), cameraChoice),
    field(t("room.lobby.microphone"), micChoice),
    h("div", { class: "field" }, h("label", { for: "mic-level" }, t("room.lobby.level")), level),
    deviceNote);

  fill(root, h("section", { id: "lobby", class: "room lobby", "data-session": session },
    h("header", { class: "room-head" }, h("h1", {}, title)),
    h("section", { class: "card" },
      opensAt, countdown,
      h("p", { class: "muted" }, t("room.lobby.auto")),
      h("h2", {}, t("room.lobby.expected")), expected),
    check));

  let stream = null;
  let audio = null;
  let meterTimer = null;

  const chosen = savedDevices();

  async function open() {
    for (const track of stream?.getTracks() ?? []) track.stop();
    const want = {
      audio: micChoice.value ? { deviceId: { exact: micChoice.value } } : (chosen.audio ? { deviceId: chosen.audio } : true),
      video: cameraChoice.value ? { deviceId: { exact: cameraChoice.value } } : (chosen.video ? { deviceId: chosen.video } : true),
    };
    try {
      stream = await navigator.mediaDevices.getUserMedia(want);
    } catch (e) {
      stream = null;
      fill(deviceNote, t(e?.name === "NotAllowedError" ? "room.lobby.denied" : "room.lobby.no_device"));
      deviceNote.classList.add("problem");
      return;
    }
    preview.srcObject = stream;
    preview.play().catch(() => {});
    await listDevices();
    listen();
    const cam = stream.getVideoTracks()[0];
    const mic = stream.getAudioTracks()[0];
    deviceNote.classList.toggle("problem", !cam || !mic);
    fill(deviceNote, t(cam && mic ? "room.lobby.ready" : cam ? "room.lobby.no_mic" : "room.lobby.no_camera"));
    remember();
  }

  async function listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const inUse = (kind) => stream?.getTracks().find((x) => x.kind === kind)?.getSettings().deviceId ?? "";
    const options = (kind, select, fallback) => {
      const list = devices.filter((d) => d.kind === kind);
      fill(select, list.map((d, i) => h("option", { value: d.deviceId }, d.label || `${fallback} ${i + 1}`)));
      select.value = inUse(kind === "videoinput" ? "video" : "audio");
    };
    options("videoinput", cameraChoice, t("room.lobby.camera"));
    options("audioinput", micChoice, t("room.lobby.microphone"));
  }

  function listen() {
    clearInterval(meterTimer);
    audio?.close().catch(() => {});
    audio = null;
    if (!stream?.getAudioTracks().length) return;
    audio = new AudioContext();
    const analyser = audio.createAnalyser();
    analyser.fftSize = 512;
    audio.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    meterTimer = setInterval(() => {
      analyser.getFloatTimeDomainData(samples);
      let sum = 0;
      for (const x of samples) sum += x * x;
      const rms = Math.min(1, Math.sqrt(sum / samples.length) * 4);
      level.value = rms;
      level.dataset.level = rms.toFixed(3);
    }, 100);
  }

  function remember() {
    localStorage.setItem(DEVICES_KEY, JSON.stringify({ audio: micChoice.value || null, video: cameraChoice.value || null }));
  }

  cameraChoice.addEventListener("change", open);
  micChoice.addEventListener("change", open);

  function close() {
    clearInterval(meterTimer);
    audio?.close().catch(() => {});
    for (const track of stream?.getTracks() ?? []) track.stop();
    preview.srcObject = null;
  }

  function draw() {
    fill(opensAt, t("room.lobby.opens", {
      opens: chinaTime(current.opens_at), start: chinaTime(current.starts_at), end: chinaTime(current.ends_at),
    }));
    const seconds = (new Date(current.opens_at).getTime() - (Date.now() + offset)) / 1000;
    countdown.dataset.seconds = String(Math.max(0, Math.ceil(seconds)));
    fill(countdown, countdownText(seconds));
    return seconds;
  }

  open();

  return new Promise((resolve) => {
    let asked = Date.now();
    const tick = setInterval(async () => {
      const seconds = draw();
      if (Date.now() - asked < POLL_MS && seconds > 0) return;
      asked = Date.now();
      const { status, data } = await api("GET", `/sessions/${encodeURIComponent(session)}`);
      if (status !== 200) return;
      current = data;
      offset = new Date(data.now).getTime() - Date.now();
      if (data.phase !== "early") {
        clearInterval(tick);
        close();
        resolve(data);
      }
    }, 500);
    draw();
  });
}
