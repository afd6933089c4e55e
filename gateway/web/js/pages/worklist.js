// The supporting hospital's imaging worklist: studies forwarded to it, each with the read
// request that names it and whether it still awaits a signed read.
import { t, when } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill } from "../dom.js";
import { institutionName } from "../requests.js";

/** `YYYYMMDD` as `YYYY-MM-DD`. */
function studyDate(da) {
  return /^\d{8}$/.test(da) ? `${da.slice(0, 4)}-${da.slice(4, 6)}-${da.slice(6)}` : da;
}

export default async function render(root) {
  const awaiting = h("input", { type: "checkbox", id: "awaiting-only", checked: true });
  const table = h("div");
  // Each change of filter asks again; only the latest answer is drawn.
  let asked = 0;
  const draw = async () => {
    const mine = ++asked;
    const { status, data } = await api("GET", `/imaging/worklist${awaiting.checked ? "?awaiting=true" : ""}`);
    if (mine !== asked) return;
    if (status !== 200) return fill(table, h("p", { class: "problem" }, problemText(status, data)));
    if (!data.length) return fill(table, h("p", { class: "muted" }, t("worklist.empty")));
    const rows = await Promise.all(data.map(async (s) => h("tr", { "data-study": s.study_instance_uid },
      h("td", {}, studyDate(s.study_date)),
      h("td", {}, s.modalities.join("/")),
      h("td", {}, s.accession_number),
      h("td", {}, s.patient_name.replaceAll("^", " ")),
      h("td", {}, await institutionName(s.source_institution_id)),
      h("td", {}, t("worklist.instances", { delivered: s.delivered, total: s.instances })),
      h("td", {}, when(s.received_at)),
      h("td", {}, s.request_id
        ? h("a", { href: `/requests/${s.request_id}` }, `#${s.request_id} ${t(`state.${s.request_state}`)}`)
        : h("span", { class: "muted" }, t("worklist.no_request"))),
      h("td", {}, s.awaiting_read ? h("span", { class: "badge urgent" }, t("worklist.awaiting")) : t("worklist.read")),
      h("td", {}, h("a", { class: "button open-viewer", href: `/viewer/${encodeURIComponent(s.study_instance_uid)}` }, t("worklist.open"))))));
    if (mine !== asked) return;
    fill(table, h("table", { class: "stack", id: "worklist" },
      h("thead", {}, h("tr", {}, ["worklist.date", "worklist.modality", "worklist.accession", "patient.name",
        "worklist.from", "worklist.count", "worklist.received", "worklist.request", "worklist.status", ""]
        .map((k) => h("th", {}, k ? t(k) : "")))),
      h("tbody", {}, rows)));
  };
  awaiting.addEventListener("change", draw);
  fill(root, h("h1", {}, t("nav.worklist")),
    h("label", { class: "check" }, awaiting, " ", t("worklist.awaiting_only")), table);
  await draw();
}
