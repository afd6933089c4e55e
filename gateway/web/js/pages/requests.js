// A clinician's requests: those of their institution, newest first.
import { t } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill } from "../dom.js";
import { requestTable } from "../requests.js";

export default async function render(root) {
  const { status, data } = await api("GET", "/requests?box=outbox");
  if (status !== 200) {
    fill(root, h("h1", {}, t("nav.requests")), h("p", { class: "problem" }, problemText(status, data)));
    return;
  }
  fill(root,
    h("h1", {}, t("nav.requests")),
    h("p", {}, h("a", { href: "/requests/new", id: "new-request" }, t("nav.new_request"))),
    data.length
      ? await requestTable(data, (r) => r.supporter_institution_id)
      : h("p", { class: "muted" }, t("requests.empty")));
}
