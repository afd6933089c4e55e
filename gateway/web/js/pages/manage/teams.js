// Medical teams (医疗队) of one dispatching institution: an administrator finds the
// institution by name, a coordinator sees their own. Each team with its leader, its
// members and how many they are; the institution's managers form teams among its
// clinicians and change their leader and members. The gateway holds a Huancui team to
// the plan's 5-10 members (003) and says so beside the members when it refuses.
import { t } from "../../i18n.js";
import { api, problemText } from "../../api.js";
import { h, fill } from "../../dom.js";
import { form, notice, table } from "../../form.js";
import { institutionPicker, manages } from "./picker.js";

export default async function render(root, { me, query }) {
  const list = h("div", { id: "teams" });
  const slot = h("div", { id: "team-form-slot" });
  const note = h("p", { id: "team-note", role: "status" });

  const show = async (inst) => {
    fill(slot);
    fill(list, h("p", { class: "muted" }, t("common.loading")));
    const [teams, people] = await Promise.all([
      api("GET", `/teams?institution_id=${inst.id}`),
      api("GET", `/clinicians?institution_id=${inst.id}&limit=1000`),
    ]);
    const failed = [teams, people].find((r) => r.status !== 200);
    if (failed) return fill(list, h("p", { class: "problem" }, problemText(failed.status, failed.data)));
    const byId = new Map(people.data.map((c) => [c.id, c]));
    const nameOf = (id) => byId.get(id)?.name ?? `#${id}`;
    const mine = manages(me, inst.id);
    const options = people.data.map((c) => [c.id, `${c.name}（${c.title}）`]);

    const after = async (saved, key) => {
      await show(inst);
      notice(note, t(key, { name: saved.name }));
      list.querySelector(`[data-team="${saved.id}"]`)?.classList.add("saved");
    };
    const teamForm = (current) => form({
      id: "team-form",
      intro: [h("h2", {}, current ? t("teams.edit_title", { name: current.name }) : t("teams.add_title")),
        h("p", { class: "muted" }, t("teams.unit"), "：", inst.name)],
      fields: [
        { name: "name", label: t("teams.name"), required: true, value: current?.name },
        { name: "leader_id", label: t("teams.leader"), type: "select", required: true, value: current?.leader_id,
          options },
        { name: "member_ids", label: t("teams.members"), type: "checks", wide: true, options,
          value: current?.member_ids, hint: t("teams.size_hint") },
      ],
      submitLabel: current ? t("common.save") : t("teams.add"),
      submit: (v) => {
        const body = { name: v.name, leader_id: Number(v.leader_id), member_ids: v.member_ids.map(Number) };
        return current
          ? api("PATCH", `/teams/${current.id}`, body)
          : api("POST", "/teams", { ...body, institution_id: inst.id });
      },
      done: (saved) => after(saved, current ? "teams.saved" : "teams.added"),
      cancel: () => fill(slot),
    });
    const open = (current) => {
      fill(note);
      fill(slot, teamForm(current));
      slot.scrollIntoView({ block: "start" });
      slot.querySelector("input")?.focus();
    };

    fill(list,
      h("div", { class: "toolbar" },
        h("h2", {}, inst.name),
        mine && people.data.length
          ? h("button", { type: "button", class: "primary", id: "team-add", onclick: () => open(null) }, t("teams.add"))
          : null),
      people.data.length ? null : h("p", { class: "muted" }, t("teams.no_clinicians"), " ",
        h("a", { href: `/manage/clinicians?institution=${inst.id}` }, t("manage.clinicians"))),
      table({
        id: "team-table",
        columns: ["teams.name", "teams.leader", "teams.members", "teams.size", ""].map((k) => (k ? t(k) : "")),
        rows: teams.data.map((team) => ({
          attrs: { "data-team": team.id },
          cells: [
            h("span", { class: "name" }, team.name),
            h("span", { class: "leader" }, nameOf(team.leader_id)),
            team.member_ids.filter((m) => m !== team.leader_id).map(nameOf).join("、") || h("span", { class: "muted" }, t("common.none")),
            h("span", { class: "size" }, t("teams.size_n", { n: team.member_ids.length })),
            mine ? h("button", { type: "button", class: "link edit", onclick: () => open(team) }, t("teams.edit")) : "",
          ],
        })),
        empty: t("teams.none"),
      }));
  };

  fill(root, institutionPicker({ me, query, onPick: show }), note, slot, list);
}
