// The management pages of administrators and coordinators: a list of sections beside
// the section open (`/manage/<section>`), each section a module under `pages/manage/`.
import { t } from "../i18n.js";
import { h, fill } from "../dom.js";

/** The sections, in the order the program's office sets a program up. */
export const SECTIONS = ["institutions", "clinicians", "accounts", "pairings", "teams", "availability", "imaging", "activities", "notices"];

export default async function render(root, ctx) {
  const section = ctx.segments[1];
  const nav = h("nav", { class: "manage-nav card", "aria-label": t("manage.sections") },
    SECTIONS.map((s) => h("a", { href: `/manage/${s}`, class: s === section ? "current" : null, "data-section": s }, t(`manage.${s}`))));
  const body = h("div", { id: "section" });
  fill(root, h("h1", {}, section && SECTIONS.includes(section) ? t(`manage.${section}`) : t("nav.manage")),
    h("div", { class: "manage-layout" }, nav, body));
  if (!section) {
    return fill(body, h("section", { class: "card" },
      h("ul", { class: "checklist" }, SECTIONS.map((s) => h("li", {},
        h("a", { href: `/manage/${s}` }, t(`manage.${s}`)), h("span", { class: "muted" }, t(`manage.${s}.about`)))))));
  }
  if (!SECTIONS.includes(section)) {
    return fill(body, h("p", { class: "problem" }, t("error.not_found")));
  }
  const module = await import(`./manage/${section}.js`);
  await module.default(body, ctx);
}
