// The supporting side's inbox: requests addressed to the caller's institution, in the
// order the server gives (urgent first, then remote stations, then first come), with the
// deadline to accept or decline.
import { t } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill } from "../dom.js";
import { requestTable } from "../requests.js";

const OPEN = ["submitted", "accepted", "scheduled", "in_session", "opinion_signed", "acknowledged"];

export default async function render(root) {
  const { status, data } = await api("GET", "/requests?box=inbox");
  if (status !== 200) {
    fill(root, h("h1", {}, t("nav.inbox")), h("p", { class: "problem" }, problemText(status, data)));
    return;
  }
  const waiting = data.filter((r) => r.state === "submitted");
  const open = data.filter((r) => r.state !== "submitted" && OPEN.includes(r.state));
  fill(root,
    h("h1", {}, t("nav.inbox")),
    h("h2", {}, t("inbox.waiting", { n: waiting.length })),
    waiting.length ? await requestTable(waiting, (r) => r.requester_institution_id)
      : h("p", { class: "muted" }, t("inbox.none_waiting")),
    h("h2", {}, t("inbox.open")),
    open.length ? await requestTable(open, (r) => r.requester_institution_id)
      : h("p", { class: "muted" }, t("common.none")));
}
