// What waits for the person logged in: the bell in the bar with the count of unread
// notices and their list, counts beside the inbox and the worklist, all kept current
// from the server's stream of summaries (Server-Sent Events) while the page is open.
// Pages that show what waits (the home page's banner, the inbox) listen for the
// `duikou:summary` event on `document`, whose `detail` is the summary.
import { t, when } from "./i18n.js";
import { api } from "./api.js";
import { h, fill } from "./dom.js";

/** A notice in words: what happened to which request. */
export function sentence(n) {
  const kind = n.request_kind ? t(`kind.${n.request_kind}`) : "";
  return t(`notice.${n.event}`, { kind, id: n.request_id ?? "" });
}

/** A bell drawn as SVG (an emoji needs a font many office machines lack). */
function bellIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "icon");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", "M12 2a6 6 0 0 0-6 6v4.6L4.3 16.2A1 1 0 0 0 5.2 18h13.6a1 1 0 0 0 .9-1.8L18 12.6V8a6 6 0 0 0-6-6zm-2.5 17a2.5 2.5 0 0 0 5 0z");
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

/** The bell: a button with the unread count, opening the list of notices. */
export function bell() {
  const count = h("span", { class: "count", id: "bell-count", hidden: true });
  const list = h("div", { class: "notices card", id: "notices", hidden: true, role: "dialog", "aria-label": t("notice.title") });
  const button = h("button", {
    type: "button", id: "bell", class: "link bell", "aria-haspopup": "dialog", "aria-expanded": "false",
    title: t("notice.title"),
  }, bellIcon(), h("span", { class: "visually-hidden" }, t("notice.title")), count);
  const close = () => { list.hidden = true; button.setAttribute("aria-expanded", "false"); };
  const draw = async () => {
    const r = await api("GET", "/notifications?limit=20");
    const items = r.status === 200 ? r.data : [];
    const readAll = h("button", { type: "button", class: "link", id: "notices-read-all", onclick: async () => {
      await api("POST", "/notifications/read");
      await draw();
    } }, t("notice.read_all"));
    fill(list,
      h("div", { class: "notices-head" }, h("strong", {}, t("notice.title")), items.some((n) => !n.read_at) ? readAll : null),
      h("p", {}, h("a", { href: "/notices", id: "notices-page" }, t("notice.see_all"))),
      items.length
        ? h("ul", {}, items.map((n) => h("li", { "data-notice": n.id, "data-event": n.event, class: n.read_at ? "read" : "unread" },
          h("a", {
            href: n.request_id ? `/requests/${n.request_id}` : "#",
            onclick: async (e) => {
              if (n.read_at) return;
              e.preventDefault();
              await api("POST", `/notifications/${n.id}/read`);
              location.href = e.currentTarget.href;
            },
          }, n.urgent ? h("span", { class: "badge urgent" }, t("urgency.urgent")) : null, " ", sentence(n)),
          h("span", { class: "muted" }, when(n.created_at)))))
        : h("p", { class: "muted" }, t("notice.none")));
  };
  button.addEventListener("click", async () => {
    if (!list.hidden) return close();
    await draw();
    list.hidden = false;
    button.setAttribute("aria-expanded", "true");
  });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") close(); });
  document.addEventListener("duikou:summary", (e) => {
    const n = e.detail.unread;
    count.hidden = n === 0;
    count.textContent = n > 99 ? "99+" : String(n);
    button.dataset.unread = String(n);
    if (!list.hidden) draw();
  });
  return h("span", { class: "bell-box" }, button, list);
}

/** Puts `n` beside the bar's link to `href`. */
function countOn(href, n) {
  const link = document.querySelector(`#bar nav a[href="${href}"]`);
  if (!link) return;
  let badge = link.querySelector(".count");
  if (!badge) {
    badge = h("span", { class: "count" });
    link.append(" ", badge);
  }
  badge.hidden = n === 0;
  badge.textContent = String(n);
  link.dataset.count = String(n);
}

let latest = null;

/**
 * Calls `fn(summary)` with the latest summary (at once when one has come) and with each
 * one after it.
 */
export function onSummary(fn) {
  if (latest) fn(latest);
  document.addEventListener("duikou:summary", (e) => fn(e.detail));
}

/** Follows the summary stream for as long as the page is open. */
export function follow() {
  const publish = (summary) => {
    latest = summary;
    countOn("/inbox", summary.inbox);
    countOn("/worklist", summary.reads);
    document.dispatchEvent(new CustomEvent("duikou:summary", { detail: summary }));
  };
  if (!window.EventSource) {
    api("GET", "/notifications/summary").then((r) => r.status === 200 && publish(r.data));
    return;
  }
  const source = new EventSource("/api/v1/notifications/stream");
  source.addEventListener("summary", (e) => publish(JSON.parse(e.data)));
}
