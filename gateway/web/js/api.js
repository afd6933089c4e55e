// Calls to the gateway's API with the session cookie. Refusals come back as RFC 9457
// problems; `problemText` turns one into a sentence for the page.
import { t, has, lang } from "./i18n.js";

/** `{status, data}` of `method path` with a JSON body; never throws for HTTP errors. */
export async function api(method, path, body) {
  // Problems come back said in the page's language.
  const init = { method, headers: { "accept-language": lang() }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch (e) {
    return { status: 0, data: { title: t("error.network") } };
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { title: text }; }
  }
  if (response.status === 401 && !location.pathname.startsWith("/login")) {
    location.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
  }
  return { status: response.status, data };
}

/** The rule a problem names (the last part of its `type`), if any. */
export function rule(problem) {
  return (problem?.type ?? "").split("/").pop();
}

/** A refusal as the page says it: the catalogue's text for its rule, else its detail. */
export function problemText(status, problem) {
  const r = rule(problem);
  if (r && has(`rule.${r}`)) return t(`rule.${r}`);
  if (status === 403) return t("error.forbidden");
  if (status === 404) return t("error.not_found");
  if (status === 0) return t("error.network");
  return problem?.detail || problem?.title || t("error.generic", { status });
}

/** Where lists of sessions start: twelve hours back, so that one under way is still there
 * (the API lists sessions starting from `from`). */
export function since() {
  return new Date(Date.now() - 12 * 3600e3).toISOString();
}
