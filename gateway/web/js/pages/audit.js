// The audit log (administrators): every access to requests and patient data, allowed or
// refused, newest first, filtered by outcome and object. People and institutions by
// name, actions and objects in the page's language; a detail the catalogue does not word
// is kept in the row's tooltip.
import { t, has, when } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill } from "../dom.js";

/** The object kinds the log knows, for the filter. */
const KINDS = ["request", "study", "ward_round", "teaching_session", "room", "worklist"];

function worded(prefix, code) {
  return has(`${prefix}.${code}`) ? t(`${prefix}.${code}`) : t("audit.other");
}

function roles(stored) {
  return stored.split(",").filter(Boolean).map((r) => worded("role", r)).join("、");
}

export default async function render(root, { query }) {
  const outcome = h("select", { id: "outcome", "aria-label": t("audit.outcome") }, ["", "allowed", "denied"].map((o) =>
    h("option", { value: o, selected: o === (query.get("outcome") ?? "") }, o ? t(`audit.${o}`) : t("audit.any"))));
  const kind = h("select", { id: "object-kind", "aria-label": t("audit.object") },
    h("option", { value: "" }, t("audit.any_object")),
    KINDS.map((k) => h("option", { value: k, selected: k === query.get("object_kind") }, worded("audit.object", k))));
  const table = h("div");
  // Each change of filter asks again; only the latest answer is drawn.
  let asked = 0;
  const draw = async () => {
    const mine = ++asked;
    const q = new URLSearchParams({ limit: "200" });
    if (outcome.value) q.set("outcome", outcome.value);
    if (kind.value) q.set("object_kind", kind.value);
    const { status, data } = await api("GET", `/audit?${q}`);
    if (mine !== asked) return;
    if (status !== 200) return fill(table, h("p", { class: "problem", id: "refused" }, problemText(status, data)));
    fill(table, h("table", { class: "stack", id: "audit" },
      h("thead", {}, h("tr", {}, ["audit.at", "audit.user", "audit.institution", "audit.roles", "audit.action", "audit.object", "audit.outcome", "audit.detail"]
        .map((k) => h("th", {}, t(k))))),
      h("tbody", {}, data.map((e) => {
        const detail = e.detail && has(`audit.detail.${e.detail}`) ? t(`audit.detail.${e.detail}`) : "";
        return h("tr", { "data-outcome": e.outcome, "data-action": e.action, title: e.detail ?? null },
          h("td", {}, when(e.at)),
          h("td", { "data-user": e.user_id ?? "" }, e.user_name ?? ""),
          h("td", {}, e.institution_name ?? ""),
          h("td", {}, roles(e.roles)),
          h("td", {}, worded("audit.action", e.action)),
          h("td", {}, worded("audit.object", e.object_kind), e.object_id !== null ? ` ${t("audit.number", { id: e.object_id })}` : ""),
          h("td", {}, h("span", { class: `badge ${e.outcome === "denied" ? "urgent" : ""}` }, t(`audit.${e.outcome}`))),
          h("td", {}, detail));
      }))));
  };
  outcome.addEventListener("change", draw);
  kind.addEventListener("change", draw);
  fill(root, h("h1", {}, t("nav.audit")), h("div", { class: "row narrow-row" }, outcome, kind), table);
  await draw();
}
