// Accounts of an institution: who can log in, in which roles, when they last did; new
// accounts with a generated one-time password; disabling, enabling and password resets.
// A one-time password is shown once, here, for the person who hands it over.
import { t, when } from "../../i18n.js";
import { api, problemText } from "../../api.js";
import { h, fill } from "../../dom.js";
import { form, table, notice } from "../../form.js";
import { institutionPicker } from "./picker.js";

const ROLES = ["clinician", "radiologist", "pathologist", "trainee", "coordinator", "admin"];

/** The one-time password of `user`, to be handed over; it is not shown again. */
function secret(user, password) {
  return h("div", { class: "card", id: "one-time", role: "status" },
    h("p", {}, t("accounts.one_time", { name: user.display_name, username: user.username })),
    h("p", {}, h("span", { class: "secret", id: "one-time-password" }, password)),
    h("p", { class: "muted" }, t("accounts.one_time_note")));
}

export default async function render(root, { me, query }) {
  const status = h("div", { id: "accounts-status" });
  const body = h("div", {});
  // The clinician whose account the clinicians page asked for: offered once.
  let wanted = Number(query.get("clinician")) || null;

  const show = async (institution) => {
    const [users, clinicians] = await Promise.all([
      api("GET", `/users?institution_id=${institution.id}`),
      api("GET", `/clinicians?institution_id=${institution.id}&limit=1000`),
    ]);
    if (users.status !== 200) return fill(body, h("p", { class: "problem" }, problemText(users.status, users.data)));
    const staff = clinicians.status === 200 ? clinicians.data : [];
    const byClinician = new Map(staff.map((c) => [c.id, c]));
    const accountOf = new Set(users.data.map((u) => u.clinician_id).filter(Boolean));

    const act = (user) => {
      if (user.id === me.id) return h("span", { class: "muted" }, t("accounts.yourself"));
      if (!me.roles.includes("admin") && user.roles.includes("admin")) return null;
      const confirmBox = h("span", { class: "actions" });
      const ask = (question, yes, run) => fill(confirmBox,
        h("span", {}, question),
        h("button", { type: "button", class: "danger confirm", onclick: run }, yes),
        h("button", { type: "button", onclick: () => fill(confirmBox, buttons()) }, t("common.cancel")));
      const toggle = async () => {
        const r = await api("PATCH", `/users/${user.id}`, { disabled: !user.disabled });
        if (r.status !== 200) return fill(status, h("p", { class: "problem" }, problemText(r.status, r.data)));
        notice(status, t(r.data.disabled ? "accounts.disabled_done" : "accounts.enabled_done", { name: user.display_name }));
        show(institution);
      };
      const reset = async () => {
        const r = await api("POST", `/users/${user.id}/password-reset`, {});
        if (r.status !== 200) return fill(status, h("p", { class: "problem" }, problemText(r.status, r.data)));
        fill(status, secret(r.data.user, r.data.one_time_password));
        show(institution);
      };
      const buttons = () => [
        h("button", { type: "button", class: user.disabled ? "enable" : "disable danger",
          onclick: () => (user.disabled ? toggle() : ask(t("accounts.disable_q", { name: user.display_name }), t("accounts.disable"), toggle)) },
        t(user.disabled ? "accounts.enable" : "accounts.disable")),
        h("button", { type: "button", class: "reset",
          onclick: () => ask(t("accounts.reset_q", { name: user.display_name }), t("accounts.reset"), reset) }, t("accounts.reset")),
      ];
      return fill(confirmBox, buttons());
    };

    const rows = users.data.map((u) => ({
      attrs: { "data-user": u.id, "data-username": u.username, "data-disabled": String(u.disabled) },
      cells: [
        h("span", {}, u.display_name, h("br"), h("span", { class: "muted" }, u.username)),
        u.roles.map((r) => t(`role.${r}`)).join("、"),
        u.clinician_id ? byClinician.get(u.clinician_id)?.name ?? `#${u.clinician_id}` : "–",
        [u.disabled ? h("span", { class: "badge urgent" }, t("accounts.is_disabled")) : h("span", { class: "badge met" }, t("accounts.is_active")),
          u.must_change_password ? [" ", h("span", { class: "badge remote" }, t("accounts.must_change"))] : null],
        u.last_login_at ? when(u.last_login_at) : h("span", { class: "muted" }, t("accounts.never")),
        act(u),
      ],
    }));

    const roles = ROLES.filter((r) => r !== "admin" || me.roles.includes("admin"));
    const create = form({
      id: "account-form",
      fields: [
        { name: "display_name", label: t("accounts.display_name"), required: true,
          value: wanted ? byClinician.get(wanted)?.name : null },
        { name: "username", label: t("accounts.username"), required: true, hint: t("accounts.username_rule"),
          check: (v) => (/^[A-Za-z0-9._-]{3,64}$/.test(v) ? null : "accounts.username_bad") },
        { name: "roles", label: t("accounts.roles"), type: "checks", required: true, wide: true,
          options: roles.map((r) => [r, t(`role.${r}`)]), value: wanted ? ["clinician"] : [] },
        { name: "clinician_id", label: t("accounts.clinician"), type: "select", placeholder: t("accounts.no_clinician"),
          options: staff.filter((c) => !accountOf.has(c.id)).map((c) => [c.id, `${c.name} · ${c.title}`]),
          value: wanted, hint: t("accounts.clinician_hint") },
      ],
      submitLabel: t("accounts.create"),
      submit: (v) => api("POST", "/users", {
        username: v.username, display_name: v.display_name, institution_id: institution.id,
        clinician_id: v.clinician_id === null ? null : Number(v.clinician_id), roles: v.roles,
      }),
      done: (created) => {
        fill(status, secret(created.user, created.initial_password));
        wanted = null;
        show(institution);
      },
    });

    fill(body,
      h("h2", {}, t("accounts.of", { name: institution.name, n: users.data.length })),
      table({ id: "accounts", columns: [t("accounts.person"), t("accounts.roles"), t("accounts.clinician"), t("accounts.state"), t("accounts.last_login"), ""], rows }),
      h("h2", {}, t("accounts.new")),
      create);
  };

  fill(root,
    institutionPicker({ me, query, onPick: (i) => { fill(status); show(i); } }),
    status, body);
}
