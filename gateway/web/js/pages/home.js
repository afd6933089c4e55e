// Home: who is logged in, and the sections their roles use.
import { t } from "../i18n.js";
import { h, fill } from "../dom.js";

export default async function render(root, { me }) {
  const roles = me.roles.map((r) => t(`role.${r}`)).join("、");
  const links = [...document.querySelectorAll("#bar nav a")]
    .filter((a) => a.getAttribute("href") !== "/home")
    .map((a) => h("li", {}, h("a", { href: a.getAttribute("href") }, a.textContent)));
  fill(root,
    h("h1", {}, t("home.title", { name: me.display_name })),
    h("p", { class: "muted" }, t("home.roles", { roles })),
    h("ul", { class: "card" }, links));
}
