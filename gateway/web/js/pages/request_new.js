// A new request: every field the national rules ask for, the patient's informed consent
// first, and optionally a study the institution has received. The designated supporter
// the pairing names for the kind chosen is shown before anything is typed (or why there
// is none, and then nothing can be sent). "Save draft" keeps it; "Submit" creates and
// submits it in one call, so that a refusal leaves no draft behind. A refusal marks every
// field it names at once, beside the field, in the page's language, opening what hid it.
import { t } from "../i18n.js";
import { api, problemText, rule } from "../api.js";
import { h, fill, field } from "../dom.js";
import { uploadAttachment } from "../requests.js";
import { supporterPanel, studyCheck, samePatient } from "../request_form.js";

/** `YYYY-MM-DDTHH:MM` of a date in China time, for a datetime-local input. */
function localValue(date) {
  const shifted = new Date(date.getTime() + 8 * 3600 * 1000);
  return shifted.toISOString().slice(0, 16);
}

/** A datetime-local value read as China time, in UTC ISO form. */
function fromLocal(value) {
  return value ? new Date(`${value}:00+08:00`).toISOString() : null;
}

function select(name, options, value) {
  return h("select", { name },
    options.map(([v, label]) => h("option", { value: v, selected: v === value }, label)));
}

function text(name, attrs = {}) {
  return h("input", { name, ...attrs });
}

function area(name) {
  return h("textarea", { name });
}

/** The studies the caller's institution sent, newest first, for attaching one. */
async function studies() {
  const response = await fetch("/dicomweb/studies?limit=50", {
    credentials: "same-origin", headers: { accept: "application/dicom+json" },
  });
  if (!response.ok) return [];
  const list = response.status === 204 ? [] : await response.json();
  const value = (s, tag) => s[tag]?.Value?.[0];
  return list.map((s) => ({
    uid: value(s, "0020000D"),
    accession: value(s, "00080050") ?? "",
    date: value(s, "00080020") ?? "",
    modalities: (s["00080061"]?.Value ?? []).join("/"),
    description: value(s, "00081030") ?? "",
    patientName: String(s["00100010"]?.Value?.[0]?.Alphabetic ?? "").replaceAll("^", " ").trim(),
    patientNames: ["Alphabetic", "Ideographic"].map((g) => String(s["00100010"]?.Value?.[0]?.[g] ?? "")).filter(Boolean),
    patientId: value(s, "00100020") ?? "",
  })).map((s) => ({ ...s, patient: [s.patientName, s.patientId].filter(Boolean).join(" ") }));
}

/** `YYYY-MM-DDTHH:MM` in China time of an ISO instant, for a datetime-local input. */
function localOf(iso) {
  return iso ? localValue(new Date(iso)) : "";
}

export default async function render(root, { query }) {
  const now = new Date();
  const f = {
    kind: select("kind", ["consultation", "imaging_read", "pathology_read"].map((k) => [k, t(`kind.${k}`)]), "consultation"),
    urgency: select("urgency", ["normal", "urgent"].map((k) => [k, t(`urgency.${k}`)]), "normal"),
    reason: area("reason"),
    purpose: area("purpose"),
    start: text("window.start", { type: "datetime-local", value: localValue(new Date(now.getTime() + 3600e3)) }),
    end: text("window.end", { type: "datetime-local", value: localValue(new Date(now.getTime() + 3 * 86400e3)) }),
    chief: text("case_summary.chief_complaint"),
    history: area("case_summary.history"),
    findings: area("case_summary.findings"),
    question: area("case_summary.question"),
    specialty: text("specialty"),
    minTitle: select("min_title", ["intermediate", "deputy_senior", "senior"].map((k) => [k, t(`title.${k}`)]), "deputy_senior"),
    patientName: text("patient.name", { autocomplete: "off" }),
    sex: select("patient.sex", [["", t("new.choose")], ["M", t("sex.M")], ["F", t("sex.F")]], ""),
    birth: text("patient.birth_date", { type: "date" }),
    idNumber: text("patient.id_number", { autocomplete: "off" }),
    givenBy: select("consent.given_by", ["patient", "guardian", "relative"].map((k) => [k, t(`consent.by.${k}`)]), "patient"),
    consentName: text("consent.name"),
    relation: text("consent.relation"),
    consentReason: text("consent.reason"),
    consentAt: text("consent.at", { type: "datetime-local", value: localValue(now) }),
    method: select("consent.method", ["e_consent", "scan"].map((k) => [k, t(`consent.method.${k}`)]), "e_consent"),
    scan: h("input", { name: "consent.scan", type: "file", accept: "application/pdf,image/jpeg,image/png" }),
    consentGiven: h("input", { name: "consent.confirmed", type: "checkbox" }),
    study: select("study", [["", t("new.no_study")]], ""),
  };
  const proxy = h("div", { class: "proxy" },
    field(t("consent.name"), f.consentName),
    field(t("consent.relation"), f.relation),
    field(t("consent.reason"), f.consentReason));
  const scanField = field(t("consent.scan"), f.scan, t("consent.scan_hint"));
  const showConsentParts = () => {
    proxy.hidden = f.givenBy.value === "patient";
    scanField.hidden = f.method.value !== "scan";
  };
  f.givenBy.addEventListener("change", showConsentParts);
  f.method.addEventListener("change", showConsentParts);
  showConsentParts();

  // A draft to go on with (`?draft=<id>`): its parts fill the form, and saving changes it.
  let draftId = null;
  let draft = null;
  const asked = query.get("draft");
  if (asked && /^\d+$/.test(asked)) {
    const { status, data } = await api("GET", `/requests/${asked}`);
    if (status === 200 && data.state === "draft") {
      draft = data;
      draftId = data.id;
      fillFrom(f, data);
    }
  }


  const message = h("p", { class: "problem", role: "alert", id: "form-problem" });
  const consentError = h("small", { class: "error", "data-error-for": "consent.confirmed" });
  // Both wait for the supporter to be known.
  const submitButton = h("button", { type: "submit", class: "primary", id: "submit-request", value: "submit", disabled: true }, t("new.submit"));
  const draftButton = h("button", { type: "submit", id: "save-draft", value: "draft", disabled: true }, t("new.save_draft"));
  // Nothing is sent while the pairing names no supporter for the kind chosen.
  let blocked = true;
  const supporter = supporterPanel(() => ({ kind: f.kind.value, start: fromLocal(f.start.value) }), (none) => {
    blocked = none;
    submitButton.disabled = none;
    draftButton.disabled = none;
  });
  f.kind.addEventListener("change", () => supporter.refresh());
  f.start.addEventListener("change", () => supporter.refresh());
  const studyList = new Map();
  const check = studyCheck(() => ({
    name: f.patientName.value, sex: f.sex.value, birth: f.birth.value, id: f.idNumber.value,
  }), () => studyList.get(f.study.value));
  const form = h("form", { id: "request-form", novalidate: true },
    h("h1", {}, draftId ? t("new.title_draft", { id: draftId }) : t("new.title")),
    supporter.el,
    h("section", { class: "card" }, h("h2", {}, t("new.consent")),
      h("p", { class: "muted" }, t("new.consent_first")),
      h("label", { class: "check" }, f.consentGiven, " ", t("new.consent_confirm")),
      consentError,
      h("div", { class: "row" },
        field(t("consent.given_by"), f.givenBy),
        field(t("consent.at"), f.consentAt),
        field(t("consent.method"), f.method)),
      proxy, scanField),
    h("section", { class: "card" }, h("h2", {}, t("new.what")),
      h("div", { class: "row" },
        field(t("request.kind"), f.kind),
        field(t("request.urgency"), f.urgency),
        field(t("request.specialty"), f.specialty),
        field(t("request.min_title"), f.minTitle)),
      field(t("request.reason"), f.reason),
      field(t("request.purpose"), f.purpose),
      h("div", { class: "row" },
        field(t("request.window_start"), f.start),
        field(t("request.window_end"), f.end))),
    h("section", { class: "card" }, h("h2", {}, t("new.patient")),
      h("div", { class: "row" },
        field(t("patient.name"), f.patientName),
        field(t("patient.sex"), f.sex),
        field(t("patient.birth_date"), f.birth),
        field(t("patient.id_number"), f.idNumber))),
    h("section", { class: "card" }, h("h2", {}, t("new.summary")),
      field(t("summary.chief_complaint"), f.chief, t("summary.hint.chief_complaint")),
      field(t("summary.history"), f.history, t("summary.hint.history")),
      field(t("summary.findings"), f.findings, t("summary.hint.findings")),
      field(t("summary.question"), f.question, t("summary.hint.question"))),
    h("section", { class: "card" }, h("h2", {}, t("new.study")),
      field(t("new.study_pick"), f.study), check.el),
    message,
    h("div", { class: "actions" }, submitButton, draftButton));

  // A study of another patient is shown beside the request's, to be confirmed.
  const compare = () => {
    const study = studyList.get(f.study.value);
    const differs = study && f.patientName.value.trim() && !samePatient(study, f.patientName.value, f.idNumber.value);
    check.show(Boolean(differs), false);
  };
  for (const c of [f.study, f.patientName, f.idNumber]) c.addEventListener("change", compare);

  studies().then((list) => {
    for (const s of list) {
      studyList.set(s.uid, s);
      f.study.append(h("option", { value: s.uid, "data-accession": s.accession },
        [s.patient, s.date, s.modalities, s.accession, s.description].filter(Boolean).join(" · ")));
    }
    if (draft?.content.study_instance_uid) f.study.value = draft.content.study_instance_uid;
    if (draft?.content.study_patient_confirmed) check.show(true, true);
    compare();
  });
  supporter.refresh();

  // Parts left incomplete are left out, so that a draft saves with what is known. The
  // consent goes only once the clinician confirms it was obtained.
  const content = () => {
    let consent = null;
    if (f.consentGiven.checked) {
      consent = { given_by: f.givenBy.value, at: fromLocal(f.consentAt.value), method: f.method.value };
      if (f.givenBy.value !== "patient") {
        Object.assign(consent, { name: f.consentName.value, relation: f.relation.value, reason: f.consentReason.value });
      }
    }
    const patient = f.patientName.value.trim() && f.birth.value && f.sex.value
      ? { name: f.patientName.value, sex: f.sex.value, birth_date: f.birth.value, id_number: f.idNumber.value || null }
      : null;
    const start = fromLocal(f.start.value);
    const end = fromLocal(f.end.value);
    const study = f.study.selectedOptions[0];
    return {
      reason: f.reason.value,
      purpose: f.purpose.value,
      window: start && end ? { start, end } : null,
      case_summary: {
        chief_complaint: f.chief.value, history: f.history.value,
        findings: f.findings.value, question: f.question.value,
      },
      specialty: f.specialty.value,
      min_title: f.minTitle.value,
      patient,
      consent,
      study_instance_uid: study?.value || null,
      accession_number: study?.value ? study.dataset.accession || null : null,
      study_patient_confirmed: study?.value && check.confirmed() ? true : null,
    };
  };

  // Where the server's fields are shown: a part named as a whole is marked at its first
  // control.
  const ALIASES = {
    window: "window.start",
    patient: "patient.name",
    consent: "consent.confirmed",
    case_summary: "case_summary.chief_complaint",
    "consent.scan_sha256": "consent.scan",
    study_instance_uid: "study",
    accession_number: "study",
  };
  const target = (name) => {
    const plain = (name ?? "").replace(/^content\./, "");
    const wanted = ALIASES[plain] ?? plain;
    return [...form.querySelectorAll("[data-error-for]")].find((el) => el.dataset.errorFor === wanted)
      ?? [...form.querySelectorAll("[data-error-for]")].find((el) => plain && el.dataset.errorFor.startsWith(`${plain}.`));
  };
  /** Opens whatever hides `el`: a hidden part of the form, a closed section. */
  const reveal = (el) => {
    for (let node = el; node && node !== form; node = node.parentElement) {
      if (node.hidden) node.hidden = false;
      if (node.tagName === "DETAILS") node.open = true;
    }
  };
  const clear = () => {
    for (const el of form.querySelectorAll("[data-error-for]")) fill(el);
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    fill(message);
  };
  /** Marks each of `errors` (`[{field, detail}]`) beside its field; returns those unplaced. */
  const mark = (errors) => {
    const unplaced = [];
    let first = null;
    for (const e of errors) {
      const el = target(e.field);
      if (!el) { unplaced.push(e); continue; }
      reveal(el);
      el.append(el.textContent ? " " : "", e.detail);
      const control = el.closest(".field")?.querySelector("input,select,textarea")
        ?? (el === consentError ? f.consentGiven : null);
      control?.setAttribute("aria-invalid", "true");
      first ??= control;
    }
    first?.focus();
    return unplaced;
  };
  const show = (status, problem) => {
    clear();
    const errors = problem?.errors?.length ? problem.errors
      : problem?.field ? [{ field: problem.field, detail: problem.detail ?? problemText(status, problem) }] : [];
    if (rule(problem) === "study-patient-mismatch") check.show(true, false);
    const unplaced = mark(errors);
    const placed = errors.length - unplaced.length;
    // The sentence above the buttons: how many are marked, and what could not be.
    fill(message, placed > 1 ? t("form.fix", { n: placed }) : (problem?.detail ?? problemText(status, problem)),
      unplaced.filter((e) => e.detail !== problem?.detail).map((e) => ` ${e.detail}`));
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const submit = e.submitter?.value === "submit";
    clear();
    if (blocked) return;
    if (f.method.value === "scan" && f.consentGiven.checked && !f.scan.files.length && !draft?.content.consent?.scan_sha256) {
      mark([{ field: "consent.scan", detail: t("consent.scan_hint") }]);
      fill(message, t("consent.scan_hint"));
      return;
    }
    // A part is kept only whole: say what is missing rather than drop what was typed.
    const partial = [
      [[f.patientName, f.sex, f.birth], "new.patient_incomplete"],
      [[f.start, f.end], "new.window_incomplete"],
    ].filter(([controls]) => controls.some((c) => c.value.trim()) && controls.some((c) => !c.value.trim()))
      .map(([controls, key]) => ({ field: controls.find((c) => !c.value.trim()).name, detail: t(key) }));
    if (partial.length) {
      mark(partial);
      fill(message, partial.length > 1 ? t("form.fix", { n: partial.length }) : partial[0].detail);
      return;
    }
    for (const b of form.querySelectorAll("button")) b.disabled = true;
    try {
      const body = content();
      const scan = f.method.value === "scan" && f.scan.files.length ? f.scan.files[0] : null;
      // A first submission without a scan to attach is one call: refused, it leaves no draft.
      if (draftId === null && submit && !scan) {
        const sent = await api("POST", "/requests", { kind: f.kind.value, urgency: f.urgency.value, content: body, submit: true });
        if (sent.status !== 201) return show(sent.status, sent.data);
        location.href = `/requests/${sent.data.id}`;
        return;
      }
      // A scan is attached to a request that exists: before a draft is made for it, the
      // one-call submission (which keeps nothing when refused) tells every other gap.
      if (draftId === null && submit && scan) {
        const probe = await api("POST", "/requests", { kind: f.kind.value, urgency: f.urgency.value, content: body, submit: true });
        const others = (probe.data?.errors ?? []).filter((e) => e.field !== "consent.scan_sha256");
        if (probe.status !== 422 || others.length || !probe.data?.errors?.length) return show(probe.status, probe.data);
      }
      // A second try after a refusal changes the draft the first one made.
      if (draftId === null) {
        const created = await api("POST", "/requests", { kind: f.kind.value, urgency: f.urgency.value, content: body });
        if (created.status !== 201) return show(created.status, created.data);
        draftId = created.data.id;
        f.kind.disabled = true;
      } else {
        const changed = await api("PATCH", `/requests/${draftId}`, { urgency: f.urgency.value, content: body });
        if (changed.status !== 200) return show(changed.status, changed.data);
      }
      const id = draftId;
      if (scan) {
        const up = await uploadAttachment(id, scan);
        // A refused file name is marked at the file chosen.
        const upField = up.data?.field === "filename" ? "consent.scan" : up.data?.field;
        if (up.status !== 201) return show(up.status, { ...up.data, field: upField, errors: null });
        const info = up.data;
        if (body.consent) {
          const patched = await api("PATCH", `/requests/${id}`, {
            content: { consent: { ...body.consent, scan_sha256: info.sha256 } },
          });
          if (patched.status !== 200) return show(patched.status, patched.data);
        }
      }
      if (submit) {
        const sent = await api("POST", `/requests/${id}/submit`, {});
        if (sent.status !== 200) {
          // The draft is kept (it holds the scan); the page says so.
          show(sent.status, sent.data);
          message.append(" ", h("a", { href: `/requests/${id}` }, t("new.draft_kept", { id })));
          return;
        }
      }
      location.href = `/requests/${id}`;
    } finally {
      for (const b of form.querySelectorAll("button")) b.disabled = false;
      submitButton.disabled = blocked;
      draftButton.disabled = blocked;
    }
  });
  fill(root, form);
}

/** Fills the form's controls `f` from the request `r` (a draft being continued). */
function fillFrom(f, r) {
  const c = r.content;
  f.kind.value = r.kind;
  f.kind.disabled = true;
  f.urgency.value = r.urgency;
  const set = (control, value) => { if (value !== null && value !== undefined) control.value = value; };
  set(f.reason, c.reason);
  set(f.purpose, c.purpose);
  set(f.start, c.window ? localOf(c.window.start) : null);
  set(f.end, c.window ? localOf(c.window.end) : null);
  set(f.chief, c.case_summary?.chief_complaint);
  set(f.history, c.case_summary?.history);
  set(f.findings, c.case_summary?.findings);
  set(f.question, c.case_summary?.question);
  set(f.specialty, c.specialty);
  set(f.minTitle, c.min_title);
  set(f.patientName, c.patient?.name);
  set(f.sex, c.patient?.sex);
  set(f.birth, c.patient?.birth_date);
  set(f.idNumber, c.patient?.id_number);
  if (c.consent) {
    f.consentGiven.checked = true;
    set(f.givenBy, c.consent.given_by);
    set(f.consentName, c.consent.name);
    set(f.relation, c.consent.relation);
    set(f.consentReason, c.consent.reason);
    set(f.consentAt, localOf(c.consent.at));
    set(f.method, c.consent.method);
  }
  f.givenBy.dispatchEvent(new Event("change"));
}
