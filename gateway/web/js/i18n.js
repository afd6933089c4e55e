// The message catalogue of the page's language, and the language switch.
// Every text shown comes from here: `t("key", {name: "…"})` fills `{name}`.

let messages = {};
let current = document.body.dataset.lang || "zh";

/** Loads the catalogue of the page's language. */
export async function loadCatalogue() {
  const response = await fetch(`/static/i18n/${current}.json`);
  messages = await response.json();
}

/** The language of the page: `zh` or `en`. */
export function lang() {
  return current;
}

/** The message `key`, with `{name}` placeholders filled from `vars`. */
export function t(key, vars = {}) {
  const text = messages[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** Whether the catalogue has `key` (for codes sent by the server, such as refusal rules). */
export function has(key) {
  return key in messages;
}

/**
 * Switches the language for this browser and draws the page again in it. Where the
 * Cookie Store API exists (secure contexts), the reload waits until the cookie is stored:
 * a cookie written to `document.cookie` may not yet go with a request sent at once.
 */
export async function switchLanguage(to) {
  const year = 365 * 24 * 3600;
  if (window.cookieStore) {
    await window.cookieStore.set({ name: "duikou_lang", value: to, path: "/", sameSite: "lax", expires: Date.now() + year * 1000 });
  } else {
    document.cookie = `duikou_lang=${to}; path=/; max-age=${year}; samesite=lax`;
  }
  location.reload();
}

/** A time in China Standard Time, as the program's people read it. */
export function when(iso) {
  if (!iso) return "";
  const locale = current === "zh" ? "zh-CN" : "en-GB";
  return new Date(iso).toLocaleString(locale, {
    timeZone: "Asia/Shanghai",
    year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  });
}
