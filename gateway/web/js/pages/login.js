// Logging in: the password, then, for an account with two-step verification, the code
// of the authenticator app (or a recovery code). After it the browser holds the session
// cookie and goes where it was sent from, or home.
import { t } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill, field } from "../dom.js";

/** Where to go after logging in: `next` when it is a page of this site, else home. */
export function sameSite(next) {
  if (!next) return "/home";
  try {
    // The browser's own reading of the address, `/\\host` and stray tabs included.
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.pathname + url.search + url.hash : "/home";
  } catch {
    return "/home";
  }
}

/** The second step: the code, sent with the first step's pending token. */
function secondStep(root, pending, query) {
  const code = h("input", {
    name: "code", id: "login-code", autocomplete: "one-time-code", inputmode: "numeric", required: true,
  });
  const message = h("p", { class: "problem", role: "alert" });
  const form = h("form", { id: "login-second-factor", class: "card narrow" },
    h("h1", {}, t("login.code_title")),
    h("p", {}, t("login.code_about")),
    field(t("login.code"), code, t("login.code_hint")),
    message,
    h("button", { type: "submit", class: "primary" }, t("login.code_submit")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(message);
    const { status, data } = await api("POST", "/auth/login/second-factor", {
      pending_token: pending.pending_token, code: code.value.trim(),
    });
    if (status === 200) {
      location.href = sameSite(query.get("next"));
    } else if (data?.field === "code") {
      fill(message, t("login.code_wrong"));
      code.setAttribute("aria-invalid", "true");
      code.select();
    } else if (status === 401) {
      fill(message, t("login.code_expired"));
      setTimeout(() => { location.reload(); }, 1500);
    } else if (status === 429) {
      fill(message, t("login.locked"));
    } else {
      fill(message, problemText(status, data));
    }
  });
  fill(root, form);
  code.focus();
}

export default async function render(root, { query }) {
  const username = h("input", { name: "username", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const message = h("p", { class: "problem", role: "alert" });
  const form = h("form", { id: "login", class: "card narrow" },
    h("h1", {}, t("login.title")),
    field(t("login.username"), username),
    field(t("login.password"), password),
    message,
    h("button", { type: "submit", class: "primary" }, t("login.submit")));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    fill(message);
    const { status, data } = await api("POST", "/auth/login", {
      username: username.value, password: password.value,
    });
    if (status === 200 && data?.step === "second_factor") {
      secondStep(root, data, query);
    } else if (status === 200) {
      location.href = sameSite(query.get("next"));
    } else if (status === 401) {
      fill(message, t("login.wrong"));
    } else if (status === 429) {
      fill(message, t("login.locked"));
    } else {
      fill(message, problemText(status, data));
    }
  });
  fill(root, form);
  username.focus();
}
