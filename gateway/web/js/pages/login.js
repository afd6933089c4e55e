// Logging in. After it the browser holds the session cookie and goes where it was
// sent from, or home.
import { t } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill, field } from "../dom.js";

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
    if (status === 200) {
      const next = query.get("next");
      location.href = next && next.startsWith("/") && !next.startsWith("//") ? next : "/home";
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
