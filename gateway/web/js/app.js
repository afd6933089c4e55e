// The entry of every page: loads the catalogue and the caller, draws the bar (the
// sections the caller's roles use, the language switch, log out), then the page's module
// (`pages/<name>.js`, named by the shell's `data-page`) draws into `<main>`.
import { loadCatalogue, t, lang, switchLanguage } from "./i18n.js";
import { api } from "./api.js";
import { h, fill } from "./dom.js";
import { bell, follow } from "./notices.js";

/** The sections of the bar: page, catalogue key, and who uses it. */
const SECTIONS = [
  ["/home", "nav.home", () => true],
  ["/requests", "nav.requests", (r) => r.includes("clinician")],
  ["/requests/new", "nav.new_request", (r) => r.includes("clinician")],
  ["/inbox", "nav.inbox", (r) => ["clinician", "coordinator", "radiologist", "pathologist"].some((x) => r.includes(x))],
  ["/worklist", "nav.worklist", (r) => r.includes("radiologist") || r.includes("coordinator")],
  ["/teaching", "nav.teaching", (r) => r.includes("trainee")],
  ["/program", "nav.program", (r) => r.includes("admin") || r.includes("coordinator")],
  ["/manage", "nav.manage", (r) => r.includes("admin") || r.includes("coordinator")],
  ["/audit", "nav.audit", (r) => r.includes("admin")],
];

/** Whether the bar's `href` is the section the page belongs to. */
function current(href) {
  const path = location.pathname;
  return path === href || (href === "/manage" && path.startsWith("/manage/"));
}

/**
 * Tables whose rows stack on a phone keep their headings: each cell carries its column's
 * heading, which the style sheet shows before it. Pages draw tables at any time, so the
 * cells are labelled as they appear.
 */
function labelStackedCells(root) {
  const label = () => {
    for (const table of root.querySelectorAll("table.stack")) {
      const headings = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
      for (const tr of table.querySelectorAll("tbody tr")) {
        [...tr.children].forEach((td, i) => {
          if (headings[i] && td.dataset.label !== headings[i]) td.dataset.label = headings[i];
        });
      }
    }
  };
  new MutationObserver(label).observe(root, { childList: true, subtree: true });
  label();
}

function bar(me) {
  const other = lang() === "zh" ? "en" : "zh";
  const links = me
    ? SECTIONS.filter(([, , who]) => who(me.roles)).map(([href, key]) =>
        h("a", { href, class: current(href) ? "current" : null }, t(key)))
    : [];
  return [
    h("a", { class: "brand", href: "/home" }, t("app.name")),
    h("nav", { "aria-label": t("nav.label") }, links),
    h("span", { class: "spacer" }),
    me ? bell() : null,
    me ? h("a", { class: "who", id: "who", href: "/password", title: t("nav.password") }, me.display_name) : null,
    h("button", {
      type: "button", id: "lang-switch", class: "link", lang: other === "zh" ? "zh-CN" : "en",
      onclick: () => switchLanguage(other),
    }, t("lang.switch")),
    me ? h("button", {
      type: "button", id: "logout", class: "link",
      onclick: async () => { await api("POST", "/auth/logout"); location.href = "/login"; },
    }, t("nav.logout")) : null,
  ];
}

async function main() {
  await loadCatalogue();
  document.title = t("app.title");
  const page = document.body.dataset.page;
  const root = document.getElementById("app");
  let me = null;
  if (page !== "login") {
    const { status, data } = await api("GET", "/me");
    if (status === 401) return; // api() sends a stranger to the login page
    if (status !== 200) {
      fill(document.getElementById("bar"), bar(null));
      fill(root, h("p", { class: "problem", role: "alert" }, t("error.page")));
      return;
    }
    me = data;
    // A password someone else set (the first one printed at start, a reset) is changed
    // before anything else.
    if (me.must_change_password && page !== "password") {
      location.href = `/password?next=${encodeURIComponent(location.pathname + location.search)}`;
      return;
    }
    // Then, where the role asks for it (auth.two_factor_roles), the second factor.
    if (me.two_factor_required && !me.two_factor && !["password", "two_factor"].includes(page)) {
      location.href = `/two-factor?next=${encodeURIComponent(location.pathname + location.search)}`;
      return;
    }
  }
  fill(document.getElementById("bar"), bar(me));
  if (me) follow();
  if (document.body.dataset.demo === "true") {
    document.getElementById("bar").after(h("p", { class: "demo-banner", id: "demo-banner", role: "note" }, t("demo.banner")));
  }
  const segments = location.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  const query = new URLSearchParams(location.search);
  labelStackedCells(root);
  const module = await import(`./pages/${page}.js`);
  await module.default(root, { me, segments, query });
  document.body.dataset.ready = "true";
}

main().catch((e) => {
  console.error(e);
  fill(document.getElementById("app"), h("p", { class: "problem" }, t("error.page")));
});
