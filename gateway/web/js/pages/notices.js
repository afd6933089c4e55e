// Everything the person has been told, newest first, read or not, with older ones a page
// at a time; and how they are told besides the pages: by e-mail, if they choose it and
// the gateway has an SMTP server.
import { t, when } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill } from "../dom.js";
import { form, notice } from "../form.js";
import { sentence } from "../notices.js";

const PAGE = 50;

export default async function render(root) {
  const list = h("ul", { class: "notice-list", id: "notice-list" });
  const more = h("button", { type: "button", id: "notices-older", hidden: true }, t("list.older"));
  const status = h("p", { role: "status", id: "notices-status" });
  let before = null;
  const page = async () => {
    const r = await api("GET", `/notifications?limit=${PAGE}${before ? `&before=${before}` : ""}`);
    if (r.status !== 200) return fill(status, h("span", { class: "problem" }, problemText(r.status, r.data)));
    for (const n of r.data) {
      list.append(h("li", { "data-notice": n.id, "data-event": n.event, class: n.read_at ? "read" : "unread" },
        n.urgent ? [h("span", { class: "badge urgent" }, t("urgency.urgent")), " "] : null,
        n.request_id ? h("a", { href: `/requests/${n.request_id}` }, sentence(n)) : sentence(n), " ",
        h("span", { class: "muted" }, when(n.created_at))));
    }
    before = r.data.length ? r.data[r.data.length - 1].id : before;
    more.hidden = r.data.length < PAGE;
    if (!list.children.length) fill(list, h("li", { class: "muted" }, t("notice.none")));
  };
  more.addEventListener("click", page);
  const readAll = h("button", { type: "button", id: "notices-read-all-page", onclick: async () => {
    const r = await api("POST", "/notifications/read");
    if (r.status === 204) {
      for (const li of list.querySelectorAll("li.unread")) li.className = "read";
      notice(status, t("notice.all_read"));
    }
  } }, t("notice.read_all"));

  const choice = await api("GET", "/me/notices");
  const c = choice.status === 200 ? choice.data : { email: null, email_notices: false, email_available: false };
  const email = form({
    id: "email-form",
    fields: [
      { name: "email", label: t("notice.email"), type: "email", value: c.email, placeholder: "wang@example.org", autocomplete: "email" },
      { name: "email_notices", label: t("notice.email_wanted"), type: "checkbox", value: c.email_notices, wide: true,
        hint: c.email_available ? t("notice.email_hint") : t("notice.email_unavailable") },
    ],
    submitLabel: t("notice.email_save"),
    submit: (v) => api("PUT", "/me/notices", { email: v.email, email_notices: Boolean(v.email_notices) }),
    done: (saved) => notice(status, t(saved.email_notices ? "notice.email_on" : "notice.email_off")),
  });

  fill(root,
    h("h1", {}, t("notice.title")),
    status,
    h("section", { class: "card" }, h("div", { class: "toolbar" }, h("h2", {}, t("notice.all")), readAll), list, more),
    h("section", { class: "card", id: "email-choice" }, h("h2", {}, t("notice.by_email")), email));
  await page();
}
