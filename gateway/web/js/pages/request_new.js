// A new request: every field the national rules ask for, the patient's informed consent
// first, and optionally a study the institution has received. "Save draft" keeps it;
// "Submit" saves and sends it to the designated supporter, who is found by the server
// from the pairing (a clinician never picks an unpaired hospital).
import { t } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill, field } from "../dom.js";

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
  }));
}

export default async function render(root) {
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
    sex: select("patient.sex", [["M", t("sex.M")], ["F", t("sex.F")]], "M"),
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

  const message = h("p", { class: "problem", role: "alert", id: "form-problem" });
  const form = h("form", { id: "request-form", novalidate: true },
    h("h1", {}, t("new.title")),
    h("section", { class: "card" }, h("h2", {}, t("new.consent")),
      h("p", { class: "muted" }, t("new.consent_first")),
      h("label", { class: "check" }, f.consentGiven, " ", t("new.consent_confirm")),
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
      field(t("new.study_pick"), f.study)),
    message,
    h("div", { class: "actions" },
      h("button", { type: "submit", class: "primary", id: "submit-request", value: "submit" }, t("new.submit")),
      h("button", { type: "submit", id: "save-draft", value: "draft" }, t("new.save_draft"))));

  studies().then((list) => {
    for (const s of list) {
      f.study.append(h("option", { value: s.uid, "data-accession": s.accession },
        [s.date, s.modalities, s.accession, s.description].filter(Boolean).join(" · ")));
    }
  });

  const content = () => {
    const consent = {
      given_by: f.givenBy.value,
      at: fromLocal(f.consentAt.value),
      method: f.method.value,
    };
    if (f.givenBy.value !== "patient") {
      Object.assign(consent, { name: f.consentName.value, relation: f.relation.value, reason: f.consentReason.value });
    }
    const study = f.study.selectedOptions[0];
    return {
      reason: f.reason.value,
      purpose: f.purpose.value,
      window: { start: fromLocal(f.start.value), end: fromLocal(f.end.value) },
      case_summary: {
        chief_complaint: f.chief.value, history: f.history.value,
        findings: f.findings.value, question: f.question.value,
      },
      specialty: f.specialty.value,
      min_title: f.minTitle.value,
      patient: {
        name: f.patientName.value, sex: f.sex.value,
        birth_date: f.birth.value || null, id_number: f.idNumber.value || null,
      },
      consent,
      study_instance_uid: study?.value || null,
      accession_number: study?.value ? study.dataset.accession || null : null,
    };
  };

  const show = (status, problem) => {
    for (const el of form.querySelectorAll(".field .error")) fill(el);
    const name = problem?.field ?? "";
    const target = [...form.querySelectorAll("[data-error-for]")]
      .find((el) => name && (el.dataset.errorFor === name || el.dataset.errorFor.endsWith(`.${name}`)
        || el.dataset.errorFor.startsWith(`${name}.`)));
    const text = problemText(status, problem);
    if (target) {
      fill(target, text);
      target.closest(".field")?.querySelector("input,select,textarea")?.focus();
    }
    fill(message, text, problem?.detail && problem.detail !== text ? h("small", { class: "detail" }, ` (${problem.detail})`) : null);
  };

  let draftId = null;
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const submit = e.submitter?.value === "submit";
    fill(message);
    if (submit && !f.consentGiven.checked) {
      show(422, { field: "consent.confirmed", title: t("new.consent_needed") });
      fill(message, t("new.consent_needed"));
      return;
    }
    if (f.method.value === "scan" && !f.scan.files.length) {
      fill(message, t("consent.scan_hint"));
      return;
    }
    for (const b of form.querySelectorAll("button")) b.disabled = true;
    try {
      const body = content();
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
      if (f.method.value === "scan") {
        const file = f.scan.files[0];
        const up = await fetch(`/api/v1/requests/${id}/attachments?filename=${encodeURIComponent(file.name)}`, {
          method: "POST", credentials: "same-origin", headers: { "content-type": file.type }, body: file,
        });
        const info = await up.json();
        if (up.status !== 201) return show(up.status, info);
        const patched = await api("PATCH", `/requests/${id}`, {
          content: { consent: { ...body.consent, scan_sha256: info.sha256 } },
        });
        if (patched.status !== 200) return show(patched.status, patched.data);
      }
      if (submit) {
        const sent = await api("POST", `/requests/${id}/submit`, {});
        if (sent.status !== 200) {
          // The draft is kept; the page of the request shows what is missing.
          show(sent.status, sent.data);
          message.append(" ", h("a", { href: `/requests/${id}` }, t("new.draft_kept", { id })));
          return;
        }
      }
      location.href = `/requests/${id}`;
    } finally {
      for (const b of form.querySelectorAll("button")) b.disabled = false;
    }
  });
  fill(root, form);
}
