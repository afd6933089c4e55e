// A clinician's requests: those of their institution, newest first, 50 to a page
// (`?page=N`), with links to the newer and the older ones.
import { t } from "../i18n.js";
import { problemText } from "../api.js";
import { h, fill } from "../dom.js";
import { pageOf, pager, pastEnd, requestPage, requestTable } from "../requests.js";

export default async function render(root, { query }) {
  const page = pageOf(query, "page");
  const { status, data, rows, more } = await requestPage({ box: "outbox", order: "newest" }, page);
  if (status !== 200) {
    fill(root, h("h1", {}, t("nav.requests")), h("p", { class: "problem" }, problemText(status, data)));
    return;
  }
  fill(root,
    h("h1", {}, t("nav.requests")),
    h("p", {}, h("a", { href: "/requests/new", id: "new-request" }, t("nav.new_request"))),
    rows.length
      ? await requestTable(rows, (r) => r.supporter_institution_id)
      : page > 1 ? pastEnd("page") : h("p", { class: "muted" }, t("requests.empty")),
    pager("page", page, more, { id: "newer", label: t("list.newer") }, { id: "older", label: t("list.older") }));
}
