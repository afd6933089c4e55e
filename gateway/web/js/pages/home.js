// Home: who is logged in, the sessions coming up that they can join (consultations of
// their institution's requests, ward rounds of their institution or teams, teaching
// sessions they present or are enrolled in, none cancelled), and the sections their
// roles use.
import { t, when } from "../i18n.js";
import { api, since } from "../api.js";
import { h, fill } from "../dom.js";
import { onSummary } from "../notices.js";

/** `[{kind, room, title, starts, ends}]` the caller may join, soonest first. */
async function upcoming(me) {
  const out = [];
  const roles = me.roles;
  if (roles.includes("clinician") || roles.includes("coordinator")) {
    const boxes = await Promise.all(["outbox", "inbox"]
      .map((box) => api("GET", `/requests?box=${box}&state=scheduled,in_session&limit=1000`)));
    for (const { status, data } of boxes) {
      if (status !== 200) continue;
      for (const r of data) {
        if (r.kind !== "consultation") continue;
        out.push({ kind: "consultation", room: `consultation-${r.id}`, title: t("home.consultation", { id: r.id }),
          starts: r.scheduled_start, ends: r.scheduled_end, link: `/requests/${r.id}` });
      }
    }
    const rounds = await api("GET", `/ward-rounds?from=${encodeURIComponent(since())}`);
    if (rounds.status === 200) {
      for (const w of rounds.data.filter((x) => !x.cancelled_at)) {
        out.push({ kind: "ward_round", room: `ward-round-${w.id}`, title: t("home.ward_round", { ward: w.ward }),
          starts: w.starts_at, ends: w.ends_at });
      }
    }
  }
  const sessions = await api("GET", `/teaching?from=${encodeURIComponent(since())}`);
  if (sessions.status === 200) {
    const mine = await api("GET", "/teaching/enrolments");
    const enrolled = new Set((mine.data ?? []).filter((e) => e.status === "enrolled").map((e) => e.session_id));
    for (const s of sessions.data.filter((x) => !x.cancelled_at)) {
      const presenting = me.clinician_id !== null && s.presenter_clinician_id === me.clinician_id;
      if (!presenting && !enrolled.has(s.id)) continue;
      out.push({ kind: "teaching", room: `teaching-${s.id}`,
        title: t(presenting ? "home.teaching_presenting" : "home.teaching", { topic: s.topic }),
        starts: s.starts_at, ends: s.ends_at });
    }
  }
  // Each room once, those not over yet, soonest first.
  const seen = new Set();
  return out.filter((x) => Date.parse(x.ends) > Date.now() && !seen.has(x.room) && seen.add(x.room))
    .sort((a, b) => Date.parse(a.starts) - Date.parse(b.starts));
}

/** The set-up checklist of administrators and coordinators, or null for others. */
async function checklist(me) {
  if (!me.roles.includes("admin") && !me.roles.includes("coordinator")) return null;
  const { status, data } = await api("GET", "/setup");
  if (status !== 200) return null;
  const open = data.filter((i) => !i.done).length;
  return h("section", { class: "card", id: "setup" },
    h("h2", {}, t("setup.title")),
    h("p", { class: open ? "" : "done", id: "setup-summary" }, open ? t("setup.open", { n: open }) : t("setup.complete")),
    h("ul", { class: "checklist" }, data.map((i) => h("li", { "data-step": i.step, "data-done": String(i.done) },
      h("span", { class: "mark", "aria-hidden": "true" }, i.done ? "✓" : "○"),
      h("span", {}, t(`setup.${i.step}`)),
      i.done ? h("span", { class: "muted" }, t("setup.done"))
        : h("a", { href: i.link, class: "fix" }, t("setup.fix"))))));
}

/** For radiologists: how many studies wait for their read, or null. */
async function reads(me) {
  if (!me.roles.includes("radiologist")) return null;
  const { status, data } = await api("GET", "/imaging/worklist?awaiting=true");
  if (status !== 200) return null;
  return h("section", { class: "card", id: "reads" },
    h("h2", {}, t("home.reads")),
    data.length ? h("p", {}, h("a", { href: "/worklist", class: "button primary" }, t("home.reads_waiting", { n: data.length })))
      : h("p", { class: "muted" }, t("home.reads_none")));
}

export default async function render(root, { me }) {
  const roles = me.roles.map((r) => t(`role.${r}`)).join("、");
  const links = [...document.querySelectorAll("#bar nav a")]
    .filter((a) => a.getAttribute("href") !== "/home")
    .map((a) => h("li", {}, h("a", { href: a.getAttribute("href") }, a.firstChild.textContent)));
  const [sessions, setup, waiting] = await Promise.all([upcoming(me), checklist(me), reads(me)]);
  // Signed opinions of the caller's requests wait to be acknowledged: a banner, kept
  // current while the page is open.
  const opinions = h("section", { class: "card waiting-banner", id: "opinions-waiting", role: "status", hidden: true });
  onSummary((s) => {
    opinions.hidden = s.opinions === 0;
    opinions.dataset.count = String(s.opinions);
    fill(opinions, h("p", {}, t("notice.opinions_waiting", { n: s.opinions }), " ",
      h("a", { href: "/requests", class: "button primary" }, t("notice.open_requests"))));
  });
  fill(root,
    h("h1", {}, t("home.title", { name: me.display_name })),
    h("p", { class: "muted" }, t("home.roles", { roles })),
    opinions,
    setup,
    waiting,
    h("section", { class: "card", id: "upcoming" },
      h("h2", {}, t("home.upcoming")),
      sessions.length
        ? h("ul", { class: "sessions" }, sessions.map((s) => h("li", { "data-room": s.room },
            h("span", { class: "badge" }, t(`home.kind.${s.kind}`)), " ",
            s.link ? h("a", { href: s.link }, s.title) : s.title, " ",
            h("span", { class: "muted" }, `${when(s.starts)} – ${when(s.ends)}`), " ",
            h("a", { class: "button primary join", href: `/rooms/${s.room}` }, t("home.join")))))
        : h("p", { class: "muted" }, t("home.none"))),
    links.length ? h("ul", { class: "card" }, links) : null);
}
