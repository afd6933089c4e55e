// The side of a room beside the video: who is there, and in a consultation the case (the
// request's facts, case summary, study and attachments), the text chat kept with the
// session, and the opinion (the consultant writes and signs it here; the others read it
// once signed).
//
// For tests: tabs `button[data-tab]` (people, case, chat, opinion) with `aria-selected`,
// `#case` (`[data-field]` per fact), `#chat-log li[data-id]` (`.who`, `.body`), `#chat-form`
// with `textarea[name=body]` and `#chat-send`, `#chat-note`, `#opinion-panel`
// (`#start-session` while the session has not begun; `.opinion-version[data-version]`).
import { t } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill } from "../dom.js";
import { onSummary } from "../notices.js";
import { opinionEditor, signedVersion } from "../opinion.js";

/** How often the chat asks for new messages while the room is open. */
const CHAT_MS = 2_000;

function when(iso) {
  return new Intl.DateTimeFormat(document.documentElement.lang || "zh-CN", {
    timeZone: "Asia/Shanghai", hour: "2-digit", minute: "2-digit", hour12: false,
  }).format(new Date(iso));
}

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([key, value]) => [h("dt", {}, t(key)), h("dd", { "data-field": key }, value)]));
}

/** The case of request `id`: facts, summary, study and attachments. */
async function casePanel(panel, id) {
  const [{ status, data: r }, { data: attachments }] = await Promise.all([
    api("GET", `/requests/${id}`),
    api("GET", `/requests/${id}/attachments`),
  ]);
  if (status !== 200) return fill(panel, h("p", { class: "problem" }, problemText(status, r)));
  const c = r.content;
  const s = c.case_summary ?? {};
  fill(panel,
    facts([
      ["patient.name", c.patient?.name],
      ["patient.sex", c.patient?.sex ? t(`sex.${c.patient.sex}`) : null],
      ["patient.birth_date", c.patient?.birth_date],
      ["request.reason", c.reason],
      ["request.purpose", c.purpose],
      ["summary.chief_complaint", s.chief_complaint],
      ["summary.history", s.history],
      ["summary.findings", s.findings],
      ["summary.question", s.question],
      ["request.study", c.study_instance_uid
        ? h("a", { href: `/viewer/${encodeURIComponent(c.study_instance_uid)}?request=${id}`, target: "_blank", rel: "noopener" },
          c.accession_number || t("room.case.open_study"))
        : null],
    ]),
    h("h3", {}, t("attachments.title")),
    attachments?.length
      ? h("ul", {}, attachments.map((a) => h("li", {},
        h("a", { href: `/api/v1/requests/${id}/attachments/${a.id}`, target: "_blank", rel: "noopener" }, a.filename))))
      : h("p", { class: "muted" }, t("common.none")),
    h("p", {}, h("a", { href: `/requests/${id}`, target: "_blank", rel: "noopener" }, t("room.case.whole"))));
}

/** The chat of `session`: what was said so far, new messages every few seconds. */
function chatPanel(panel, session, open) {
  const log = h("ol", { id: "chat-log", class: "chat-log", "aria-live": "polite" });
  const body = h("textarea", { name: "body", rows: 2, maxlength: 1000, "aria-label": t("room.chat.label") });
  const note = h("p", { id: "chat-note", class: "problem", role: "alert" });
  const send = h("button", { type: "submit", id: "chat-send", class: "primary" }, t("room.chat.send"));
  const form = h("form", { id: "chat-form", class: "chat-form" }, body, send, note);
  let last = 0;
  let unseen = 0;
  const shown = new Set();
  const listeners = [];

  function add(m) {
    if (shown.has(m.id)) return;
    shown.add(m.id);
    last = Math.max(last, m.id);
    log.append(h("li", { "data-id": m.id },
      h("span", { class: "who" }, m.name), " ",
      h("time", { class: "muted", datetime: m.created_at }, when(m.created_at)),
      h("p", { class: "body" }, m.body)));
    log.scrollTop = log.scrollHeight;
    unseen += 1;
    for (const fn of listeners) fn(unseen);
  }

  async function fetchNew() {
    const { status, data } = await api("GET", `/sessions/${encodeURIComponent(session)}/messages?after=${last}`);
    if (status === 200) data.forEach(add);
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(note);
    if (!body.value.trim()) return;
    send.disabled = true;
    const { status, data } = await api("POST", `/sessions/${encodeURIComponent(session)}/messages`, { body: body.value });
    send.disabled = false;
    if (status !== 201) {
      fill(note, problemText(status, data));
      return;
    }
    body.value = "";
    add(data);
  });
  body.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  fill(panel, log, open ? form : h("p", { class: "muted" }, t("room.chat.closed")));
  fetchNew();
  const timer = open ? setInterval(fetchNew, CHAT_MS) : null;
  return {
    stop: () => clearInterval(timer),
    seen: () => { unseen = 0; },
    onUnseen: (fn) => listeners.push(fn),
  };
}

/** The signed versions of an opinion, newest first. */
function signedOpinions(opinions) {
  const signed = opinions.filter((o) => o.status !== "draft").sort((a, b) => b.version - a.version);
  if (!signed.length) return h("p", { class: "muted" }, t("opinion.none"));
  return signed.map((o, i) => signedVersion(o, t(i === 0 ? "opinion.latest" : "opinion.earlier", { version: o.version })));
}

/** The opinion of request `id`: the signed versions; for the consultant, the editor. */
async function opinionPanel(panel, id, me) {
  const load = async () => {
    const [{ status, data: r }, { data: opinions }] = await Promise.all([
      api("GET", `/requests/${id}`),
      api("GET", `/requests/${id}/opinions`),
    ]);
    if (status !== 200) return fill(panel, h("p", { class: "problem" }, problemText(status, r)));
    const consultant = me.clinician_id !== null && me.clinician_id === r.consultant_id;
    const note = h("p", { class: "problem", role: "alert" });
    const parts = [signedOpinions(opinions ?? [])];
    if (consultant && r.state === "scheduled") {
      parts.push(h("p", { class: "muted" }, t("room.opinion.start_first")),
        h("button", { type: "button", id: "start-session", class: "primary", onclick: async () => {
          const { status: s, data } = await api("POST", `/requests/${id}/start`, { version: r.version });
          if (s !== 200) return fill(note, problemText(s, data));
          await load();
        } }, t("step.start")), note);
    } else if (consultant && ["in_session", "opinion_signed", "acknowledged"].includes(r.state)) {
      const all = opinions ?? [];
      const amending = all.some((o) => o.status !== "draft");
      parts.push(opinionEditor(id, {
        me, draft: all.find((o) => o.status === "draft"), amending,
        heading: t(amending ? "opinion.amend" : "opinion.write"), onChange: load,
      }));
    }
    fill(panel, parts);
    panel.dataset.state = r.state;
  };
  await load();
  // A step of the request (the opinion signed, amended, acknowledged) shows here too.
  let seen = null;
  onSummary((s) => {
    if (seen !== null && s.newest > seen && !panel.contains(document.activeElement)) load();
    seen = Math.max(seen ?? 0, s.newest);
  });
  return load;
}

/**
 * The side panel for the room of `brief`, around `people` (the list of who is there).
 * Returns `{element, stop}`.
 */
export function sidePanel(brief, me, people) {
  const consultation = brief.kind === "consultation" && brief.request_id !== null;
  const open = brief.phase === "open";
  const panels = { people };
  if (consultation) {
    panels.case = h("section", { id: "case", class: "side-panel" });
    casePanel(panels.case, brief.request_id);
  }
  panels.chat = h("section", { id: "chat", class: "side-panel" });
  const chat = chatPanel(panels.chat, brief.session, open);
  if (consultation) {
    panels.opinion = h("section", { id: "opinion-panel", class: "side-panel" });
    opinionPanel(panels.opinion, brief.request_id, me);
  }
  const tabs = {};
  const select = (name) => {
    for (const [key, panel] of Object.entries(panels)) {
      panel.hidden = key !== name;
      tabs[key].setAttribute("aria-selected", String(key === name));
    }
    if (name === "chat") {
      chat.seen();
      delete tabs.chat.dataset.unseen;
    }
  };
  for (const name of Object.keys(panels)) {
    tabs[name] = h("button", { type: "button", role: "tab", "data-tab": name, onclick: () => select(name) }, t(`room.tab.${name}`));
  }
  chat.onUnseen((n) => {
    if (panels.chat.hidden) tabs.chat.dataset.unseen = String(n);
    else chat.seen();
  });
  select(consultation && me.clinician_id !== null && brief.role === "consultant" ? "case" : "people");
  const element = h("aside", { class: "room-side card" },
    h("nav", { class: "tabs", role: "tablist" }, Object.values(tabs)),
    Object.values(panels));
  return { element, stop: () => chat.stop() };
}
