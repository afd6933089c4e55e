// The supporting side's inbox: requests addressed to the caller's institution. Those
// awaiting a decision come on their own, in the order consultants' time is given (urgent
// first, then remote stations, then first come) with the deadline to accept or decline,
// so that no number of other requests hides them; those under way come newest first.
// Each list shows 50 to a page, with its own page in the address (`?waiting=N&open=N`).
import { t } from "../i18n.js";
import { problemText } from "../api.js";
import { h, fill } from "../dom.js";
import { PAGE_SIZE, pageOf, pager, requestPage, requestTable } from "../requests.js";

/** The states of a request under way, once accepted. */
const UNDER_WAY = ["accepted", "scheduled", "in_session", "opinion_signed", "acknowledged"];

export default async function render(root, { query }) {
  const pages = { waiting: pageOf(query, "waiting"), open: pageOf(query, "open") };
  const [waiting, open] = await Promise.all([
    requestPage({ box: "inbox", state: "submitted", order: "priority" }, pages.waiting),
    requestPage({ box: "inbox", state: UNDER_WAY.join(","), order: "newest" }, pages.open),
  ]);
  const failed = [waiting, open].find((x) => x.status !== 200);
  if (failed) {
    fill(root, h("h1", {}, t("nav.inbox")), h("p", { class: "problem" }, problemText(failed.status, failed.data)));
    return;
  }
  // How many wait: known exactly once the last page is reached.
  const before = (pages.waiting - 1) * PAGE_SIZE;
  const heading = waiting.more
    ? t("inbox.waiting_more", { n: before + PAGE_SIZE })
    : t("inbox.waiting", { n: before + waiting.rows.length });
  const empty = (page, none) => h("p", { class: "muted" }, page > 1 ? t("list.past_end") : none);
  fill(root,
    h("h1", {}, t("nav.inbox")),
    h("h2", {}, heading),
    waiting.rows.length ? await requestTable(waiting.rows, (r) => r.requester_institution_id)
      : empty(pages.waiting, t("inbox.none_waiting")),
    pager("waiting", pages.waiting, waiting.more,
      { id: "waiting-previous", label: t("list.previous") }, { id: "waiting-next", label: t("list.next") }),
    h("h2", {}, t("inbox.open")),
    open.rows.length ? await requestTable(open.rows, (r) => r.requester_institution_id)
      : empty(pages.open, t("common.none")),
    pager("open", pages.open, open.more,
      { id: "open-newer", label: t("list.newer") }, { id: "open-older", label: t("list.older") }));
}
