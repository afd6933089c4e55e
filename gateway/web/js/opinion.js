// The opinion of a request: its signed versions, and the consultant's editor (write, save
// the draft, sign; amend once signed).
import { t } from "./i18n.js";
import { api, problemText } from "./api.js";
import { h, fill } from "./dom.js";

function when(iso) {
  return iso ? new Date(iso).toLocaleString(document.documentElement.lang || "zh-CN", { timeZone: "Asia/Shanghai" }) : "";
}

/** The signed versions of an opinion, newest first. */
export function signedOpinions(r, opinions) {
  const signed = opinions.filter((o) => o.status !== "draft").sort((a, b) => b.version - a.version);
  if (!signed.length) return h("p", { class: "muted" }, t("opinion.none"));
  return h("div", {}, signed.map((o, i) => h("article", { class: "opinion-version", "data-version": o.version },
    h("h3", {}, t(i === 0 ? "opinion.latest" : "opinion.earlier", { version: o.version }),
      " ", h("span", { class: "muted" }, t("opinion.signed_at", { at: when(o.signed_at) }))),
    h("p", { class: "opinion" }, o.body))));
}

/** The consultant's editor for request `r`; `reload` after a change. */
export function opinionEditor(r, opinions, reload) {
  const draft = opinions.find((o) => o.status === "draft");
  const amending = opinions.some((o) => o.status !== "draft");
  const body = h("textarea", { name: "body", id: "opinion-body", rows: 8 }, draft?.body ?? "");
  const note = h("p", { class: "problem", role: "alert" });
  const save = async () => {
    fill(note);
    const { status, data } = await api("PUT", `/requests/${r.id}/opinions`, { body: body.value });
    if (status !== 200) fill(note, problemText(status, data));
    return status === 200;
  };
  return h("div", { id: "opinion-editor" },
    h("h3", {}, t(amending ? "opinion.amend" : "opinion.write")),
    body, note,
    h("div", { class: "actions" },
      h("button", { type: "button", id: "save-opinion", onclick: async () => { if (await save()) await reload(); } }, t("opinion.save")),
      h("button", { type: "button", class: "primary", id: "sign", onclick: async () => {
        if (!(await save())) return;
        if (!confirm(t("opinion.sign_confirm"))) return;
        const { status, data } = await api("POST", `/requests/${r.id}/sign`, {});
        if (status !== 200) return fill(note, problemText(status, data));
        await reload();
      } }, t("step.sign"))));
}
