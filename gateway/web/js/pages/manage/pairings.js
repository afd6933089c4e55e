// Pairings: who supports whom, for which services, over which period. Administrators
// create, change (with a reason once the period has begun) and end them (with a reason);
// every version stays in the history. Coordinators see them.
import { t, when } from "../../i18n.js";
import { api, problemText } from "../../api.js";
import { h, fill } from "../../dom.js";
import { form, table, notice } from "../../form.js";
import { namer } from "../../names.js";

const SERVICES = ["consult", "imaging_read", "pathology_read", "ward_round", "teaching"];
const STANDINGS = ["in_force", "not_started", "expired", "ended"];

/** Today in China, `YYYY-MM-DD`. */
function today() {
  return new Date().toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" });
}

/** Finds supporters of `kind` by name, as `[[id, label]]`. */
async function findSupporter(kind, text) {
  const q = text ? `&name=${encodeURIComponent(text)}` : "";
  if (kind === "team") {
    const r = await api("GET", "/teams");
    const teams = r.status === 200 ? r.data : [];
    return teams.filter((x) => !text || x.name.includes(text)).slice(0, 30).map((x) => [x.id, x.name]);
  }
  const r = await api("GET", kind === "clinician" ? `/clinicians?limit=30${q}` : `/institutions?limit=30${q}`);
  if (r.status !== 200) return [];
  return r.data.map((x) => [x.id, kind === "clinician" ? `${x.name} · ${x.title} · #${x.id}` : `${x.name}（${x.region.split("/").slice(-2).join(" ")}）`]);
}

async function findInstitution(text) {
  return findSupporter("institution", text);
}

const badge = (standing) => h("span", { class: "badge", "data-standing": standing }, t(`pairing.${standing}`));
const services = (list) => list.map((s) => t(`service.${s}`)).join("、");

export default async function render(root, { me }) {
  const admin = me.roles.includes("admin");
  const [inst, pairs] = await Promise.all([api("GET", "/institutions?limit=1000"), api("GET", "/pairings?limit=1000")]);
  if (inst.status !== 200 || pairs.status !== 200) {
    const bad = inst.status !== 200 ? inst : pairs;
    return fill(root, h("p", { class: "problem" }, problemText(bad.status, bad.data)));
  }
  const names = namer(inst.data);
  const status = h("div", { id: "pairings-status", role: "status" });
  const detail = h("section", { id: "pairing-detail" });
  const listBox = h("div", {});
  const search = h("input", { type: "search", id: "pairing-search", placeholder: t("mp.search"), "aria-label": t("mp.search") });
  const standing = h("select", { id: "pairing-standing", "aria-label": t("program.status") },
    h("option", { value: "" }, t("mp.any_standing")), STANDINGS.map((s) => h("option", { value: s }, t(`pairing.${s}`))));

  let all = pairs.data;
  // Those in force first, then those to come, then the records.
  const order = (p) => STANDINGS.indexOf(p.standing);
  const labelled = async () => (await Promise.all(all.map(async (p) => ({ p, supporter: await names.supporter(p.supporter), supported: names.supported(p.supported) }))))
    .sort((a, b) => order(a.p) - order(b.p) || b.p.id - a.p.id);
  let rows = await labelled();

  const drawList = () => {
    const text = search.value.trim();
    const shown = rows.filter(({ p, supporter, supported }) =>
      (!standing.value || p.standing === standing.value) && (!text || supporter.includes(text) || supported.includes(text)));
    fill(listBox, h("p", { class: "muted" }, t("mp.shown", { n: shown.length, total: rows.length })),
      h("div", { class: "scroll" }, table({
        id: "pairing-list",
        columns: [t("program.supporter"), t("program.supported"), t("program.services"), t("program.period"), t("program.status"), ""],
        rows: shown.slice(0, 200).map(({ p, supporter, supported }) => ({
          attrs: { "data-pairing": p.id },
          cells: [supporter, supported, services(p.services), `${p.valid_from} – ${p.valid_to}`, badge(p.standing),
            h("button", { type: "button", class: "open", onclick: () => open(p.id) }, t("mp.open"))],
        })),
      })));
  };
  const reload = async (focus) => {
    const r = await api("GET", "/pairings?limit=1000");
    if (r.status === 200) { all = r.data; rows = await labelled(); drawList(); }
    if (focus) await open(focus);
  };
  search.addEventListener("input", drawList);
  standing.addEventListener("change", drawList);

  const supporterFields = (p, supporterText) => [
    { name: "supporter_kind", label: t("mp.supporter_kind"), type: "select", required: true, value: p?.supporter.kind ?? "institution",
      options: ["institution", "team", "clinician"].map((k) => [k, t(`mp.kind.${k}`)]) },
    { name: "supporter", label: t("program.supporter"), type: "lookup", required: true, value: p?.supporter.id, text: supporterText,
      placeholder: t("mp.type_name"), lookup: (text, v) => findSupporter(v.supporter_kind ?? "institution", text) },
  ];
  const periodFields = (p) => [
    { name: "services", label: t("program.services"), type: "checks", required: true, wide: true, value: p?.services ?? [],
      options: SERVICES.map((s) => [s, t(`service.${s}`)]) },
    { name: "valid_from", label: t("mp.valid_from"), type: "date", required: true, value: p?.valid_from },
    { name: "valid_to", label: t("mp.valid_to"), type: "date", required: true, value: p?.valid_to,
      check: (v, all) => (all.valid_from && v < all.valid_from ? "mp.to_before_from" : null) },
  ];

  const open = async (id) => {
    const [current, history, targets] = await Promise.all([api("GET", `/pairings/${id}`), api("GET", `/pairings/${id}/history`),
      api("GET", `/pairings/${id}/targets`)]);
    if (current.status !== 200) return fill(detail, h("p", { class: "problem" }, problemText(current.status, current.data)));
    const p = current.data;
    const supporter = await names.supporter(p.supporter);
    const people = new Map();
    const who = async (uid) => {
      if (!uid) return t("mp.seed_import");
      if (!people.has(uid)) {
        const r = await api("GET", `/users/${uid}`);
        people.set(uid, r.status === 200 ? r.data.display_name : `#${uid}`);
      }
      return people.get(uid);
    };
    const versions = history.status === 200 ? history.data : [];
    const versionRows = await Promise.all(versions.map(async (v) => ({
      attrs: { "data-version": v.version, "data-action": v.action },
      cells: [String(v.version), t(`mp.action.${v.action}`), when(v.changed_at), await who(v.changed_by),
        `${await names.supporter(v.supporter)} → ${names.supported(v.supported)}`,
        `${services(v.services)}；${v.valid_from} – ${v.valid_to}`, v.reason ?? "–"],
    })));
    const editable = admin && (p.standing === "in_force" || p.standing === "not_started");
    const years = targets.status === 200 ? targets.data : [];
    const targetRows = await Promise.all(years.map(async (y) => ({
      attrs: { "data-year": y.year, "data-source": y.source },
      cells: [String(y.year), String(y.trainees), String(y.hours_each), t(`mp.source.${y.source}`),
        y.set_by ? `${await who(y.set_by)} · ${when(y.set_at)}` : "–"],
    })));
    // The year to set first: this one when the period covers it, else the first.
    const thisYear = Number(today().slice(0, 4));
    const firstYear = years.find((y) => y.year === thisYear) ?? years[0];
    const setTargets = editable && years.length ? form({
      id: "pairing-targets-form",
      fields: [
        { name: "year", label: t("mp.year"), type: "select", required: true, value: firstYear.year,
          options: years.map((y) => [y.year, String(y.year)]) },
        { name: "trainees", label: t("mp.trainees"), type: "number", required: true, min: 1, max: 1000, step: 1, value: firstYear.trainees },
        { name: "hours_each", label: t("mp.hours_each"), type: "number", required: true, min: 1, max: 2000, step: 1, value: firstYear.hours_each },
      ],
      submitLabel: t("mp.save_targets"),
      submit: (v) => api("PUT", `/pairings/${id}/targets/${v.year}`, { trainees: v.trainees, hours_each: v.hours_each }),
      done: async (saved) => { notice(status, t("mp.targets_saved", { year: saved.year })); await open(id); },
    }) : null;
    // Choosing a year shows the target it has now.
    setTargets?.querySelector('[name="year"]').addEventListener("change", (e) => {
      const y = years.find((x) => String(x.year) === e.target.value);
      setTargets.querySelector('[name="trainees"]').value = y.trainees;
      setTargets.querySelector('[name="hours_each"]').value = y.hours_each;
    });
    const change = editable ? form({
      id: "pairing-change",
      fields: [...supporterFields(p, supporter), ...periodFields(p),
        { name: "reason", label: t("mp.reason"), type: "textarea", wide: true, required: p.standing === "in_force",
          hint: p.standing === "in_force" ? t("mp.reason_004") : null }],
      submitLabel: t("mp.change"),
      submit: (v) => api("PATCH", `/pairings/${id}`, {
        version: p.version,
        supporter: { kind: v.supporter_kind, id: v.supporter },
        services: v.services, valid_from: v.valid_from, valid_to: v.valid_to, reason: v.reason,
      }),
      done: async () => { notice(status, t("mp.changed")); await reload(id); },
    }) : null;
    const end = editable ? form({
      id: "pairing-end",
      fields: [
        { name: "last_day", label: t("mp.last_day"), type: "date", required: true, value: today() },
        { name: "reason", label: t("mp.reason"), type: "textarea", required: true, wide: true },
      ],
      submitLabel: t("mp.end"),
      submit: (v) => api("POST", `/pairings/${id}/end`, { last_day: v.last_day, reason: v.reason }),
      done: async () => { notice(status, t("mp.ended")); await reload(id); },
    }) : null;
    fill(detail, h("div", { class: "card" },
      h("h2", {}, t("mp.detail", { supporter, supported: names.supported(p.supported) }), " ", badge(p.standing)),
      h("dl", { class: "facts" },
        h("dt", {}, t("program.services")), h("dd", {}, services(p.services)),
        h("dt", {}, t("program.period")), h("dd", {}, `${p.valid_from} – ${p.valid_to}`),
        h("dt", {}, t("mp.version")), h("dd", {}, String(p.version))),
      h("h3", {}, t("mp.targets")),
      h("p", { class: "muted" }, t("mp.targets_hint")),
      table({ id: "pairing-targets", columns: [t("mp.year"), t("mp.trainees"), t("mp.hours_each"), t("mp.source"), t("mp.set_by")], rows: targetRows }),
      setTargets,
      h("h3", {}, t("mp.history")),
      table({ id: "pairing-history", columns: [t("mp.version"), t("mp.what"), t("mp.when"), t("mp.by"), t("mp.sides"), t("mp.terms"), t("mp.reason")], rows: versionRows }),
      change ? [h("h3", {}, t("mp.change_title")), change] : null,
      end ? [h("h3", {}, t("mp.end_title")), end] : null,
      !editable && admin ? h("p", { class: "muted" }, t("mp.record_only")) : null));
    detail.scrollIntoView({ block: "start" });
  };

  const create = admin ? form({
    id: "pairing-form",
    fields: [...supporterFields(null, null),
      { name: "supported", label: t("program.supported"), type: "lookup", placeholder: t("mp.type_name"),
        lookup: (text) => findInstitution(text),
        check: (v, all) => (!v && !all.supported_region ? "mp.supported_needed" : v && all.supported_region ? "mp.supported_one" : null) },
      { name: "supported_region", label: t("mp.supported_region"), placeholder: "广东省/江门市/台山市", hint: t("mp.region_hint") },
      ...periodFields(null)],
    submitLabel: t("mp.create"),
    submit: (v) => api("POST", "/pairings", {
      supporter: { kind: v.supporter_kind, id: v.supporter },
      supported: v.supported ? { kind: "institution", value: v.supported } : { kind: "region", value: v.supported_region },
      services: v.services, valid_from: v.valid_from, valid_to: v.valid_to,
    }),
    done: async (created) => { notice(status, t("mp.created")); await reload(created.id); },
  }) : null;

  fill(root, status,
    h("section", { class: "card" },
      h("div", { class: "toolbar" }, search, standing),
      listBox),
    detail,
    create ? [h("h2", {}, t("mp.new")), create] : null);
  drawList();
}
