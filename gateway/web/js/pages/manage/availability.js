// A consultant's hours as a week calendar: the weekly rules that apply each day, the
// exceptions (days or hours off) on it, and how many slots are still free; rules and
// exceptions are added and removed here by the consultant's unit (coordinator) or an
// administrator.
import { t } from "../../i18n.js";
import { api, problemText } from "../../api.js";
import { h, fill } from "../../dom.js";
import { form, notice } from "../../form.js";
import { institutionPicker } from "./picker.js";

/** `YYYY-MM-DD` of a Date, as a calendar day (no time zone shift). */
const iso = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
/** The Monday of the week of `day` (a `YYYY-MM-DD`). */
function monday(day) {
  const d = new Date(`${day}T00:00:00`);
  d.setDate(d.getDate() - ((d.getDay() + 6) % 7));
  return d;
}
const hm = (time) => time.slice(0, 5);
/** Today in China. */
const today = () => new Date().toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" });

export default async function render(root, { me, query }) {
  const status = h("div", { id: "availability-status", role: "status" });
  const chooser = h("div", { class: "toolbar" });
  const body = h("div", {});
  let week = monday(today());

  const showConsultant = async (c) => {
    const from = iso(week);
    const end = new Date(week);
    end.setDate(end.getDate() + 6);
    const to = iso(end);
    const [rules, exceptions, slots] = await Promise.all([
      api("GET", `/clinicians/${c.id}/availability`),
      api("GET", `/clinicians/${c.id}/availability/exceptions?from=${from}&to=${to}`),
      api("GET", `/clinicians/${c.id}/slots?from=${from}&to=${to}`),
    ]);
    if (rules.status !== 200) return fill(body, h("p", { class: "problem" }, problemText(rules.status, rules.data)));
    const offs = exceptions.status === 200 ? exceptions.data : [];
    const free = slots.status === 200 ? slots.data : [];
    const freeOn = (day) => free.filter((s) => new Date(s.start).toLocaleDateString("sv-SE", { timeZone: "Asia/Shanghai" }) === day).length;

    const removeButton = (label, path, what) => {
      const box = h("span", { class: "actions" });
      const initial = () => fill(box, h("button", { type: "button", class: "link remove", onclick: () => fill(box,
        h("button", { type: "button", class: "danger confirm", onclick: async () => {
          const r = await api("DELETE", path);
          if (r.status !== 204) return fill(status, h("p", { class: "problem" }, problemText(r.status, r.data)));
          notice(status, t("av.removed", { what }));
          showConsultant(c);
        } }, t("av.remove_yes")),
        h("button", { type: "button", onclick: initial }, t("common.cancel"))) }, label));
      initial();
      return box;
    };

    const days = [...Array(7)].map((_, i) => {
      const d = new Date(week);
      d.setDate(d.getDate() + i);
      const day = iso(d);
      const weekday = i + 1;
      const applying = rules.data.filter((r) => r.weekday === weekday && r.valid_from <= day && (!r.valid_to || day <= r.valid_to))
        .sort((a, b) => a.start_time.localeCompare(b.start_time));
      const off = offs.filter((e) => e.day === day);
      return h("div", { class: `day${day === today() ? " today" : ""}`, "data-day": day },
        h("h3", {}, t(`av.weekday.${weekday}`), " ", h("span", { class: "muted" }, day.slice(5))),
        applying.map((r) => h("div", { class: "block rule", "data-rule": r.id },
          h("strong", {}, `${hm(r.start_time)}–${hm(r.end_time)}`),
          h("span", { class: "muted" }, t("av.every", { n: r.slot_minutes })),
          removeButton(t("av.remove"), `/clinicians/${c.id}/availability/${r.id}`, t("av.rule")))),
        off.map((e) => h("div", { class: "block off", "data-exception": e.id },
          h("strong", {}, e.start_time ? `${hm(e.start_time)}–${hm(e.end_time)}` : t("av.whole_day")),
          h("span", {}, t("av.off", { reason: e.reason })),
          removeButton(t("av.remove"), `/clinicians/${c.id}/availability/exceptions/${e.id}`, t("av.exception")))),
        applying.length ? h("p", { class: "muted free" }, t("av.free", { n: freeOn(day) })) : h("p", { class: "muted" }, t("av.none")));
    });

    const move = (n) => { week.setDate(week.getDate() + 7 * n); showConsultant(c); };
    const ruleForm = form({
      id: "rule-form",
      fields: [
        { name: "weekday", label: t("av.weekday"), type: "select", required: true, value: "1",
          options: [1, 2, 3, 4, 5, 6, 7].map((n) => [String(n), t(`av.weekday.${n}`)]) },
        { name: "start_time", label: t("av.start"), type: "time", required: true, value: "08:30" },
        { name: "end_time", label: t("av.end"), type: "time", required: true, value: "11:30",
          check: (v, all) => (all.start_time && v <= all.start_time ? "av.end_after_start" : null) },
        { name: "slot_minutes", label: t("av.slot_minutes"), type: "number", required: true, value: 30, min: 5, max: 240 },
        { name: "valid_from", label: t("av.valid_from"), type: "date", value: today() },
        { name: "valid_to", label: t("av.valid_to"), type: "date", hint: t("av.valid_to_hint"),
          check: (v, all) => (v && all.valid_from && v < all.valid_from ? "av.to_before_from" : null) },
      ],
      submitLabel: t("av.add_rule"),
      submit: (v) => api("POST", `/clinicians/${c.id}/availability`, { ...v, weekday: Number(v.weekday) }),
      done: () => { notice(status, t("av.rule_added")); showConsultant(c); },
    });
    const offForm = form({
      id: "exception-form",
      fields: [
        { name: "day", label: t("av.day"), type: "date", required: true },
        { name: "start_time", label: t("av.off_from"), type: "time", hint: t("av.off_hint") },
        { name: "end_time", label: t("av.off_to"), type: "time",
          check: (v, all) => (Boolean(v) !== Boolean(all.start_time) ? "av.both_or_neither" : v && v <= all.start_time ? "av.end_after_start" : null) },
        { name: "reason", label: t("av.reason"), required: true, placeholder: t("av.reason_example") },
      ],
      submitLabel: t("av.add_exception"),
      submit: (v) => api("POST", `/clinicians/${c.id}/availability/exceptions`, v),
      done: () => { notice(status, t("av.exception_added")); showConsultant(c); },
    });
    fill(body,
      h("div", { class: "toolbar" },
        h("button", { type: "button", id: "prev-week", onclick: () => move(-1) }, t("av.prev")),
        h("strong", { id: "week-of" }, t("av.week_of", { from, to })),
        h("button", { type: "button", id: "next-week", onclick: () => move(1) }, t("av.next"))),
      h("div", { class: "week", id: "week" }, days),
      h("p", { class: "muted", id: "rule-count", "data-count": rules.data.length }, t("av.rule_count", { n: rules.data.length })),
      h("div", { class: "row" },
        h("section", {}, h("h2", {}, t("av.new_rule")), ruleForm),
        h("section", {}, h("h2", {}, t("av.new_exception")), offForm)));
  };

  const showInstitution = async (institution) => {
    const r = await api("GET", `/clinicians?institution_id=${institution.id}&limit=1000`);
    const staff = r.status === 200 ? r.data : [];
    const select = h("select", { id: "consultant", "aria-label": t("av.consultant") },
      h("option", { value: "" }, t("av.choose")),
      staff.map((c) => h("option", { value: c.id }, `${c.name} · ${c.title} · ${c.specialty}`)));
    select.addEventListener("change", () => {
      const c = staff.find((x) => String(x.id) === select.value);
      fill(status);
      if (c) showConsultant(c); else fill(body);
    });
    fill(chooser, h("label", { for: "consultant" }, t("av.consultant")), select);
    fill(body);
    const wanted = query.get("clinician") ?? (me.clinician_id && me.institution_id === institution.id ? String(me.clinician_id) : null);
    if (wanted && staff.some((c) => String(c.id) === wanted)) {
      select.value = wanted;
      select.dispatchEvent(new Event("change"));
    }
  };

  fill(root, institutionPicker({ me, query, onPick: showInstitution }), chooser, status, body);
}
