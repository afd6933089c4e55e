// Choosing the institution a management page works on: administrators search every
// institution by name; a coordinator works on their own and sees no picker.
import { t } from "./i18n.js";
import { api } from "./api.js";
import { h, fill } from "./dom.js";

/**
 * A picker; `onPick(institution)` runs with the chosen one (at once for a coordinator,
 * and for an administrator when `initial`, an id, is given). Returns its element.
 */
export function institutionPicker({ me, initial, onPick }) {
  const box = h("div", { class: "toolbar", id: "institution-picker" });
  if (!me.roles.includes("admin")) {
    api("GET", `/institutions/${me.institution_id}`).then(({ status, data }) => {
      if (status === 200) onPick(data);
    });
    return box;
  }
  const input = h("input", { type: "search", id: "institution-search", placeholder: t("pick.search"), "aria-label": t("pick.search"), autocomplete: "off" });
  const list = h("select", { id: "institution-choice", "aria-label": t("pick.choose") });
  let timer = null;
  let found = [];
  let chosen = null;
  const search = async () => {
    const name = input.value.trim();
    const { status, data } = await api("GET", `/institutions?limit=50${name ? `&name=${encodeURIComponent(name)}` : ""}`);
    found = status === 200 ? data : [];
    fill(list, h("option", { value: "" }, found.length ? t("pick.choose") : t("pick.none")),
      found.map((i) => h("option", { value: i.id }, `${i.name}（${i.region.split("/").slice(-2).join(" ")}）`)));
    if (chosen && found.some((i) => i.id === chosen)) list.value = String(chosen);
  };
  input.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 250); });
  list.addEventListener("change", () => {
    const institution = found.find((i) => String(i.id) === list.value);
    if (institution) {
      chosen = institution.id;
      onPick(institution);
    }
  });
  fill(box, input, list);
  if (!initial) search();
  if (initial) {
    api("GET", `/institutions/${initial}`).then(({ status, data }) => {
      if (status !== 200) return;
      chosen = data.id;
      input.value = data.name;
      search();
      onPick(data);
    });
  }
  return box;
}
