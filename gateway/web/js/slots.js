// Free slots on a grid: the days as columns, the times of day as rows (China time), each
// free slot a button carrying its start (`data-start`, the API's instant). One is chosen
// at a time; the holder's `value` is the chosen start, or "" when none is.
import { t, lang } from "./i18n.js";
import { h, fill } from "./dom.js";

const CHINA = "Asia/Shanghai";

/** `YYYY-MM-DD` and `HH:MM` of an instant in China time. */
function parts(iso) {
  const shifted = new Date(Date.parse(iso) + 8 * 3600e3).toISOString();
  return { day: shifted.slice(0, 10), time: shifted.slice(11, 16) };
}

/** A day's heading: weekday and date in the page's language. */
function dayLabel(day) {
  const date = new Date(`${day}T12:00:00+08:00`);
  return date.toLocaleDateString(lang() === "zh" ? "zh-CN" : "en-GB", {
    timeZone: CHINA, month: "2-digit", day: "2-digit", weekday: "short",
  });
}

/**
 * Draws `slots` (`[{start, end}]`, in order) into `holder` as a grid; `onPick(start)` is
 * told of each choice. The first slot is chosen unless `choose` is false.
 */
export function slotGrid(holder, slots, { onPick, choose = true } = {}) {
  holder.value = "";
  if (!slots.length) {
    fill(holder, h("p", { class: "muted", id: "slot-none" }, t("accept.no_slots")));
    return;
  }
  const days = [...new Set(slots.map((s) => parts(s.start).day))].sort();
  const times = [...new Set(slots.map((s) => parts(s.start).time))].sort();
  const at = new Map(slots.map((s) => {
    const p = parts(s.start);
    return [`${p.day} ${p.time}`, s];
  }));
  const chosen = h("p", { class: "muted", id: "slot-chosen", "aria-live": "polite" });
  const pick = (button) => {
    for (const b of holder.querySelectorAll("button[data-start]")) b.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-pressed", "true");
    holder.value = button.dataset.start;
    fill(chosen, t("slots.chosen", { when: `${dayLabel(parts(button.dataset.start).day)} ${parts(button.dataset.start).time}` }));
    onPick?.(holder.value);
  };
  const table = h("table", { class: "slot-grid", id: "slot-grid" },
    h("caption", {}, t("slots.grid")),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("slots.time")),
      days.map((d) => h("th", { scope: "col", "data-day": d }, dayLabel(d))))),
    h("tbody", {}, times.map((time) => h("tr", {},
      h("th", { scope: "row" }, time),
      days.map((d) => {
        const s = at.get(`${d} ${time}`);
        return h("td", {}, s ? h("button", {
          type: "button", class: "slot", "data-start": s.start, "aria-pressed": "false",
          "aria-label": `${dayLabel(d)} ${time}`,
          onclick: (e) => pick(e.currentTarget),
        }, time) : null);
      })))));
  fill(holder, h("div", { class: "scroll-x" }, table), chosen);
  const first = holder.querySelector("button[data-start]");
  if (choose && first) pick(first);
}
