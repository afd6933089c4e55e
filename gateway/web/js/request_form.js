// Parts of the new-request form that ask the server or compare what was chosen: whom the
// request will go to, and a study whose patient is not the request's.
import { t } from "./i18n.js";
import { api, rule } from "./api.js";
import { h, fill } from "./dom.js";

/**
 * The designated supporter for what `input()` gives (`{kind, start}`), asked of the
 * server (`GET /me/supporter`) before anything is typed and again when the kind or the
 * start changes. `onState(none)` is told whether there is none (then nothing is sent).
 * The element has `data-state`: `loading`, `found` or `none` (with `data-rule`).
 */
export function supporterPanel(input, onState) {
  const el = h("section", { class: "card supporter", id: "supporter", "data-state": "loading", "aria-live": "polite" });
  let asked = 0;
  const refresh = async () => {
    const { kind, start } = input();
    const mine = ++asked;
    const at = start ? `&at=${encodeURIComponent(start)}` : "";
    const { status, data } = await api("GET", `/me/supporter?kind=${encodeURIComponent(kind)}${at}`);
    if (mine !== asked) return;
    if (status === 200) {
      el.dataset.state = "found";
      delete el.dataset.rule;
      fill(el,
        h("h2", {}, t("new.supporter.title")),
        h("p", { id: "supporter-name" }, h("strong", {}, data.institution_name),
          data.name && data.name !== data.institution_name ? ` · ${data.name}` : null),
        h("p", { class: "muted" }, t("new.supporter.period", { from: data.valid_from, to: data.valid_to })));
      onState(false);
      return;
    }
    el.dataset.state = "none";
    el.dataset.rule = rule(data);
    const why = {
      "unpaired-supporter": "new.supporter.why_unpaired",
      "outside-pairing-period": "new.supporter.why_period",
      "service-not-covered": "new.supporter.why_service",
    }[rule(data)];
    fill(el,
      h("h2", {}, t("new.supporter.title_none")),
      h("p", { class: "problem", id: "supporter-none" }, t("new.supporter.none")),
      h("p", { id: "supporter-why" }, data?.detail ?? ""),
      why ? h("p", { class: "muted" }, t(why)) : null);
    onState(true);
  };
  return { el, refresh };
}

/** A person's name as compared: no spaces, DICOM separators or case. */
function folded(name) {
  return String(name ?? "").replace(/[\s^·.]/g, "").toLowerCase();
}

/**
 * Whether `study` (from the study list: `patientNames`, `patientId`) is of the patient
 * named `name` with identity card number `id`, as the server compares them: a name of
 * the study's (any of its groups), and the same card number where the study's ID is one.
 */
export function samePatient(study, name, id) {
  const names = study.patientNames?.length ? study.patientNames : [study.patientName];
  const nameMatches = !names.some(Boolean) || names.some((n) => folded(n) === folded(name));
  const card = /^(\d{15}|\d{17}[\dXx])$/.test(String(study.patientId ?? "").trim());
  const idMatches = !card || !id?.trim() || study.patientId.trim().toUpperCase() === id.trim().toUpperCase();
  return nameMatches && idMatches;
}

/**
 * The request's patient beside the chosen study's, shown when they differ, with a box
 * to tick once the clinician checked that the study is this patient's
 * (`study_patient_confirmed`). `patient()` gives `{name, sex, birth, id}`, `study()` the
 * chosen study of the list.
 */
export function studyCheck(patient, study) {
  const box = h("input", { type: "checkbox", name: "study_patient_confirmed", id: "study-patient-confirmed" });
  const table = h("div", { class: "compare" });
  const el = h("div", { id: "study-check", class: "study-check", hidden: true },
    h("p", { class: "problem" }, t("new.study_check.differs")),
    table,
    h("label", { class: "check" }, box, " ", t("new.study_check.confirm")),
    h("small", { class: "error", "data-error-for": "study_patient_confirmed" }));
  const show = (visible, checked) => {
    el.hidden = !visible;
    if (!visible) { box.checked = false; return; }
    if (checked) box.checked = true;
    const p = patient();
    const s = study() ?? {};
    const side = (key, title, rows) => h("div", { class: "side", "data-side": key },
      h("h3", {}, title),
      h("dl", {}, rows.filter(([, v]) => v).map(([label, v]) => [h("dt", {}, label), h("dd", {}, v)])));
    fill(table,
      side("request", t("new.study_check.request"), [[t("patient.name"), p.name], [t("patient.id_number"), p.id],
        [t("patient.birth_date"), p.birth]]),
      side("study", t("new.study_check.study"), [[t("patient.name"), s.patientName], [t("new.study_check.patient_id"), s.patientId],
        [t("new.study_check.described"), [s.date, s.modalities, s.description].filter(Boolean).join(" · ")]]));
  };
  return { el, show, confirmed: () => !el.hidden && box.checked };
}
