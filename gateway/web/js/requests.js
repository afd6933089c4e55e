// What the request pages share: names of states, kinds and the like, the institutions'
// names, a request as a table row, lists of requests a page at a time, and uploads.
import { t, when } from "./i18n.js";
import { api } from "./api.js";
import { h } from "./dom.js";

const names = new Map();

/** An institution's name (looked up once per page). */
export async function institutionName(id) {
  if (id === null || id === undefined) return "";
  if (!names.has(id)) {
    names.set(id, api("GET", `/institutions/${id}`).then(({ status, data }) =>
      status === 200 ? data.name : `#${id}`));
  }
  return names.get(id);
}

/** The badges of a request: state, urgency, remote, overdue. */
export function badges(r) {
  return [
    h("span", { class: `badge state-${r.state}`, "data-state": r.state }, t(`state.${r.state}`)),
    r.urgency === "urgent" ? h("span", { class: "badge urgent" }, t("urgency.urgent")) : null,
    r.remote ? h("span", { class: "badge remote" }, t("request.remote")) : null,
    r.overdue ? h("span", { class: "badge overdue" }, t("request.overdue")) : null,
  ];
}

/** A table of requests; `other` names the institution on the other side of each. */
export async function requestTable(list, other) {
  const rows = await Promise.all(list.map(async (r) => h("tr", { "data-request": r.id },
    h("td", {}, h("a", { href: `/requests/${r.id}` }, `#${r.id}`)),
    h("td", {}, t(`kind.${r.kind}`)),
    h("td", {}, await institutionName(other(r))),
    h("td", {}, badges(r)),
    h("td", {}, r.decision_due_at && r.state === "submitted" ? when(r.decision_due_at) : ""),
    h("td", {}, r.scheduled_start ? when(r.scheduled_start) : ""),
  )));
  return h("table", { class: "stack requests" },
    h("thead", {}, h("tr", {},
      ["request.number", "request.kind", "request.other_side", "request.state", "request.decision_due", "request.scheduled"]
        .map((k) => h("th", {}, t(k))))),
    h("tbody", {}, rows));
}

/** How many requests a list shows at once. */
export const PAGE_SIZE = 50;

/** Which page of the list `name` the address asks for (`?name=N`, 1 and up). */
export function pageOf(query, name) {
  const n = Number(query.get(name));
  return Number.isSafeInteger(n) && n > 1 ? n : 1;
}

/**
 * Page `page` of `/requests?…params`: `{status, data}` as `api` gives it, with `rows` (at
 * most PAGE_SIZE) and `more` (whether a page follows: one more row is asked for to know).
 */
export async function requestPage(params, page) {
  const q = new URLSearchParams(params);
  q.set("limit", String(PAGE_SIZE + 1));
  q.set("offset", String((page - 1) * PAGE_SIZE));
  const answer = await api("GET", `/requests?${q}`);
  if (answer.status !== 200) return answer;
  return { ...answer, rows: answer.data.slice(0, PAGE_SIZE), more: answer.data.length > PAGE_SIZE };
}

/** This page's address showing page `n` of the list `name`, other lists' pages kept. */
function pageHref(name, n) {
  const q = new URLSearchParams(location.search);
  if (n > 1) q.set(name, String(n));
  else q.delete(name);
  const rest = q.toString();
  return rest ? `${location.pathname}?${rest}` : location.pathname;
}

/** What a page of the list `name` past its end says (its address kept from when the
 * list was longer), with a link back to its first page. */
export function pastEnd(name) {
  return h("p", { class: "muted" }, t("list.past_end"), " ",
    h("a", { href: pageHref(name, 1), id: `${name}-first` }, t("list.first")));
}

/**
 * Links to the pages beside page `page` of the list `name`: `back` ({id, label}) to the
 * one before, unless this is the first; `on` to the one after, when there is `more`.
 */
export function pager(name, page, more, back, on) {
  if (page <= 1 && !more) return null;
  return h("nav", { class: "pager", "aria-label": t("list.pages") },
    page > 1 ? h("a", { href: pageHref(name, page - 1), id: back.id, rel: "prev" }, back.label) : null,
    h("span", { class: "muted" }, t("list.page", { n: page })),
    more ? h("a", { href: pageHref(name, page + 1), id: on.id, rel: "next" }, on.label) : null);
}

/**
 * `attachment; filename*=UTF-8''…` for a file called `name` (RFC 6266, RFC 8187): the
 * name percent-encoded as UTF-8, with the characters encodeURIComponent keeps but an
 * RFC 8187 value may not hold (`'`, `(`, `)`, `*`) encoded too.
 */
export function contentDisposition(name) {
  const encoded = encodeURIComponent(name)
    .replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename*=UTF-8''${encoded}`;
}

/** The longest file name the server keeps, in bytes of UTF-8. */
const MAX_FILENAME_BYTES = 200;

/** `{status, data}` of a file name refused, here or by the server: the problem names the
 * field `filename` and says in the page's language what to do. */
function badName() {
  return { status: 422, data: { status: 422, field: "filename", detail: t("attachments.bad_name") } };
}

/**
 * Uploads `file` as an attachment of request `id`: `{status, data}` (status 0 when the
 * network failed). Its name, which may name the patient, goes in the Content-Disposition
 * header, never in the URL, which proxies log. A name the server would refuse (too long,
 * or not text: a lone surrogate, which encodeURIComponent throws on) is refused before
 * anything is sent, and any refusal of the name comes back as `attachments.bad_name`.
 */
export async function uploadAttachment(id, file) {
  let disposition;
  try {
    if (new TextEncoder().encode(file.name.trim()).length > MAX_FILENAME_BYTES) return badName();
    disposition = contentDisposition(file.name);
  } catch {
    return badName();
  }
  let response;
  try {
    response = await fetch(`/api/v1/requests/${id}/attachments`, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "content-type": file.type || "application/octet-stream",
        "content-disposition": disposition,
      },
      body: file,
    });
  } catch {
    return { status: 0, data: null };
  }
  const data = await response.json().catch(() => null);
  if (response.status === 422 && data?.field === "filename") return badName();
  return { status: response.status, data };
}
