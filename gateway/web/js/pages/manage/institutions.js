// Institutions (机构): the registry as a tree by region (province › city › county or
// district › town › village, from each institution's region path), with a search by name
// that narrows the tree to the institutions found and opens the regions holding them.
// Administrators add institutions and change them: name, level, kind, region and the
// remote flag (偏远 / 老区村). A change that would contradict a pairing that stands is
// refused by the gateway, beside the field it blames.
import { t } from "../../i18n.js";
import { api, problemText } from "../../api.js";
import { h, fill } from "../../dom.js";
import { form, notice } from "../../form.js";

const LEVELS = ["tertiary", "secondary", "county", "township", "village_station", "administration"];
const KINDS = ["general", "tcm", "maternal_child", "cdc", "health_centre", "village_station", "specialty", "administration"];

/** Every institution, a page of a thousand at a time. */
async function everyInstitution() {
  const all = [];
  for (let offset = 0; ; offset += 1000) {
    const r = await api("GET", `/institutions?limit=1000&offset=${offset}`);
    if (r.status !== 200) return r;
    all.push(...r.data);
    if (r.data.length < 1000) return { status: 200, data: all };
  }
}

/** A name as it is compared in a search: without spaces, in lower case. */
const folded = (s) => s.replace(/\s+/g, "").toLowerCase();

/** Institutions nested by the segments of their region path. */
function nest(institutions) {
  const root = { children: new Map(), institutions: [] };
  for (const i of institutions) {
    let node = root;
    for (const part of i.region.split("/")) {
      if (!node.children.has(part)) node.children.set(part, { name: part, children: new Map(), institutions: [] });
      node = node.children.get(part);
    }
    node.institutions.push(i);
  }
  return root;
}

/** The form that adds an institution (`current` absent) or changes `current`. */
function institutionForm({ current, submit, done, cancel }) {
  const v = current ?? {};
  return form({
    id: "institution-form",
    intro: h("h2", {}, current ? t("institutions.edit_title", { name: current.name }) : t("institutions.add_title")),
    fields: [
      { name: "name", label: t("institutions.name"), required: true, value: v.name },
      { name: "level", label: t("institutions.level"), type: "select", required: true, value: v.level ?? "township",
        options: LEVELS.map((l) => [l, t(`level.${l}`)]) },
      { name: "kind", label: t("institutions.kind"), type: "select", required: true, value: v.kind ?? "health_centre",
        options: KINDS.map((k) => [k, t(`kindof.${k}`)]) },
      { name: "region", label: t("institutions.region"), required: true, wide: true, value: v.region,
        hint: t("institutions.region_hint"),
        check: (r) => (r.split("/").some((s) => s.trim() === "") ? "institutions.region_bad" : null) },
      { name: "remote", label: t("institutions.remote"), type: "checkbox", value: v.remote },
    ],
    submitLabel: current ? t("common.save") : t("institutions.add"),
    submit,
    done,
    cancel,
  });
}

export default async function render(root, { me }) {
  const admin = me.roles.includes("admin");
  const { status, data } = await everyInstitution();
  if (status !== 200) return fill(root, h("p", { class: "problem" }, problemText(status, data)));
  let all = data;
  let saved = null; // the institution last added or changed, marked in the tree

  const search = h("input", {
    type: "search", id: "institution-search", autocomplete: "off",
    placeholder: t("institutions.search"), "aria-label": t("institutions.search"),
  });
  const summary = h("p", { class: "muted", id: "institution-count", "aria-live": "polite" });
  const tree = h("div", { id: "institution-tree", class: "region-tree" });
  const slot = h("div", { id: "institution-form-slot" });
  const note = h("p", { id: "institution-note", role: "status" });

  const item = (i) => h("li", { "data-institution": i.id, class: i.id === saved ? "saved" : null },
    h("span", { class: "name" }, i.name), " ",
    h("span", { class: "muted" }, `${t(`level.${i.level}`)} · ${t(`kindof.${i.kind}`)}`),
    i.remote ? [" ", h("span", { class: "badge remote" }, t("request.remote"))] : null,
    admin ? [" ", h("button", { type: "button", class: "link edit", onclick: () => edit(i) }, t("institutions.edit"))] : null);

  const count = (n) => n.institutions.length + [...n.children.values()].reduce((s, c) => s + count(c), 0);
  const region = (n, depth, open) => h("details", { open: open || depth < 2, "data-region": n.name },
    h("summary", {}, `${n.name} `, h("span", { class: "muted" }, t("program.count", { n: count(n) }))),
    h("ul", { class: "tree" },
      n.institutions.map(item),
      [...n.children.values()].map((c) => h("li", {}, region(c, depth + 1, open)))));

  const draw = () => {
    const q = folded(search.value);
    const shown = q ? all.filter((i) => folded(i.name).includes(q)) : all;
    if (q) {
      fill(summary, shown.length
        ? t("institutions.matches", { n: shown.length, q: search.value.trim() })
        : t("institutions.no_match", { q: search.value.trim() }));
    } else {
      fill(summary, t("institutions.count", { n: all.length }));
    }
    // A search opens every region that holds what it found.
    fill(tree, [...nest(shown).children.values()].map((c) => region(c, 0, Boolean(q))));
  };
  search.addEventListener("input", draw);

  const close = () => fill(slot);
  const after = async (institution, key) => {
    saved = institution.id;
    const r = await everyInstitution();
    if (r.status === 200) all = r.data;
    close();
    notice(note, t(key, { name: institution.name }));
    draw();
    tree.querySelector(`[data-institution="${institution.id}"]`)?.scrollIntoView({ block: "center" });
  };
  const body = (v) => ({ name: v.name, level: v.level, kind: v.kind, region: v.region, remote: v.remote });
  const add = () => {
    fill(note);
    fill(slot, institutionForm({
      submit: (v) => api("POST", "/institutions", body(v)),
      done: (created) => after(created, "institutions.added"),
      cancel: close,
    }));
    slot.querySelector("input")?.focus();
  };
  const edit = (current) => {
    fill(note);
    fill(slot, institutionForm({
      current,
      submit: (v) => api("PATCH", `/institutions/${current.id}`, body(v)),
      done: (changed) => after(changed, "institutions.saved"),
      cancel: close,
    }));
    slot.scrollIntoView({ block: "start" });
    slot.querySelector("input")?.focus();
  };

  fill(root,
    h("div", { class: "toolbar" }, search,
      admin ? h("button", { type: "button", class: "primary", id: "institution-add", onclick: add }, t("institutions.add")) : null),
    admin ? null : h("p", { class: "muted" }, t("institutions.read_only")),
    note, slot,
    h("section", { class: "card" }, summary, tree));
  draw();
}
