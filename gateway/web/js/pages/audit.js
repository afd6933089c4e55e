// The audit log (administrators): every access to patient data, every sign-in and every
// change, allowed or refused, newest first. Filters by dates (China days), institution,
// user, action, object, patient and outcome; the choice stays in the address, so a link
// or a reload keeps it, and the export link downloads exactly what is chosen as CSV
// (the export is itself audited). People and institutions by name, actions and objects
// in the page's language; a detail the catalogue does not word is kept in the row's
// tooltip.
import { t, has, when } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill } from "../dom.js";

/** The object kinds the log knows, for the filter. */
const KINDS = ["request", "study", "ward_round", "teaching_session", "room", "worklist", "account",
  "institution", "webhook", "chat_robot", "imaging_destination", "dicom_node", "forward", "clinician",
  "availability", "team", "pairing", "visit", "report", "audit", "audit_chain", "patient", "backup", "dicom_instance"];

/** The actions the log knows, for the filter. */
const ACTIONS = ["read", "list", "search", "create", "update", "delete", "export", "login", "logout",
  "second_factor", "recovery_code", "enrol_two_factor", "confirm_two_factor", "disable_two_factor", "reset_two_factor", "password_change", "password_reset", "read_opinions", "write_opinion",
  "attach", "read_attachment", "submit", "accept", "decline", "schedule", "start", "sign", "acknowledge",
  "close", "cancel", "expire", "store", "join_room", "post_message", "read_messages", "end", "echo", "retry",
  "set_target", "enrol", "withdraw", "attendance", "anchor", "purge"];

/** The filters, by query parameter. */
const FILTERS = ["since", "until", "institution_id", "user_id", "action", "object_kind", "patient", "outcome"];

function worded(prefix, code) {
  return has(`${prefix}.${code}`) ? t(`${prefix}.${code}`) : t("audit.other");
}

function roles(stored) {
  return stored.split(",").filter(Boolean).map((r) => worded("role", r)).join("、");
}

/** `control` under its visible name. */
function labelled(key, control) {
  return h("label", {}, h("span", {}, t(key)), control);
}

function select(id, label, any, options, chosen) {
  return h("select", { id, "aria-label": label },
    h("option", { value: "" }, any),
    options.map(([value, text]) => h("option", { value, selected: String(value) === chosen }, text)));
}

export default async function render(root, { query }) {
  const chosen = (name) => query.get(name) ?? "";
  const institutions = await api("GET", "/institutions?limit=1000");
  const list = institutions.status === 200 ? institutions.data : [];
  const since = h("input", { type: "date", id: "since", "aria-label": t("audit.since"), value: chosen("since") });
  const until = h("input", { type: "date", id: "until", "aria-label": t("audit.until"), value: chosen("until") });
  const institution = select("institution", t("audit.institution"), t("audit.any_institution"),
    list.map((i) => [i.id, i.name]), chosen("institution_id"));
  const user = select("user", t("audit.user"), t("audit.any_user"), [], chosen("user_id"));
  const action = select("action", t("audit.action"), t("audit.any_action"),
    ACTIONS.filter((a) => has(`audit.action.${a}`)).map((a) => [a, t(`audit.action.${a}`)]), chosen("action"));
  const kind = select("object-kind", t("audit.object"), t("audit.any_object"),
    KINDS.filter((k) => has(`audit.object.${k}`)).map((k) => [k, t(`audit.object.${k}`)]), chosen("object_kind"));
  const patient = h("input", { type: "search", id: "patient", "aria-label": t("audit.patient"),
    placeholder: t("audit.patient"), value: chosen("patient") });
  const outcome = select("outcome", t("audit.outcome"), t("audit.any"),
    ["allowed", "denied"].map((o) => [o, t(`audit.${o}`)]), chosen("outcome"));
  const exportLink = h("a", { id: "export", class: "button secondary", download: "audit.csv" }, t("audit.export"));
  const problem = h("p", { class: "problem", role: "alert" });
  const table = h("div");
  const more = h("button", { type: "button", id: "more", class: "secondary", hidden: true }, t("audit.more"));

  /** The users of the chosen institution, for the user filter. */
  const loadUsers = async () => {
    const keep = user.value || chosen("user_id");
    fill(user, h("option", { value: "" }, t("audit.any_user")));
    user.disabled = !institution.value;
    if (!institution.value) return;
    const { status, data } = await api("GET", `/users?institution_id=${institution.value}`);
    if (status !== 200) return;
    for (const u of data) user.append(h("option", { value: u.id, selected: String(u.id) === keep }, u.display_name));
  };

  const values = () => ({
    since: since.value, until: until.value, institution_id: institution.value, user_id: user.value,
    action: action.value, object_kind: kind.value, patient: patient.value.trim(), outcome: outcome.value,
  });
  const params = () => {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(values())) if (v) q.set(k, v);
    return q;
  };

  const row = (e) => {
    const detail = e.detail && has(`audit.detail.${e.detail}`) ? t(`audit.detail.${e.detail}`) : "";
    const object = [worded("audit.object", e.object_kind)];
    if (e.object_id !== null) object.push(` ${t("audit.number", { id: e.object_id })}`);
    if (e.object_ref) object.push(h("br"), h("small", { class: "muted uid" }, e.object_ref));
    return h("tr", { "data-outcome": e.outcome, "data-action": e.action, "data-id": e.id, title: e.detail ?? null },
      h("td", {}, when(e.at)),
      h("td", { "data-user": e.user_id ?? "" }, e.user_name ?? ""),
      h("td", {}, e.institution_name ?? ""),
      h("td", {}, roles(e.roles)),
      h("td", {}, worded("audit.action", e.action)),
      h("td", {}, object),
      h("td", { class: "patient" }, e.patient ?? ""),
      h("td", {}, h("span", { class: `badge ${e.outcome === "denied" ? "urgent" : ""}` }, t(`audit.${e.outcome}`))),
      h("td", { class: "client" }, e.client ?? ""),
      h("td", {}, detail));
  };

  // Each change of filter asks again; only the latest answer is drawn. "Load more" asks
  // for the next page of the same choice.
  const PAGE = 200;
  let asked = 0;
  let shown = 0;
  let body = null;
  const draw = async (next = false) => {
    const mine = ++asked;
    const q = params();
    if (!next) {
      const url = new URL(location.href);
      url.search = q.toString();
      history.replaceState(null, "", url);
      const csv = new URLSearchParams(q);
      csv.set("format", "csv");
      exportLink.href = `/api/v1/audit?${csv}`;
      shown = 0;
    }
    q.set("limit", String(PAGE));
    q.set("offset", String(shown));
    const { status, data } = await api("GET", `/audit?${q}`);
    if (mine !== asked) return;
    if (status !== 200) {
      more.hidden = true;
      return fill(problem, problemText(status, data));
    }
    fill(problem);
    if (!next) {
      body = h("tbody", {});
      fill(table, data.length === 0 ? h("p", { id: "no-entries", class: "muted" }, t("audit.none")) :
        h("table", { class: "stack", id: "audit" },
          h("thead", {}, h("tr", {}, ["audit.at", "audit.user", "audit.institution", "audit.roles", "audit.action",
            "audit.object", "audit.patient", "audit.outcome", "audit.client", "audit.detail"].map((k) => h("th", {}, t(k))))),
          body));
    }
    for (const e of data) body?.append(row(e));
    shown += data.length;
    more.hidden = data.length < PAGE;
  };

  institution.addEventListener("change", async () => { user.value = ""; await loadUsers(); await draw(); });
  for (const el of [since, until, user, action, kind, outcome]) el.addEventListener("change", () => draw());
  patient.addEventListener("change", () => draw());
  more.addEventListener("click", () => draw(true));
  fill(root, h("h1", {}, t("nav.audit")),
    h("div", { class: "audit-filters", role: "search", "aria-label": t("audit.filter") },
      labelled("audit.since", since), labelled("audit.until", until), labelled("audit.institution", institution),
      labelled("audit.user", user), labelled("audit.action", action), labelled("audit.object", kind),
      labelled("audit.patient", patient), labelled("audit.outcome", outcome), exportLink),
    problem, table, more);
  await loadUsers();
  await draw();
}
