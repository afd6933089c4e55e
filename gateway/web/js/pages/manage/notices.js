// How an institution is told besides its people's pages: its webhook (state changes of
// its requests, signed, for the hospital's own systems), its chat group robot (WeCom,
// DingTalk or Feishu, told of urgent requests), and the messages sent or waiting, with
// why the last attempt failed. Administrators pick the institution; a coordinator works
// on their own.
import { t, when } from "../../i18n.js";
import { api, problemText } from "../../api.js";
import { h, fill } from "../../dom.js";
import { form, table, notice } from "../../form.js";
import { institutionPicker } from "./picker.js";

const KINDS = ["wecom", "dingtalk", "feishu"];

export default async function render(root, { me, query }) {
  const chosen = h("div", { id: "notices-institution" });
  fill(root, institutionPicker({ me, query, onPick: (institution) => draw(chosen, institution) }), chosen);
}

async function draw(el, institution) {
  const id = institution.id;
  const status = h("p", { role: "status", id: "channels-status" });
  const robotCard = h("section", { class: "card", id: "robot-card" });
  const hookCard = h("section", { class: "card", id: "webhook-card" });
  const sentCard = h("section", { class: "card", id: "deliveries-card" });
  fill(el, h("h2", { "data-institution": id }, institution.name), status, robotCard, hookCard, sentCard);

  const drawRobot = async () => {
    const r = await api("GET", `/institutions/${id}/chat-robot`);
    const current = r.status === 200 ? r.data : null;
    const remove = current ? h("button", { type: "button", class: "danger", id: "robot-remove", onclick: async () => {
      const answer = await api("DELETE", `/institutions/${id}/chat-robot`);
      if (answer.status !== 204) return fill(status, h("span", { class: "problem" }, problemText(answer.status, answer.data)));
      await drawRobot();
      notice(status, t("channels.robot_removed"));
    } }, t("channels.robot_remove")) : null;
    fill(robotCard, h("h3", {}, t("channels.robot")), h("p", { class: "muted" }, t("channels.robot_about")),
      current ? h("p", { id: "robot-current" }, t(`channels.kind.${current.kind}`), " · ", h("code", {}, current.url),
        current.signed ? [" · ", t("channels.signed")] : null, " ", remove) : h("p", { class: "muted", id: "robot-current" }, t("channels.robot_none")),
      form({
        id: "robot-form",
        fields: [
          { name: "kind", label: t("channels.kind"), type: "select", required: true, value: current?.kind ?? "wecom",
            options: KINDS.map((k) => [k, t(`channels.kind.${k}`)]) },
          { name: "url", label: t("channels.url"), required: true, value: current?.url, wide: true,
            placeholder: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…",
            check: (v) => (/^https?:\/\/\S+$/.test(v) ? null : "channels.url_bad") },
          { name: "secret", label: t("channels.secret"), type: "password", hint: t("channels.secret_hint"), autocomplete: "off" },
        ],
        submitLabel: t("channels.robot_save"),
        submit: (v) => api("PUT", `/institutions/${id}/chat-robot`, { kind: v.kind, url: v.url, secret: v.secret }),
        done: async () => { await drawRobot(); notice(status, t("channels.robot_saved")); },
      }));
  };

  const drawHook = async () => {
    const r = await api("GET", `/institutions/${id}/webhook`);
    fill(hookCard, h("h3", {}, t("channels.webhook")), h("p", { class: "muted" }, t("channels.webhook_about")),
      r.status === 200 ? h("p", { id: "webhook-current" }, h("code", {}, r.data.url)) : h("p", { class: "muted", id: "webhook-current" }, t("channels.webhook_none")),
      form({
        id: "webhook-form",
        fields: [
          { name: "url", label: t("channels.url"), required: true, value: r.status === 200 ? r.data.url : null, wide: true,
            check: (v) => (/^https?:\/\/\S+$/.test(v) ? null : "channels.url_bad") },
          { name: "secret", label: t("channels.webhook_secret"), type: "password", required: true, autocomplete: "off" },
        ],
        submitLabel: t("channels.webhook_save"),
        submit: (v) => api("PUT", `/institutions/${id}/webhook`, { url: v.url, secret: v.secret }),
        done: async () => { await drawHook(); notice(status, t("channels.webhook_saved")); },
      }));
  };

  const drawSent = async () => {
    const [r, hook, robot] = await Promise.all([api("GET", `/institutions/${id}/deliveries?limit=100`),
      api("GET", `/institutions/${id}/webhook`), api("GET", `/institutions/${id}/chat-robot`)]);
    // A message for a channel the institution has not set waits until it is set.
    const unset = { webhook: hook.status !== 200, chat: robot.status !== 200, email: false };
    if (r.status !== 200) return fill(sentCard, h("p", { class: "problem" }, problemText(r.status, r.data)));
    fill(sentCard, h("h3", {}, t("channels.sent")),
      h("div", { class: "scroll" }, table({
        id: "deliveries",
        empty: t("channels.sent_none"),
        columns: [t("channels.channel"), t("channels.event"), t("channels.request"), t("channels.to"), t("channels.state"), t("channels.error")],
        rows: r.data.map((d) => ({
          attrs: { "data-delivery": d.id, "data-channel": d.channel, "data-delivered": String(Boolean(d.delivered_at)) },
          cells: [t(`channels.channel.${d.channel}`), t(`channels.event.${d.event}`),
            d.request_id ? h("a", { href: `/requests/${d.request_id}` }, `#${d.request_id}`) : "–",
            d.person ?? "–",
            d.delivered_at ? t("channels.delivered", { at: when(d.delivered_at) })
              : unset[d.channel] ? t("channels.unset") : t("channels.waiting", { n: d.attempts, at: when(d.next_attempt_at) }),
            d.last_error ?? ""],
        })),
      })));
  };
  await Promise.all([drawRobot(), drawHook(), drawSent()]);
}
