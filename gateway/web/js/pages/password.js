// Changing one's own password; the first administrator and anybody whose password was
// reset come here before any other page.
import { t } from "../i18n.js";
import { api } from "../api.js";
import { h, fill } from "../dom.js";
import { form } from "../form.js";

/** Where to go after the change: the page that sent the user here, on this site only. */
function next(query) {
  const to = query.get("next") ?? "/home";
  return to.startsWith("/") && !to.startsWith("//") && !to.startsWith("/password") ? to : "/home";
}

export default async function render(root, { me, query }) {
  const changed = h("p", { class: "done", role: "status", id: "password-changed" });
  const f = form({
    id: "password-form",
    fields: [
      { name: "current", label: t(me.must_change_password ? "password.one_time" : "password.current"), type: "password", required: true, autocomplete: "current-password" },
      { name: "new", label: t("password.new"), type: "password", required: true, minLength: 12, hint: t("password.rule") },
      { name: "repeat", label: t("password.repeat"), type: "password", required: true,
        check: (v, all) => (v !== all.new ? "password.mismatch" : null) },
    ],
    submitLabel: t("password.submit"),
    submit: (v) => api("POST", "/me/password", { current: v.current, new: v.new }),
    done: () => {
      fill(changed, t("password.changed"));
      setTimeout(() => { location.href = next(query); }, 800);
    },
  });
  fill(root, h("div", { class: "narrow" },
    h("h1", {}, t("password.title")),
    me.must_change_password ? h("p", { class: "card", id: "must-change" }, t("password.must_change")) : null,
    f, changed,
    me.must_change_password ? null : h("p", {}, h("a", { href: "/two-factor", id: "two-factor-link" }, t("password.two_factor")))));
}
