// The institution a management section works on (its clinicians, its teams): an
// administrator finds it by name; a coordinator works on their own institution. The
// choice stays in the address (`?institution=<id>`), so a link or a reload keeps it.
import { t } from "../../i18n.js";
import { api, problemText } from "../../api.js";
import { h, fill } from "../../dom.js";

/** Whether `me` may change the records of institution `id`. */
export function manages(me, id) {
  return me.roles.includes("admin") || (me.roles.includes("coordinator") && me.institution_id === id);
}

/**
 * The picker's element. `onPick(institution)` runs once an institution is chosen (at
 * once for a coordinator, or for the one the address names).
 */
export function institutionPicker({ me, query, onPick }) {
  const current = h("p", { id: "picked", class: "picked" });
  const problem = h("p", { class: "problem", role: "alert" });
  const pick = async (id) => {
    const { status, data } = await api("GET", `/institutions/${id}`);
    if (status !== 200) return fill(problem, problemText(status, data));
    fill(problem);
    fill(current, t("pick_institution.current"), " ", h("strong", {}, data.name), " ",
      h("span", { class: "muted" }, data.region));
    const url = new URL(location.href);
    url.searchParams.set("institution", data.id);
    history.replaceState(null, "", url);
    await onPick(data);
  };
  if (!me.roles.includes("admin")) {
    pick(me.institution_id);
    return h("div", { class: "card picker" }, current, problem);
  }

  const input = h("input", {
    type: "search", id: "pick-search", autocomplete: "off",
    placeholder: t("pick_institution.search"),
  });
  const results = h("ul", { class: "pick-results", id: "pick-results" });
  let timer = null;
  let asked = 0;
  const find = async () => {
    const q = input.value.trim();
    const mine = ++asked;
    if (!q) return fill(results);
    const { status, data } = await api("GET", `/institutions?name=${encodeURIComponent(q)}&limit=20`);
    if (mine !== asked) return; // a later search answers instead
    if (status !== 200) return fill(results, h("li", { class: "problem" }, problemText(status, data)));
    fill(results, data.length
      ? data.map((i) => h("li", {},
        h("button", {
          type: "button", class: "link", "data-pick": i.id,
          onclick: () => { input.value = ""; fill(results); pick(i.id); },
        }, i.name), " ", h("span", { class: "muted" }, i.region)))
      : h("li", { class: "muted" }, t("pick_institution.none")));
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(find, 250);
  });
  const chosen = Number(query.get("institution"));
  if (Number.isInteger(chosen) && chosen > 0) pick(chosen);
  else fill(current, h("span", { class: "muted" }, t("pick_institution.first")));
  return h("div", { class: "card picker" },
    h("label", { for: input.id }, t("pick_institution.label")), input, results, current, problem);
}
