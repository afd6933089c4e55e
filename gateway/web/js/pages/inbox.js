// The supporting side's inbox: requests addressed to the caller's institution, in the
// order the server gives (urgent first, then remote stations, then first come), with the
// deadline to accept or decline.
import { t } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill } from "../dom.js";
import { requestTable } from "../requests.js";

const OPEN = ["submitted", "accepted", "scheduled", "in_session", "opinion_signed", "acknowledged"];

export default async function render(root) {
  // What awaits a decision on its own, so that no number of older requests hides it.
  const [submitted, all] = await Promise.all([
    api("GET", "/requests?box=inbox&state=submitted&limit=1000"),
    api("GET", "/requests?box=inbox&limit=1000"),
  ]);
  const failed = [submitted, all].find((x) => x.status !== 200);
  if (failed) {
    fill(root, h("h1", {}, t("nav.inbox")), h("p", { class: "problem" }, problemText(failed.status, failed.data)));
    return;
  }
  const waiting = submitted.data;
  const open = all.data.filter((r) => r.state !== "submitted" && OPEN.includes(r.state));
  fill(root,
    h("h1", {}, t("nav.inbox")),
    h("h2", {}, t("inbox.waiting", { n: waiting.length })),
    waiting.length ? await requestTable(waiting, (r) => r.requester_institution_id)
      : h("p", { class: "muted" }, t("inbox.none_waiting")),
    h("h2", {}, t("inbox.open")),
    open.length ? await requestTable(open, (r) => r.requester_institution_id)
      : h("p", { class: "muted" }, t("common.none")));
}
