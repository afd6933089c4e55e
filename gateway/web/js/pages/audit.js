// The audit log (administrators): every access to requests and patient data, allowed or
// refused, newest first, filtered by outcome and object.
import { t, when } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill } from "../dom.js";

export default async function render(root, { query }) {
  const outcome = h("select", { id: "outcome" }, ["", "allowed", "denied"].map((o) =>
    h("option", { value: o, selected: o === (query.get("outcome") ?? "") }, o ? t(`audit.${o}`) : t("audit.any"))));
  const kind = h("input", { id: "object-kind", value: query.get("object_kind") ?? "", placeholder: t("audit.kind") });
  const table = h("div");
  // Each change of filter asks again; only the latest answer is drawn.
  let asked = 0;
  const draw = async () => {
    const mine = ++asked;
    const q = new URLSearchParams({ limit: "200" });
    if (outcome.value) q.set("outcome", outcome.value);
    if (kind.value.trim()) q.set("object_kind", kind.value.trim());
    const { status, data } = await api("GET", `/audit?${q}`);
    if (mine !== asked) return;
    if (status !== 200) return fill(table, h("p", { class: "problem", id: "refused" }, problemText(status, data)));
    fill(table, h("table", { class: "stack", id: "audit" },
      h("thead", {}, h("tr", {}, ["audit.at", "audit.user", "audit.roles", "audit.action", "audit.object", "audit.outcome", "audit.detail"].map((k) => h("th", {}, t(k))))),
      h("tbody", {}, data.map((e) => h("tr", { "data-outcome": e.outcome },
        h("td", {}, when(e.at)), h("td", {}, e.user_id ?? ""), h("td", {}, e.roles),
        h("td", {}, e.action), h("td", {}, `${e.object_kind}${e.object_id !== null ? ` #${e.object_id}` : ""}`),
        h("td", {}, h("span", { class: `badge ${e.outcome === "denied" ? "urgent" : ""}` }, t(`audit.${e.outcome}`))),
        h("td", {}, e.detail ?? ""))))));
  };
  outcome.addEventListener("change", draw);
  kind.addEventListener("change", draw);
  fill(root, h("h1", {}, t("nav.audit")), h("div", { class: "row narrow-row" }, outcome, kind), table);
  await draw();
}
