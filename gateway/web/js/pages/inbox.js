// The supporting side's inbox: requests addressed to the caller's institution. Those
// awaiting a decision come on their own, in the order consultants' time is given (urgent
// first, then remote stations, then first come) with the deadline to accept or decline,
// so that no number of other requests hides them; those under way come newest first.
// Each list shows 50 to a page, with its own page in the address (`?waiting=N&open=N`).
// The lists are drawn again when something new waits.
import { t } from "../i18n.js";
import { problemText } from "../api.js";
import { h, fill } from "../dom.js";
import { onSummary } from "../notices.js";
import { PAGE_SIZE, pageOf, pager, pastEnd, requestPage, requestTable } from "../requests.js";

/** The states of a request under way, once accepted. */
const UNDER_WAY = ["accepted", "scheduled", "in_session", "opinion_signed", "acknowledged"];

/** The heading of the waiting list with what is known of its length: "more than" the
 * requests up to this page while another follows, exactly how many on the last page, and
 * no number on a page past the end (an address kept from when more waited). */
function waitingHeading(page, { rows, more }) {
  const before = (page - 1) * PAGE_SIZE;
  if (more) return t("inbox.waiting_more", { n: before + PAGE_SIZE });
  if (!rows.length && page > 1) return t("inbox.waiting_unknown");
  return t("inbox.waiting", { n: before + rows.length });
}

export default async function render(root, { query }) {
  await draw(root, query);
  // A request that arrives while the inbox is open is drawn into it.
  let seen = null;
  onSummary((s) => {
    const now = `${s.inbox}:${s.newest}`;
    if (seen !== null && now !== seen) draw(root, query);
    seen = now;
  });
}

async function draw(root, query) {
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
  const empty = (name, none) => pages[name] > 1 ? pastEnd(name) : h("p", { class: "muted" }, none);
  fill(root,
    h("h1", {}, t("nav.inbox")),
    h("section", { id: "waiting" },
      h("h2", {}, waitingHeading(pages.waiting, waiting)),
      waiting.rows.length ? await requestTable(waiting.rows, (r) => r.requester_institution_id)
        : empty("waiting", t("inbox.none_waiting")),
      pager("waiting", pages.waiting, waiting.more,
        { id: "waiting-previous", label: t("list.previous") }, { id: "waiting-next", label: t("list.next") })),
    h("section", { id: "open" },
      h("h2", {}, t("inbox.open")),
      open.rows.length ? await requestTable(open.rows, (r) => r.requester_institution_id)
        : empty("open", t("common.none")),
      pager("open", pages.open, open.more,
        { id: "open-newer", label: t("list.newer") }, { id: "open-older", label: t("list.older") })));
}
