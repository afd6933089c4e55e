// One request, for both sides: what was asked, the timeline with its deadlines, the
// attachments, the opinions, and the steps the caller may take now (accept with a slot
// or decline with a reason; start and join the session; write, sign and amend the
// opinion (opinion.js); acknowledge it; open the print view and each signed version's
// PDF). The server decides who may do what; this page only offers
// the steps that fit the caller's side and the request's state.
import { t, has, when } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill, field } from "../dom.js";
import { onSummary } from "../notices.js";
import { badges, institutionName, uploadAttachment } from "../requests.js";
import { opinionEditor, signedVersion } from "../opinion.js";

const DECLINE_CODES = ["no_specialist", "out_of_scope", "incomplete", "capacity"];

function facts(pairs) {
  return h("dl", { class: "facts" },
    pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .flatMap(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)]));
}

export default async function render(root, { me, segments }) {
  const id = segments[1];
  if (!/^\d+$/.test(id ?? "")) {
    fill(root, h("p", { class: "problem", id: "refused" }, t("error.not_found")));
    return;
  }
  const problem = h("p", { class: "problem", role: "alert", id: "step-problem" });
  const load = async () => {
    const [r, o, a] = await Promise.all([
      api("GET", `/requests/${id}`),
      api("GET", `/requests/${id}/opinions`),
      api("GET", `/requests/${id}/attachments`),
    ]);
    if (r.status !== 200) {
      document.body.dataset.access = "refused";
      fill(root, h("h1", {}, t("request.title", { id })),
        h("p", { class: "problem", id: "refused" },
          r.status === 403 ? t("request.no_access") : problemText(r.status, r.data)));
      return;
    }
    await draw(r.data, o.status === 200 ? o.data : [], a.status === 200 ? a.data : []);
  };

  /** Takes a step; on success draws the page again, else says why. */
  const step = async (name, body = {}, version) => {
    fill(problem);
    // One step at a time: a second click must not send the step again.
    const buttons = [...root.querySelectorAll("button")];
    for (const b of buttons) b.disabled = true;
    const { status, data } = await api("POST", `/requests/${id}/${name}`, { ...body, version });
    for (const b of buttons) b.disabled = false;
    if (status !== 200) {
      fill(problem, problemText(status, data));
      return false;
    }
    await load();
    return true;
  };

  const draw = async (r, opinions, attachments) => {
    const mine = me.institution_id;
    const requester = mine === r.requester_institution_id;
    const supporter = mine === r.supporter_institution_id;
    const consultant = me.clinician_id !== null && me.clinician_id === r.consultant_id;
    // Who answers on the supporting side: coordinators, clinicians, and radiologists for
    // imaging reads (the server decides; the page offers only what fits).
    const answers = me.roles.includes("coordinator") || me.roles.includes("clinician")
      || (r.kind === "imaging_read" && me.roles.includes("radiologist"))
      || (r.kind === "pathology_read" && me.roles.includes("pathologist"));
    // The people the booking names: only they are let into the session's room.
    const named = consultant || me.id === r.requester_user_id
      || (me.clinician_id !== null && me.clinician_id === r.content.accompanying_clinician_id);
    const c = r.content;
    const summary = c.case_summary ?? {};
    const sections = [];

    sections.push(h("section", { class: "card", id: "request-facts" }, facts([
      ["request.kind", t(`kind.${r.kind}`)],
      ["request.from", await institutionName(r.requester_institution_id)],
      ["request.to", await institutionName(r.supporter_institution_id)],
      ["request.consultant", r.consultant_id ? await clinicianName(r.consultant_id) : null],
      ["request.created", when(r.created_at)],
      ["request.submitted", when(r.submitted_at)],
      ["request.decision_due", r.state === "submitted" ? when(r.decision_due_at) : null],
      ["request.window", c.window ? `${when(c.window.start)} – ${when(c.window.end)}` : null],
      ["request.scheduled", r.scheduled_start ? `${when(r.scheduled_start)} – ${when(r.scheduled_end)}` : null],
      ["request.specialty", c.specialty],
      ["request.min_title", c.min_title ? t(`title.${c.min_title}`) : null],
      ["request.reason", c.reason],
      ["request.purpose", c.purpose],
      ["patient.name", c.patient?.name],
      ["patient.sex", c.patient ? t(`sex.${c.patient.sex}`) : null],
      ["patient.birth_date", c.patient?.birth_date],
      ["request.consent", c.consent ? t("request.consent_by", { by: t(`consent.by.${c.consent.given_by}`), at: when(c.consent.at) }) : null],
      ["request.study", c.study_instance_uid ? h("a", { href: `/viewer/${encodeURIComponent(c.study_instance_uid)}?request=${r.id}` }, c.accession_number || c.study_instance_uid) : null],
      ["request.decline_reason", r.decline_code ? t("request.decline_value", {
        reason: has(`decline.${r.decline_code}`) ? t(`decline.${r.decline_code}`) : r.decline_code, text: r.decline_text ?? "" }) : null],
    ])));

    sections.push(h("section", { class: "card" }, h("h2", {}, t("new.summary")), facts([
      ["summary.chief_complaint", summary.chief_complaint],
      ["summary.history", summary.history],
      ["summary.findings", summary.findings],
      ["summary.question", summary.question],
    ])));

    // What the caller may do now.
    const actions = h("div", { class: "actions", id: "actions" });
    const v = r.version;
    if (requester && r.state === "draft") {
      actions.append(
        h("a", { class: "button", id: "edit-draft", href: `/requests/new?draft=${r.id}` }, t("step.edit")),
        h("button", { class: "primary", id: "submit", onclick: () => step("submit", {}, v) }, t("step.submit")));
    }
    if (requester && ["draft", "submitted", "accepted", "scheduled"].includes(r.state)) {
      actions.append(h("button", { class: "danger", id: "cancel-request", onclick: () => {
        if (confirm(t("step.cancel_confirm"))) step("cancel", {}, v);
      } }, t("step.cancel")));
    }
    if (supporter && answers && r.state === "submitted") {
      sections.push(await acceptForm(r, me, step));
      sections.push(declineForm(step, v));
    }
    if (supporter && answers && r.state === "accepted" && r.kind === "consultation") {
      sections.push(await scheduleForm(r, me, step));
    }
    if (r.kind === "consultation" && ["scheduled", "in_session"].includes(r.state) && (requester || supporter)) {
      if (r.state === "scheduled") {
        actions.append(h("button", { id: "start", onclick: () => step("start", {}, v) }, t("step.start")));
      }
      if (named) {
        actions.append(h("a", { class: "button primary", id: "join", href: `/rooms/consultation-${r.id}` }, t("step.join")));
      }
    }
    if (requester && r.state === "opinion_signed") {
      actions.append(h("button", { class: "primary", id: "acknowledge", onclick: () => step("acknowledge", {}, v) }, t("step.acknowledge")));
    }
    if (requester && r.state === "acknowledged") {
      actions.append(h("button", { id: "close", onclick: () => step("close", {}, v) }, t("step.close")));
    }
    sections.unshift(h("div", {}, actions, problem));

    // Opinions: signed versions for everyone; the consultant's draft for them.
    const signed = opinions.filter((o) => o.status !== "draft").sort((a, b) => b.version - a.version);
    const draft = opinions.find((o) => o.status === "draft");
    const opinionSection = h("section", { class: "card", id: "opinions" }, h("h2", {}, t("opinion.title")));
    if (!signed.length) opinionSection.append(h("p", { class: "muted" }, t("opinion.none")));
    if (signed.length) {
      opinionSection.append(h("p", { class: "actions", id: "opinion-documents" },
        h("a", { class: "button", id: "print-view", href: `/requests/${r.id}/opinion` }, t("document.print_view"))));
    }
    signed.forEach((o, i) => {
      const version = signedVersion(o, [t(i === 0 ? "opinion.latest" : "opinion.earlier", { version: o.version }),
        " ", h("span", { class: "muted" }, t("opinion.signed_at", { at: when(o.signed_at) }))]);
      version.append(h("p", {}, h("a", { class: "pdf-link", "data-version": o.version, href: `/api/v1/requests/${r.id}/opinions/${o.version}/pdf` },
        t("document.pdf_version", { version: o.version }))));
      opinionSection.append(version);
    });
    const writable = consultant && (
      r.state === "in_session" || r.state === "opinion_signed" || r.state === "acknowledged"
      || (r.kind !== "consultation" && ["accepted", "scheduled"].includes(r.state)));
    if (writable) {
      opinionSection.append(opinionEditor(id, {
        me, draft, amending: signed.length > 0, onChange: load,
        heading: t(signed.length ? "opinion.amend" : "opinion.write"),
      }));
    }
    sections.push(opinionSection);

    sections.push(h("section", { class: "card", id: "attachments" }, h("h2", {}, t("attachments.title")),
      attachments.length
        ? h("ul", {}, attachments.map((a) => h("li", {},
            h("a", { href: `/api/v1/requests/${id}/attachments/${a.id}` }, a.filename),
            " ", h("span", { class: "muted" }, t("attachments.size", { kb: Math.ceil(a.size / 1024) })))))
        : h("p", { class: "muted" }, t("common.none")),
      requester && ["draft", "submitted", "accepted", "scheduled"].includes(r.state) ? uploadForm(id, load) : null));

    // What was written in the session's room, kept with the request.
    if (r.kind === "consultation" && r.scheduled_start) {
      const chat = await api("GET", `/sessions/consultation-${id}/messages`);
      if (chat.status === 200 && chat.data.length) {
        sections.push(h("section", { class: "card", id: "room-chat" }, h("h2", {}, t("request.room_chat")),
          h("ol", { class: "chat-log" }, chat.data.map((m) => h("li", { "data-id": m.id },
            h("span", { class: "who" }, m.name), " ", h("span", { class: "muted" }, when(m.created_at)),
            h("p", { class: "body" }, m.body))))));
      }
    }

    sections.push(h("section", { class: "card", id: "timeline" }, h("h2", {}, t("timeline.title")),
      h("ol", { class: "timeline" }, r.events.map((e) => h("li", { "data-to": e.to_state },
        h("strong", {}, t(`state.${e.to_state}`)), " ", h("span", { class: "muted" }, when(e.at)))),
        upcoming(r))));

    fill(root, h("h1", {}, t("request.title", { id: r.id }), " ", badges(r)), sections);
    document.body.dataset.state = r.state;
  };

  await load();

  // A notice about this request while it is open: the page is drawn again, unless an
  // opinion is being written, when it says so and keeps what is typed.
  let seen = null;
  onSummary(async (s) => {
    const before = seen;
    seen = Math.max(seen ?? 0, s.newest);
    if (before === null || s.newest <= before) return;
    const n = await api("GET", "/notifications?limit=20");
    if (n.status !== 200 || !n.data.some((x) => String(x.request_id) === id && x.id > before)) return;
    if (document.querySelector("#opinion-body")?.value) {
      if (!document.getElementById("request-updated")) {
        root.prepend(h("p", { class: "card waiting-banner", id: "request-updated", role: "status" }, t("notice.request_changed"), " ",
          h("button", { type: "button", onclick: () => load() }, t("notice.show_changes"))));
      }
    } else {
      await load();
    }
  });
}

const clinicians = new Map();

/** A clinician's name and title (looked up once per page). */
function clinicianName(id) {
  if (!clinicians.has(id)) {
    clinicians.set(id, api("GET", `/clinicians/${id}`).then(({ status, data }) =>
      status === 200 ? `${data.name} · ${data.title}` : `#${id}`));
  }
  return clinicians.get(id);
}

/** What the request waits for next, with its deadline or time. */
function upcoming(r) {
  const next = (key, at, late) => h("li", { class: `upcoming${late ? " late" : ""}`, id: "next-deadline" },
    h("strong", {}, t(key)), " ", h("span", {}, when(at)));
  if (r.state === "submitted") return next("timeline.decision_due", r.decision_due_at, r.overdue);
  if (r.state === "accepted" && r.content.window) return next("timeline.schedule_by", r.content.window.end, false);
  if (r.state === "scheduled") return next("timeline.session", r.scheduled_start, false);
  if (r.state === "opinion_signed") return h("li", { class: "upcoming" }, h("strong", {}, t("timeline.acknowledge")));
  return null;
}

/** Accept: the consultant (the caller, or one chosen by a coordinator) and, for a
 * consultation, one of their free slots inside the proposed window. */
async function acceptForm(r, me, step) {
  // Only those who qualify for this request are offered: the specialty asked for first,
  // then rank, then years of practice (the server's order).
  const { status, data: list } = await api("GET", `/requests/${r.id}/consultants`);
  const consultants = status === 200 ? list : [];
  const label = (c) => [c.name, c.title, c.specialty, c.practice_years !== null ? t("accept.years", { n: c.practice_years }) : null,
    c.specialty_matches ? t("accept.matches") : null].filter(Boolean).join(" · ");
  const who = h("select", { name: "consultant_id", id: "consultant" },
    consultants.map((c) => h("option", { value: c.id, "data-matches": String(c.specialty_matches) }, label(c))));
  if (consultants.some((c) => c.id === me.clinician_id)) who.value = String(me.clinician_id);
  const slot = h("div", { id: "slot", class: "slots", role: "group" });
  const needsSlot = r.kind === "consultation";
  const note = h("p", { class: "problem", role: "alert" });
  const loadSlots = async () => { fill(note); if (who.value) await fillSlots(slot, who.value, r); };
  who.addEventListener("change", loadSlots);
  if (needsSlot) await loadSlots();
  const button = h("button", { type: "submit", class: "primary", id: "accept", disabled: !consultants.length }, t("step.accept"));
  const form = h("form", { class: "card", id: "accept-form" },
    h("h2", {}, t("accept.title")),
    consultants.length ? field(t("accept.consultant"), who) : h("p", { class: "problem", id: "no-consultant" }, t("accept.none_qualified")),
    needsSlot && consultants.length ? h("div", { class: "field" }, h("span", { class: "label" }, t("accept.slot")), slot) : null,
    note,
    button);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (needsSlot && !slot.value) {
      fill(note, slot.querySelector("button[data-start]") ? t("accept.choose_slot") : t("accept.no_slots_hint"));
      return;
    }
    const ok = await step("accept", { consultant_id: Number(who.value) }, r.version);
    // Accepted: the slot is booked at once.
    if (ok && needsSlot) await step("schedule", { start: slot.value });
  });
  return form;
}

async function fillSlots(holder, consultant, r) {
  const { slotGrid } = await import("../slots.js");
  const from = new Date(Math.max(Date.now(), Date.parse(r.content.window.start)));
  // The slots of at most 31 days are asked for at once (the API's limit).
  const to = new Date(Math.min(Date.parse(r.content.window.end), from.getTime() + 30 * 86400e3));
  const day = (d) => new Date(d.getTime() + 8 * 3600e3).toISOString().slice(0, 10);
  const { status, data } = await api("GET", `/clinicians/${consultant}/slots?from=${day(from)}&to=${day(to)}`);
  const slots = status === 200 ? data.filter((s) =>
    Date.parse(s.start) >= Date.parse(r.content.window.start) && Date.parse(s.end) <= Date.parse(r.content.window.end)) : [];
  slotGrid(holder, slots);
}

async function scheduleForm(r, me, step) {
  const slot = h("div", { id: "slot", class: "slots", role: "group" });
  await fillSlots(slot, r.consultant_id, r);
  const form = h("form", { class: "card", id: "schedule-form" },
    h("h2", {}, t("schedule.title")),
    h("div", { class: "field" }, h("span", { class: "label" }, t("accept.slot")), slot),
    h("button", { type: "submit", class: "primary", id: "schedule" }, t("step.schedule")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (slot.value) step("schedule", { start: slot.value }, r.version);
  });
  return form;
}

function declineForm(step, version) {
  const code = h("select", { name: "reason_code", id: "decline-code" },
    DECLINE_CODES.map((c) => h("option", { value: c }, t(`decline.${c}`))));
  const text = h("textarea", { name: "reason_text", id: "decline-text", required: true });
  const form = h("form", { class: "card", id: "decline-form" },
    h("h2", {}, t("decline.title")),
    field(t("decline.code"), code),
    field(t("decline.text"), text),
    h("button", { type: "submit", class: "danger", id: "decline" }, t("step.decline")));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    step("decline", { reason_code: code.value, reason_text: text.value }, version);
  });
  return form;
}

function uploadForm(id, load) {
  const file = h("input", { type: "file", name: "file", id: "attachment-file", accept: "application/pdf,image/jpeg,image/png" });
  const note = h("p", { class: "problem", role: "alert" });
  const form = h("form", { id: "attach-form" }, field(t("attachments.add"), file), note,
    h("button", { type: "submit" }, t("attachments.upload")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f) return;
    const { status, data } = await uploadAttachment(id, f);
    if (status !== 201) {
      fill(note, problemText(status, data));
      return;
    }
    await load();
  });
  return form;
}
