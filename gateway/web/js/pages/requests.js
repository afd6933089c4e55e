// A clinician's requests: those of their institution, newest first.
import { t } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill } from "../dom.js";
import { requestTable } from "../requests.js";

export default async function render(root) {
  const { status, data } = await api("GET", "/requests?box=outbox&limit=1000");
  if (status !== 200) {
    fill(root, h("h1", {}, t("nav.requests")), h("p", { class: "problem" }, problemText(status, data)));
    return;
  }
  fill(root,
    h("h1", {}, t("nav.requests")),
    h("p", {}, h("a", { href: "/requests/new", id: "new-request" }, t("nav.new_request"))),
    data.length
      ? await requestTable(data.sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at)), (r) => r.supporter_institution_id)
      : h("p", { class: "muted" }, t("requests.empty")));
}
