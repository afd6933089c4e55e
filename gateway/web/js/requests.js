// What the request pages share: names of states, kinds and the like, the institutions'
// names, and a request as a table row.
import { t, when } from "./i18n.js";
import { api } from "./api.js";
import { h } from "./dom.js";

const names = new Map();

/** An institution's name (looked up once per page). */
export async function institutionName(id) {
  if (id === null || id === undefined) return "";
  if (!names.has(id)) {
    names.set(id, api("GET", `/institutions/${id}`).then(({ status, data }) =>
      status === 200 ? data.name : `#${id}`));
  }
  return names.get(id);
}

/** The badges of a request: state, urgency, remote, overdue. */
export function badges(r) {
  return [
    h("span", { class: `badge state-${r.state}`, "data-state": r.state }, t(`state.${r.state}`)),
    r.urgency === "urgent" ? h("span", { class: "badge urgent" }, t("urgency.urgent")) : null,
    r.remote ? h("span", { class: "badge remote" }, t("request.remote")) : null,
    r.overdue ? h("span", { class: "badge overdue" }, t("request.overdue")) : null,
  ];
}

/** A table of requests; `other` names the institution on the other side of each. */
export async function requestTable(list, other) {
  const rows = await Promise.all(list.map(async (r) => h("tr", { "data-request": r.id },
    h("td", {}, h("a", { href: `/requests/${r.id}` }, `#${r.id}`)),
    h("td", {}, t(`kind.${r.kind}`)),
    h("td", {}, await institutionName(other(r))),
    h("td", {}, badges(r)),
    h("td", {}, r.decision_due_at && r.state === "submitted" ? when(r.decision_due_at) : ""),
    h("td", {}, r.scheduled_start ? when(r.scheduled_start) : ""),
  )));
  return h("table", { class: "stack requests" },
    h("thead", {}, h("tr", {},
      ["request.number", "request.kind", "request.other_side", "request.state", "request.decision_due", "request.scheduled"]
        .map((k) => h("th", {}, t(k))))),
    h("tbody", {}, rows));
}
