// A trainee's teaching sessions: the hours attended this year, their enrolments (join,
// withdraw), and the catalogue of upcoming sessions from the hospitals paired with their
// institution for teaching (enrol; a full session puts them on the waiting list; a
// cancelled one shows why).
import { t, when } from "../i18n.js";
import { api, problemText, since } from "../api.js";
import { h, fill } from "../dom.js";
import { institutionName } from "../requests.js";

/** The institutions paired with `institution` for teaching, as supporters. */
async function teachingSupporters(institution) {
  const today = new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10);
  const { status, data } = await api("GET", `/pairings?supported_institution_id=${institution}&service=teaching&date=${today}`);
  if (status !== 200) return new Set();
  const ids = await Promise.all(data.map(async (p) => {
    if (p.supporter.kind === "institution") return p.supporter.id;
    const path = p.supporter.kind === "team" ? `/teams/${p.supporter.id}` : `/clinicians/${p.supporter.id}`;
    const r = await api("GET", path);
    return r.status === 200 ? r.data.institution_id : null;
  }));
  return new Set(ids.filter((x) => x !== null));
}

export default async function render(root, { me }) {
  const note = h("p", { class: "problem", role: "alert", id: "teaching-problem" });
  const draw = async () => {
    const [sessions, mine, hours, paired] = await Promise.all([
      api("GET", `/teaching?from=${encodeURIComponent(since())}`), api("GET", "/teaching/enrolments"), api("GET", "/teaching/hours"),
      teachingSupporters(me.institution_id),
    ]);
    if (sessions.status !== 200) return fill(root, h("p", { class: "problem" }, problemText(sessions.status, sessions.data)));
    const enrolment = new Map((mine.data ?? []).filter((e) => e.status !== "withdrawn").map((e) => [e.session_id, e.status]));
    const act = async (method, path) => {
      fill(note);
      const r = await api(method, path);
      if (r.status >= 300) return fill(note, problemText(r.status, r.data));
      await draw();
    };
    const row = async (s) => {
      const status = enrolment.get(s.id);
      return h("tr", { "data-session": s.id },
        h("td", {}, s.topic),
        h("td", {}, await institutionName(s.presenter_institution_id)),
        h("td", {}, `${when(s.starts_at)} – ${when(s.ends_at)}`),
        h("td", {}, t("teaching.places", { enrolled: s.enrolled, capacity: s.capacity, waiting: s.waiting })),
        h("td", {}, s.cancelled_at
          ? [h("span", { class: "badge", "data-cancelled": "" }, t("teaching.cancelled")), " ",
              h("span", { class: "muted" }, s.cancel_reason)]
          : status
          ? [h("span", { class: "badge", "data-enrolment": status }, t(`teaching.status.${status}`)), " ",
              status === "enrolled" ? h("a", { class: "button primary join", href: `/rooms/teaching-${s.id}` }, t("teaching.join")) : null, " ",
              h("button", { type: "button", class: "withdraw", onclick: () => act("POST", `/teaching/${s.id}/withdraw`) }, t("teaching.withdraw"))]
          : h("button", { type: "button", class: "primary enrol", "data-session": s.id, onclick: () => act("POST", `/teaching/${s.id}/enrol`) },
              s.enrolled >= s.capacity ? t("teaching.wait") : t("teaching.enrol"))));
    };
    const list = sessions.data.filter((s) => Date.parse(s.ends_at) > Date.now());
    const ours = list.filter((s) => paired.has(s.presenter_institution_id) || enrolment.has(s.id));
    const table = async (rows) => h("table", { class: "stack" },
      h("thead", {}, h("tr", {}, ["teaching.topic", "teaching.presenter", "teaching.time", "teaching.places_head", ""].map((k) => h("th", {}, k ? t(k) : "")))),
      h("tbody", {}, await Promise.all(rows.map(row))));
    const total = hours.status === 200 ? hours.data : null;
    fill(root,
      h("h1", {}, t("nav.teaching")),
      total ? h("section", { class: "card", id: "hours" },
        h("h2", {}, t("teaching.hours_title", { year: total.year })),
        h("p", { class: "big" }, t("teaching.hours", { hours: total.hours.toFixed(1) })),
        total.sessions.length ? h("ul", {}, total.sessions.map((x) => h("li", {}, `${x.topic}: ${t("teaching.hours", { hours: x.hours.toFixed(1) })}`))) : null) : null,
      note,
      h("h2", {}, t("teaching.catalogue")),
      ours.length ? await table(ours) : h("p", { class: "muted" }, t("teaching.none")));
  };
  await draw();
}
