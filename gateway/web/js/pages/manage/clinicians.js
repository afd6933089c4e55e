// Clinicians (医务人员) of one institution: an administrator finds the institution by
// name, a coordinator sees their own. Each clinician with their title and its rank,
// specialty, licence number, the day independent practice began and the full years
// since (counted by the gateway), whether they qualify as a consultant (and why not),
// and their login account, or a link to create one. The institution's managers add
// clinicians and keep their name, title, specialty, licence and practice date current.
import { t } from "../../i18n.js";
import { api, problemText } from "../../api.js";
import { h, fill } from "../../dom.js";
import { form, notice, table } from "../../form.js";
import { institutionPicker, manages } from "./picker.js";

/** Today in China, `YYYY-MM-DD`: a practice cannot begin after it. */
function today() {
  return new Date().toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" });
}

const notFuture = (d) => (d > today() ? "clinicians.future" : null);

/** The roster's fields (name, title, specialty), as the gateway takes them. */
function rosterFields(c = {}) {
  return [
    { name: "name", label: t("clinicians.name"), required: true, value: c.name },
    { name: "title", label: t("clinicians.title"), required: true, hint: t("clinicians.title_hint"), value: c.title },
    { name: "specialty", label: t("clinicians.specialty"), required: true, value: c.specialty },
  ];
}

/** The credentials' fields, as the gateway takes them. */
function credentialFields(c = {}) {
  return [
    { name: "licence_number", label: t("clinicians.licence"), value: c.licence_number },
    { name: "practice_since", label: t("clinicians.since"), type: "date", max: today(), value: c.practice_since,
      hint: t("clinicians.since_hint"), check: notFuture },
  ];
}

function qualification(c) {
  if (!c.consultant_gaps.length) {
    return h("span", { class: "badge met", "data-qualifies": "true" }, t("clinicians.qualifies"));
  }
  return [h("span", { class: "badge urgent", "data-qualifies": "false" }, t("clinicians.not_qualified")), " ",
    h("small", { class: "gaps" }, c.consultant_gaps.map((g) => t(`gap.${g}`)).join("；"))];
}

const unrecorded = () => h("span", { class: "muted" }, t("clinicians.unrecorded"));

export default async function render(root, { me, query }) {
  const list = h("div", { id: "clinicians" });
  const slot = h("div", { id: "clinician-form-slot" });
  const note = h("p", { id: "clinician-note", role: "status" });

  const show = async (inst) => {
    fill(slot);
    fill(list, h("p", { class: "muted" }, t("common.loading")));
    const [people, accounts] = await Promise.all([
      api("GET", `/clinicians?institution_id=${inst.id}&limit=1000`),
      api("GET", `/users?institution_id=${inst.id}`),
    ]);
    if (people.status !== 200) return fill(list, h("p", { class: "problem" }, problemText(people.status, people.data)));
    // Accounts are the institution's managers' to see; others see the list without them.
    const accountOf = new Map(accounts.status === 200
      ? accounts.data.filter((u) => u.clinician_id).map((u) => [u.clinician_id, u]) : []);
    const mine = manages(me, inst.id);

    const after = async (saved, key) => {
      await show(inst);
      notice(note, t(key, { name: saved.name }));
      list.querySelector(`[data-clinician="${saved.id}"]`)?.classList.add("saved");
    };
    const open = (f) => {
      fill(note);
      fill(slot, f);
      slot.scrollIntoView({ block: "start" });
      slot.querySelector("input")?.focus();
    };
    const add = () => {
      const [name, ...roster] = rosterFields();
      open(form({
        id: "clinician-form",
        intro: h("h2", {}, t("clinicians.add_title")),
        fields: [
          name,
          { name: "sex", label: t("clinicians.sex"), type: "select", options: [["M", t("sex.M")], ["F", t("sex.F")]] },
          ...roster,
          ...credentialFields(),
        ],
        submitLabel: t("clinicians.add"),
        submit: (v) => api("POST", "/clinicians", { ...v, institution_id: inst.id }),
        done: (c) => after(c, "clinicians.added"),
        cancel: () => fill(slot),
      }));
    };
    const edit = (c) => open(form({
      id: "clinician-form",
      intro: h("h2", {}, t("clinicians.edit_title", { name: c.name })),
      fields: [...rosterFields(c), ...credentialFields(c)],
      submit: (v) => api("PATCH", `/clinicians/${c.id}`, v),
      done: (saved) => after(saved, "clinicians.saved"),
      cancel: () => fill(slot),
    }));

    const account = (c) => {
      const u = accountOf.get(c.id);
      if (u) {
        return [h("span", { class: "username" }, u.username),
          u.disabled ? [" ", h("span", { class: "badge" }, t("clinicians.disabled"))] : null];
      }
      return mine
        ? h("a", { class: "button", href: `/manage/accounts?clinician=${c.id}&institution=${inst.id}` }, t("clinicians.create_account"))
        : h("span", { class: "muted" }, t("common.none"));
    };
    fill(list,
      h("div", { class: "toolbar" },
        h("h2", {}, inst.name, " ", h("span", { class: "muted" }, t("clinicians.count", { n: people.data.length }))),
        mine ? h("button", { type: "button", class: "primary", id: "clinician-add", onclick: add }, t("clinicians.add")) : null),
      h("p", { class: "muted" }, t("clinicians.rule")),
      table({
        id: "clinician-table",
        columns: ["clinicians.name", "clinicians.title", "clinicians.specialty", "clinicians.licence", "clinicians.practice",
          "clinicians.consultant", "clinicians.account", ""].map((k) => (k ? t(k) : "")),
        rows: people.data.map((c) => ({
          attrs: { "data-clinician": c.id },
          cells: [
            [h("span", { class: "name" }, c.name), c.sex ? h("span", { class: "muted" }, ` ${t(`sex.${c.sex}`)}`) : null],
            [c.title, " ", h("span", { class: "badge rank", "data-rank": c.title_rank }, t(`rank.${c.title_rank}`))],
            c.specialty || unrecorded(),
            c.licence_number ?? unrecorded(),
            c.practice_since === null ? unrecorded()
              : [h("span", { class: "since" }, c.practice_since), " ",
                h("span", { class: "years" }, c.practice_years < 1 ? t("clinicians.years_under") : t("clinicians.years_n", { n: c.practice_years }))],
            qualification(c),
            account(c),
            mine ? h("button", { type: "button", class: "link edit", onclick: () => edit(c) }, t("clinicians.edit")) : "",
          ],
        })),
        empty: t("clinicians.none"),
      }));
  };

  fill(root, institutionPicker({ me, query, onPick: show }), note, slot, list);
}
