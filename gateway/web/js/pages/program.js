// Program staff: the institutions as a tree by region, the pairings, and each pairing
// against the program's targets for a year or quarter, with a chart.
import { t } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill } from "../dom.js";
import { namer } from "../names.js";

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** Institutions nested by their region path (province/city/county/town/village). */
function regionTree(institutions) {
  const root = { name: "", children: new Map(), institutions: [] };
  for (const i of institutions) {
    let node = root;
    for (const part of i.region.split("/").filter(Boolean)) {
      if (!node.children.has(part)) node.children.set(part, { name: part, children: new Map(), institutions: [] });
      node = node.children.get(part);
    }
    node.institutions.push(i);
  }
  const count = (n) => n.institutions.length + [...n.children.values()].reduce((s, c) => s + count(c), 0);
  const draw = (n, depth) => h("details", { open: depth < 2, "data-region": n.name },
    h("summary", {}, `${n.name} `, h("span", { class: "muted" }, t("program.count", { n: count(n) }))),
    h("ul", { class: "tree" },
      n.institutions.map((i) => h("li", { "data-institution": i.id }, i.name, " ",
        h("span", { class: "muted" }, `${t(`level.${i.level}`)} · ${t(`kindof.${i.kind}`)}`),
        i.remote ? [" ", h("span", { class: "badge remote" }, t("request.remote"))] : null)),
      [...n.children.values()].map((c) => h("li", {}, draw(c, depth + 1)))));
  return [...root.children.values()].map((c) => draw(c, 0));
}

/** A bar chart of `{label: value}` as inline SVG. */
function bars(data, caption) {
  const entries = Object.entries(data);
  const max = Math.max(1, ...entries.map(([, v]) => v));
  const rowH = 26;
  const chart = svg("svg", { viewBox: `0 0 420 ${entries.length * rowH + 4}`, class: "chart", role: "img", "aria-label": caption });
  entries.forEach(([label, v], i) => {
    const y = i * rowH + 2;
    chart.append(
      svg("text", { x: 0, y: y + 17, class: "chart-label" }, label),
      svg("rect", { x: 150, y: y + 4, width: Math.max(2, (v / max) * 230), height: 16, class: "chart-bar" }),
      svg("text", { x: 156 + (v / max) * 230, y: y + 17, class: "chart-value" }, v));
  });
  return h("figure", { class: "chart-box" }, chart, h("figcaption", { class: "muted" }, caption));
}

export default async function render(root) {
  const [inst, pairs] = await Promise.all([api("GET", "/institutions?limit=1000"), api("GET", "/pairings?limit=1000")]);
  if (inst.status !== 200 || pairs.status !== 200) {
    const bad = inst.status !== 200 ? inst : pairs;
    return fill(root, h("h1", {}, t("nav.program")), h("p", { class: "problem" }, problemText(bad.status, bad.data)));
  }
  const names = namer(inst.data);
  const supporterName = names.supporter;
  const supportedName = names.supported;
  const report = h("section", { class: "card", id: "pairing-report" }, h("p", { class: "muted" }, t("program.pick")));

  // Each report asked for replaces the one before; only the latest answer is drawn.
  let asked = 0;
  const showReport = async (p, period) => {
    const mine = ++asked;
    const input = h("input", { id: "period", value: period, size: 8, "aria-label": t("program.period") });
    const reload = h("button", { type: "button", onclick: () => showReport(p, input.value) }, t("program.show"));
    const supporter = await supporterName(p.supporter);
    if (mine !== asked) return;
    fill(report, h("h2", {}, t("program.report_of", { supporter, supported: supportedName(p.supported) })),
      h("div", { class: "row narrow-row" }, input, reload), h("p", {}, t("common.loading")));
    const r = await api("GET", `/reports/pairings/${p.id}?period=${encodeURIComponent(period)}`);
    if (mine !== asked) return;
    report.lastChild.remove();
    if (r.status !== 200) return report.append(h("p", { class: "problem" }, problemText(r.status, r.data)));
    const d = r.data;
    const goal = d.training.target;
    const words = { n: goal.trainees, hours: goal.hours_each, year: goal.year, trained: d.training.trained };
    // Each target is worded from its figures, in the page's language.
    const quarter = (q) => t("program.quarter", { year: q.slice(0, 4), q: q.slice(-1) });
    const actual = (x) => {
      if (x.code === "training_yearly") return t("target.training_actual", words);
      if (x.met === null) return t("target.no_villages");
      if (x.code === "village_quarterly") {
        return x.short.length
          ? t("target.not_served", { list: x.short.map((v) => `${v.name}（${quarter(v.quarter)}）`).join("、") })
          : t("target.all_served", { n: d.villages.length });
      }
      if (x.code === "team_bimonthly") {
        return x.short.length
          ? t("target.late", { list: x.short.map((v) => t("target.days_without", { name: v.name, days: v.days })).join("、") })
          : t("target.all_visited");
      }
      return x.actual;
    };
    const training = (x, what) => (what === "target"
      ? t(x.code === "training_yearly" ? "target.training_yearly" : `target.${x.code}`, words)
      : actual(x));
    const byState = Object.fromEntries(Object.entries(d.requests_by_state).map(([k, v]) => [t(`state.${k}`), v]));
    report.append(
      h("dl", { class: "facts" },
        h("dt", {}, t("program.sessions")), h("dd", {}, d.sessions_held),
        h("dt", {}, t("program.rounds")), h("dd", {}, d.ward_rounds),
        h("dt", {}, t("program.teaching_hours")), h("dd", {}, d.teaching_hours.toFixed(1)),
        h("dt", {}, t("program.trainees")), h("dd", {}, d.trainees_attended),
        h("dt", {}, t("program.to_accept")), h("dd", {}, d.median_hours_to_accept?.toFixed(1) ?? "–"),
        h("dt", {}, t("program.to_opinion")), h("dd", {}, d.median_hours_to_opinion?.toFixed(1) ?? "–")),
      Object.keys(byState).length ? bars(byState, t("program.requests_chart", { period: d.period })) : h("p", { class: "muted" }, t("program.no_requests")),
      h("h3", {}, t("program.targets")),
      h("table", { class: "stack", id: "targets" },
        h("thead", {}, h("tr", {}, ["program.target", "program.source", "program.actual", "program.met"].map((k) => h("th", {}, t(k))))),
        h("tbody", {}, d.targets.map((x) => h("tr", { "data-met": String(x.met) },
          h("td", {}, training(x, "target")), h("td", {}, x.source), h("td", {}, training(x, "actual")),
          h("td", {}, x.met === null ? h("span", { class: "muted" }, t("program.na"))
            : h("span", { class: `badge ${x.met ? "met" : "urgent"}` }, t(x.met ? "program.yes" : "program.no"))))))),
      h("h3", {}, t("program.training", { year: goal.year })),
      h("p", { class: "muted", id: "training-target" }, t("program.training_target", { ...words, source: t(`mp.source.${goal.source}`) })),
      d.training.trainees.length
        ? h("table", { class: "stack", id: "trainees" },
          h("thead", {}, h("tr", {}, ["program.trainee", "program.hours", "program.trained"].map((k) => h("th", {}, t(k))))),
          h("tbody", {}, d.training.trainees.map((x) => h("tr", { "data-user": x.user_id, "data-trained": String(x.trained) },
            h("td", {}, x.display_name), h("td", {}, x.hours.toFixed(1)),
            h("td", {}, h("span", { class: `badge ${x.trained ? "met" : "urgent"}` }, t(x.trained ? "program.counted" : "program.not_yet")))))))
        : h("p", { class: "muted" }, t("program.no_trainees")));
  };

  const pairingRows = await Promise.all(pairs.data.map(async (p) => h("tr", { "data-pairing": p.id },
    h("td", {}, await supporterName(p.supporter)),
    h("td", {}, supportedName(p.supported)),
    h("td", {}, p.services.map((s) => t(`service.${s}`)).join("、")),
    h("td", {}, `${p.valid_from} – ${p.valid_to}`),
    h("td", {}, h("span", { class: "badge", "data-standing": p.standing }, t(`pairing.${p.standing}`))),
    h("td", {}, h("button", { type: "button", class: "report", onclick: () => showReport(p, p.valid_from.slice(0, 4)) }, t("program.report"))))));

  fill(root,
    h("h1", {}, t("nav.program")),
    h("div", { class: "program-layout" },
      h("section", { class: "card", id: "regions" }, h("h2", {}, t("program.institutions", { n: inst.data.length })), regionTree(inst.data)),
      h("div", {},
        h("section", { class: "card", id: "pairings" }, h("h2", {}, t("program.pairings", { n: pairs.data.length })),
          h("div", { class: "scroll" }, h("table", { class: "stack" },
            h("thead", {}, h("tr", {}, ["program.supporter", "program.supported", "program.services", "program.period", "program.status", ""].map((k) => h("th", {}, k ? t(k) : "")))),
            h("tbody", {}, pairingRows)))),
        report)));
}
