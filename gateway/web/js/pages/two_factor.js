// Two-step verification of one's own account: setting it up (a QR code for the
// authenticator app, the key to type when it cannot scan, a code to confirm, then the
// recovery codes, shown once) and turning it off. Administrators (auth.two_factor_roles)
// are sent here until it is on.
import { t } from "../i18n.js";
import { api } from "../api.js";
import { h, fill } from "../dom.js";
import { form } from "../form.js";

/** Where to go afterwards: the page that sent the user here, on this site only. */
function next(query) {
  const to = query.get("next") ?? "/home";
  return to.startsWith("/") && !to.startsWith("//") && !to.startsWith("/two-factor") ? to : "/home";
}

/** The key in groups of four, as authenticator apps show it. */
function grouped(secret) {
  return secret.match(/.{1,4}/g).join(" ");
}

/** The recovery codes, shown once, and the way on. */
function recovery(root, codes, query) {
  fill(root, h("div", { class: "narrow" },
    h("h1", {}, t("two_factor.title")),
    h("p", { class: "done", role: "status", id: "two-factor-on" }, t("two_factor.on")),
    h("h2", {}, t("two_factor.recovery_title")),
    h("p", {}, t("two_factor.recovery_about")),
    h("ol", { id: "recovery-codes", class: "card codes" }, codes.map((c) => h("li", {}, h("code", {}, c)))),
    h("p", {}, h("button", {
      type: "button", class: "primary", id: "two-factor-continue",
      onclick: () => { location.href = next(query); },
    }, t("two_factor.continue")))));
}

/** Step 1 and 2: the QR code and key of a new secret, and the code that confirms it. */
function enrolment(root, enrolled, query) {
  const qr = h("img", {
    id: "two-factor-qr", alt: t("two_factor.qr_alt"), width: 200, height: 200,
    src: `data:image/svg+xml;base64,${btoa(enrolled.qr_svg)}`,
  });
  const confirm = form({
    id: "two-factor-confirm",
    fields: [
      { name: "code", label: t("two_factor.code"), required: true, minLength: 6, autocomplete: "one-time-code" },
    ],
    submitLabel: t("two_factor.confirm"),
    submit: (v) => api("POST", "/me/two-factor/confirm", { code: v.code.trim() }),
    done: (data) => recovery(root, data.recovery_codes, query),
  });
  return [
    h("p", {}, t("two_factor.step1")),
    h("p", {}, qr),
    h("p", {}, t("two_factor.manual")),
    h("p", {}, h("code", { id: "two-factor-secret", class: "secret", "data-secret": enrolled.secret }, grouped(enrolled.secret))),
    h("p", {}, t("two_factor.step2")),
    confirm,
  ];
}

export default async function render(root, { me, query }) {
  const intro = [
    h("h1", {}, t("two_factor.title")),
    h("p", {}, t("two_factor.about")),
    me.two_factor_required && !me.two_factor ? h("p", { class: "card", id: "two-factor-required" }, t("two_factor.required")) : null,
  ];
  if (me.two_factor) {
    const off = h("p", { class: "done", role: "status", id: "two-factor-off" });
    const disable = form({
      id: "two-factor-disable",
      intro: h("p", {}, t("two_factor.disable_about")),
      fields: [
        { name: "code", label: t("two_factor.code"), autocomplete: "one-time-code" },
        { name: "password", label: t("two_factor.password"), type: "password", autocomplete: "current-password" },
      ],
      submitLabel: t("two_factor.disable"),
      submit: (v) => api("DELETE", "/me/two-factor", {
        code: v.code.trim() || null, password: v.password || null,
      }),
      done: () => {
        fill(off, t("two_factor.disabled"));
        setTimeout(() => { location.reload(); }, 800);
      },
    });
    fill(root, h("div", { class: "narrow" }, intro,
      h("p", { class: "done", id: "two-factor-status" }, t("two_factor.on")),
      h("h2", {}, t("two_factor.disable_title")),
      me.two_factor_required ? h("p", {}, t("two_factor.disable_required")) : null,
      disable, off));
    return;
  }
  const steps = h("div", { id: "two-factor-steps" });
  const problem = h("p", { class: "problem", role: "alert" });
  const begin = h("button", {
    type: "button", class: "primary", id: "two-factor-begin",
    onclick: async () => {
      fill(problem);
      begin.disabled = true;
      const { status, data } = await api("POST", "/me/two-factor");
      begin.disabled = false;
      if (status !== 200) {
        fill(problem, data?.detail ?? t("error.generic", { status }));
        return;
      }
      begin.hidden = true;
      fill(steps, enrolment(root, data, query));
      steps.querySelector("input")?.focus();
    },
  }, t("two_factor.begin"));
  fill(root, h("div", { class: "narrow" }, intro,
    h("p", { id: "two-factor-status" }, t("two_factor.off")),
    begin, problem, steps));
}
