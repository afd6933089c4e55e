// Teaching, ward rounds and visits (教学、查房与下乡): the activities of one institution,
// for its coordinators, and for administrators, who find it by name with the shared
// picker (the address keeps the choice, `?institution=<id>`). Three parts, each a list
// with its forms:
// - the teaching sessions it presents: schedule one, change it, cancel it with a reason;
// - the ward rounds it takes part in (as the ward, or through its teams): schedule a
//   weekly series, move one round, cancel one round or the rest of its series;
// - the on-site visits (巡诊、坐诊) to village stations made by its teams and clinicians,
//   or to it: record one.
// The forms show every error beside its field and keep what was typed; a cancellation
// asks for its reason in the page, and what was done is said in the part's note.
import { t, when } from "../../i18n.js";
import { api, problemText, since } from "../../api.js";
import { h, fill } from "../../dom.js";
import { form, table, notice } from "../../form.js";
import { institutionName } from "../../requests.js";
import { institutionPicker } from "./picker.js";

const MINUTE = 60e3;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** The services a visit gives, as the API names them. */
const SERVICES = ["consult", "imaging_read", "pathology_read", "ward_round", "teaching"];

/** `YYYY-MM-DDTHH:MM` in China time of an instant, for a datetime-local input. */
function localValue(date) {
  return new Date(date.getTime() + 8 * HOUR).toISOString().slice(0, 16);
}

/** A datetime-local value read as China time, as an ISO instant. */
function fromLocal(value) {
  return new Date(`${value}:00+08:00`).toISOString();
}

/** Today in China, `YYYY-MM-DD`. */
function today() {
  return localValue(new Date()).slice(0, 10);
}

/** An instant `ms` from now, as a query parameter. */
function fromNow(ms) {
  return encodeURIComponent(new Date(Date.now() + ms).toISOString());
}

/** Minutes from `a` to `b` (ISO instants). */
function minutes(a, b) {
  return Math.round((Date.parse(b) - Date.parse(a)) / MINUTE);
}

/** The ISO instant `n` minutes after `iso`. */
function plusMinutes(iso, n) {
  return new Date(Date.parse(iso) + n * MINUTE).toISOString();
}

/** The check of a start: the catalogue key of its error when it is not a time to come. */
function toCome(value) {
  return Date.parse(fromLocal(value)) <= Date.now() ? "activities.in_past" : null;
}

/** Where a teaching session or a round stands now. */
function stateOf(x) {
  if (x.cancelled_at) return "cancelled";
  if (Date.parse(x.ends_at) <= Date.now()) return "ended";
  if (Date.parse(x.starts_at) <= Date.now()) return "under_way";
  return "scheduled";
}

/** Whether its organisers may still change or cancel it. */
function changeable(x) {
  return ["scheduled", "under_way"].includes(stateOf(x));
}

/** Its state as a badge, and the reason of a cancellation. */
function stateCell(x) {
  const state = stateOf(x);
  return [h("span", { class: "badge", "data-state": state }, t(`activities.state.${state}`)),
    x.cancel_reason ? h("div", { class: "muted reason" }, t("activities.because", { reason: x.cancel_reason })) : null];
}

/** A refusal to read a list, in place of the list. */
function refused({ status, data }) {
  return h("p", { class: "problem" }, problemText(status, data));
}

/** An answer whose problem blames `field` blames `instead`, the form's field for it. */
function blaming(answer, field, instead) {
  if (answer.data?.field === field) answer.data.field = instead;
  return answer;
}

/**
 * A part of the section: its heading and the button that opens its form, the note of what
 * was done, the place where forms open, and its lists.
 */
function part(id, title, newLabel) {
  const button = h("button", { type: "button", class: "primary", id: `${id}-new` }, newLabel);
  const note = h("p", { class: "done", role: "status", id: `${id}-note` });
  const slot = h("div", { id: `${id}-forms` });
  const lists = h("div", {}, h("p", { class: "muted" }, t("common.loading")));
  const section = h("section", { class: "card activity", id },
    h("div", { class: "activity-head" }, h("h2", {}, title), button), note, slot, lists);
  const p = {
    section, lists, button,
    /** Opens `f` in the part, in place of any other form. */
    show(f) {
      fill(note);
      fill(slot, f);
      f.scrollIntoView({ block: "nearest" });
      f.querySelector("input, select, textarea")?.focus();
    },
    close() { fill(slot); },
    /** Closes the form, says what was done and draws the lists again. */
    async did(text, draw) {
      fill(slot);
      notice(note, text);
      await draw();
    },
  };
  return p;
}

// ---- teaching sessions ----------------------------------------------------------------

/** The fields of a session: empty for a new one, or those of `s`. */
function sessionFields(clinicians, s) {
  const start = s ? localValue(new Date(s.starts_at)) : null;
  return [
    { name: "presenter_clinician_id", label: t("activities.presenter"), type: "select", required: true,
      options: clinicians.map((c) => [c.id, `${c.name}（${c.title}）`]), value: s?.presenter_clinician_id },
    { name: "topic", label: t("activities.topic"), required: true, wide: true, value: s?.topic },
    { name: "starts_at", label: t("activities.starts_at"), type: "datetime-local", required: true, value: start,
      check: (v) => (v === start ? null : toCome(v)) },
    { name: "duration_minutes", label: t("activities.duration"), type: "number", required: true, min: 15, max: 480,
      step: 5, value: s ? minutes(s.starts_at, s.ends_at) : 120 },
    { name: "capacity", label: t("activities.capacity"), type: "number", required: true, min: 1, max: 1000,
      value: s?.capacity ?? 50, hint: s ? t("activities.capacity_held", { n: s.enrolled }) : null },
  ];
}

/** What the form changes in `s`, as `PATCH /teaching/{id}` takes it. */
function sessionChange(v, s) {
  const change = {};
  if (Number(v.presenter_clinician_id) !== s.presenter_clinician_id) change.presenter_clinician_id = Number(v.presenter_clinician_id);
  if (v.topic !== s.topic) change.topic = v.topic;
  if (v.starts_at !== localValue(new Date(s.starts_at))) change.starts_at = fromLocal(v.starts_at);
  if (change.starts_at || v.duration_minutes !== minutes(s.starts_at, s.ends_at)) {
    change.ends_at = plusMinutes(change.starts_at ?? s.starts_at, v.duration_minutes);
  }
  if (v.capacity !== s.capacity) change.capacity = v.capacity;
  return change;
}

async function teachingPart(ctx) {
  const p = part("teaching", t("activities.teaching"), t("activities.teaching_new"));
  const names = new Map(ctx.clinicians.map((c) => [c.id, c.name]));
  const id = ctx.institution.id;
  const columns = ["activities.topic", "activities.presenter", "activities.starts_at", "activities.length",
    "activities.places", "activities.state", ""].map((k) => (k ? t(k) : ""));

  const draw = async () => {
    const [coming, past] = await Promise.all([
      api("GET", `/teaching?institution_id=${id}&from=${encodeURIComponent(since())}&to=${fromNow(365 * DAY)}`),
      api("GET", `/teaching?institution_id=${id}&from=${fromNow(-365 * DAY)}&to=${encodeURIComponent(since())}`),
    ]);
    if (coming.status !== 200) return fill(p.lists, refused(coming));
    if (past.status !== 200) return fill(p.lists, refused(past));
    const row = (s) => ({
      attrs: { "data-session": s.id, "data-state": stateOf(s) },
      cells: [s.topic, names.get(s.presenter_clinician_id) ?? "", when(s.starts_at),
        t("activities.minutes", { n: minutes(s.starts_at, s.ends_at) }),
        t("teaching.places", { enrolled: s.enrolled, capacity: s.capacity, waiting: s.waiting }),
        stateCell(s),
        changeable(s) ? h("div", { class: "actions" },
          h("button", { type: "button", class: "change", onclick: () => change(s) }, t("activities.change")),
          h("button", { type: "button", class: "danger cancel", onclick: () => cancel(s) }, t("activities.cancel_session")))
          : ""],
    });
    fill(p.lists,
      h("h3", {}, t("activities.upcoming")),
      table({ id: "teaching-upcoming", columns, rows: coming.data.map(row), empty: t("activities.no_sessions") }),
      h("h3", {}, t("activities.past")),
      table({ id: "teaching-past", columns, rows: past.data.reverse().map(row), empty: t("activities.no_past") }));
  };

  const change = (s) => p.show(form({
    id: "teaching-change-form",
    intro: h("h3", {}, t("activities.change_of", { topic: s.topic })),
    fields: sessionFields(ctx.clinicians, s),
    submitLabel: t("activities.save_change"),
    submit: async (v) => blaming(await api("PATCH", `/teaching/${s.id}`, sessionChange(v, s)), "ends_at", "duration_minutes"),
    done: (changed) => p.did(t("activities.session_changed", { topic: changed.topic, at: when(changed.starts_at) }), draw),
    cancel: () => p.close(),
    cancelLabel: t("activities.back"),
  }));

  const cancel = (s) => p.show(form({
    id: "teaching-cancel-form",
    intro: [h("h3", {}, t("activities.cancel_of", { topic: s.topic, at: when(s.starts_at) })),
      h("p", {}, t("activities.cancel_session_effect", { n: s.enrolled + s.waiting }))],
    fields: [{ name: "reason", label: t("activities.reason"), type: "textarea", required: true, wide: true,
      hint: t("activities.reason_hint") }],
    submitLabel: t("activities.confirm_cancel_session"),
    submit: (v) => api("POST", `/teaching/${s.id}/cancel`, { reason: v.reason }),
    done: (cancelled) => p.did(t("activities.session_cancelled", { topic: cancelled.topic }), draw),
    cancel: () => p.close(),
    cancelLabel: t("activities.keep"),
  }));

  p.button.addEventListener("click", () => p.show(form({
    id: "teaching-form",
    intro: h("h3", {}, t("activities.teaching_new")),
    fields: sessionFields(ctx.clinicians, null),
    submitLabel: t("activities.schedule"),
    submit: async (v) => {
      const startsAt = fromLocal(v.starts_at);
      const answer = await api("POST", "/teaching", {
        presenter_clinician_id: Number(v.presenter_clinician_id), topic: v.topic, starts_at: startsAt,
        ends_at: plusMinutes(startsAt, v.duration_minutes), capacity: v.capacity,
      });
      return blaming(answer, "ends_at", "duration_minutes");
    },
    done: (s) => p.did(t("activities.session_scheduled", { topic: s.topic, at: when(s.starts_at) }), draw),
    cancel: () => p.close(),
  })));
  await draw();
  return p.section;
}

// ---- ward rounds ----------------------------------------------------------------------

/**
 * Whom the institution's rounds may be with: the teams (its own, and the one designated
 * to support it for ward rounds), the wards' hospitals (itself when it has a designated
 * supporter, and those it or its teams support for ward rounds), and those hospitals'
 * own teams. The server decides; these are the choices that can pass.
 */
async function roundChoices(ctx) {
  const own = ctx.institution;
  const teams = new Map(ctx.teams.map((x) => [x.id, `${x.name}（${own.name}）`]));
  const wards = new Map();
  const chain = await api("GET", `/supporters?institution_id=${own.id}&service=ward_round`);
  const designated = chain.status === 200 ? chain.data.chain[0] : undefined;
  if (designated) {
    wards.set(own.id, own.name);
    const where = await institutionName(designated.institution_id);
    if (designated.kind === "team") teams.set(designated.id, `${designated.name}（${where}）`);
    if (designated.kind === "institution") {
      const theirs = await api("GET", `/teams?institution_id=${designated.id}`);
      for (const x of theirs.data ?? []) teams.set(x.id, `${x.name}（${where}）`);
    }
  }
  const supporters = [`supporter_institution_id=${own.id}`, ...ctx.teams.map((x) => `supporter_team_id=${x.id}`)];
  const pairings = await Promise.all(supporters.map((q) => api("GET", `/pairings?${q}&service=ward_round&date=${today()}`)));
  for (const { data } of pairings) {
    for (const pairing of Array.isArray(data) ? data : []) {
      if (pairing.standing === "in_force" && pairing.supported.kind === "institution") {
        wards.set(pairing.supported.value, await institutionName(pairing.supported.value));
      }
    }
  }
  const wardTeams = [];
  for (const [ward, name] of wards) {
    const theirs = await api("GET", `/teams?institution_id=${ward}`);
    for (const x of theirs.data ?? []) wardTeams.push([x.id, `${x.name}（${name}）`]);
  }
  return { teams, wards, wardTeams };
}

/** Each round's place in its weekly series: `k` of `n`. */
function placesInSeries(rounds) {
  const series = new Map();
  for (const w of rounds) {
    const key = w.series_id ?? w.id;
    series.set(key, [...(series.get(key) ?? []), w]);
  }
  const place = new Map();
  for (const list of series.values()) {
    list.sort((a, b) => Date.parse(a.starts_at) - Date.parse(b.starts_at));
    list.forEach((w, i) => place.set(w.id, { k: i + 1, n: list.length, later: list.slice(i + 1) }));
  }
  return place;
}

async function roundsPart(ctx) {
  const p = part("rounds", t("activities.rounds"), t("activities.rounds_new"));
  const choices = await roundChoices(ctx);
  const teamNames = new Map(choices.teams);
  const teamName = async (id) => {
    if (!teamNames.has(id)) {
      const { status, data } = await api("GET", `/teams/${id}`);
      teamNames.set(id, status === 200 ? `${data.name}（${await institutionName(data.institution_id)}）` : "");
    }
    return teamNames.get(id);
  };
  const columns = ["activities.ward", "activities.team", "activities.ward_hospital", "activities.starts_at",
    "activities.length", "activities.in_series", "activities.state", ""].map((k) => (k ? t(k) : ""));

  const draw = async () => {
    const r = await api("GET", `/ward-rounds?institution_id=${ctx.institution.id}&from=${fromNow(-365 * DAY)}&to=${fromNow(400 * DAY)}`);
    if (r.status !== 200) return fill(p.lists, refused(r));
    const place = placesInSeries(r.data);
    const shown = r.data.filter((w) => Date.parse(w.ends_at) > Date.now() - 30 * DAY);
    const rows = await Promise.all(shown.map(async (w) => {
      const { k, n, later } = place.get(w.id);
      return {
        attrs: { "data-round": w.id, "data-state": stateOf(w) },
        cells: [w.ward, await teamName(w.team_id), await institutionName(w.supported_institution_id), when(w.starts_at),
          t("activities.minutes", { n: minutes(w.starts_at, w.ends_at) }), t("activities.place", { k, n }), stateCell(w),
          changeable(w) ? h("div", { class: "actions" },
            h("button", { type: "button", class: "change", onclick: () => move(w) }, t("activities.move")),
            h("button", { type: "button", class: "danger cancel", onclick: () => cancel(w, later.filter(changeable)) },
              t("activities.cancel_round")))
            : ""],
      };
    }));
    fill(p.lists, table({ id: "rounds-list", columns, rows, empty: t("activities.no_rounds") }));
  };

  const move = (w) => p.show(form({
    id: "round-change-form",
    intro: h("h3", {}, t("activities.move_of", { ward: w.ward, at: when(w.starts_at) })),
    fields: [
      { name: "starts_at", label: t("activities.starts_at"), type: "datetime-local", required: true,
        value: localValue(new Date(w.starts_at)), check: toCome },
      { name: "duration_minutes", label: t("activities.duration"), type: "number", required: true, min: 15, max: 480,
        step: 5, value: minutes(w.starts_at, w.ends_at) },
    ],
    submitLabel: t("activities.save_change"),
    submit: (v) => api("PATCH", `/ward-rounds/${w.id}`, { starts_at: fromLocal(v.starts_at), duration_minutes: v.duration_minutes }),
    done: (moved) => p.did(t("activities.round_moved", { ward: moved.ward, at: when(moved.starts_at) }), draw),
    cancel: () => p.close(),
    cancelLabel: t("activities.back"),
  }));

  const cancel = (w, later) => p.show(form({
    id: "round-cancel-form",
    intro: [h("h3", {}, t("activities.cancel_of", { topic: w.ward, at: when(w.starts_at) })),
      h("p", {}, t("activities.cancel_round_effect"))],
    fields: [
      { name: "reason", label: t("activities.reason"), type: "textarea", required: true, wide: true,
        hint: t("activities.reason_hint") },
      later.length ? { name: "rest_of_series", label: t("activities.rest_of_series", { n: later.length }), type: "checkbox", wide: true } : null,
    ].filter(Boolean),
    submitLabel: t("activities.confirm_cancel_round"),
    submit: (v) => api("POST", `/ward-rounds/${w.id}/cancel`, { reason: v.reason, rest_of_series: Boolean(v.rest_of_series) }),
    done: (cancelled) => p.did(t("activities.rounds_cancelled", { n: cancelled.length, ward: w.ward }), draw),
    cancel: () => p.close(),
    cancelLabel: t("activities.keep"),
  }));

  p.button.addEventListener("click", () => p.show(form({
    id: "rounds-form",
    intro: h("h3", {}, t("activities.rounds_new")),
    fields: [
      { name: "team_id", label: t("activities.team"), type: "select", required: true, options: [...choices.teams],
        hint: t("activities.team_hint") },
      { name: "supported_institution_id", label: t("activities.ward_hospital"), type: "select", required: true,
        options: [...choices.wards] },
      { name: "ward", label: t("activities.ward"), required: true, placeholder: t("activities.ward_example") },
      { name: "ward_team_id", label: t("activities.ward_team"), type: "select", options: choices.wardTeams,
        placeholder: t("activities.ward_team_any"), hint: t("activities.ward_team_hint") },
      { name: "starts_at", label: t("activities.first_round"), type: "datetime-local", required: true, check: toCome },
      { name: "duration_minutes", label: t("activities.duration"), type: "number", required: true, min: 15, max: 480,
        step: 5, value: 60 },
      { name: "weeks", label: t("activities.weeks"), type: "number", required: true, min: 1, max: 52, value: 4,
        hint: t("activities.weeks_hint") },
    ],
    submitLabel: t("activities.schedule"),
    submit: (v) => api("POST", "/ward-rounds", {
      team_id: Number(v.team_id), supported_institution_id: Number(v.supported_institution_id), ward: v.ward,
      ward_team_id: v.ward_team_id ? Number(v.ward_team_id) : null, starts_at: fromLocal(v.starts_at),
      duration_minutes: v.duration_minutes, weeks: v.weeks,
    }),
    done: (rounds) => p.did(t("activities.rounds_scheduled", { n: rounds.length, ward: rounds[0]?.ward ?? "" }), draw),
    cancel: () => p.close(),
  })));
  await draw();
  return p.section;
}

// ---- on-site visits -------------------------------------------------------------------

async function visitsPart(ctx) {
  const p = part("visits", t("activities.visits"), t("activities.visits_new"));
  const own = ctx.institution;
  // The village stations of the institution's city (or of its region, when it is higher).
  const region = encodeURIComponent(own.region.split("/").slice(0, 2).join("/"));
  const villages = await api("GET", `/institutions?level=village_station&region=${region}&limit=1000`);
  const visitors = [
    ...ctx.teams.map((x) => [`team:${x.id}`, t("activities.by_team", { name: x.name })]),
    ...ctx.clinicians.map((c) => [`clinician:${c.id}`, `${c.name}（${c.title}）`]),
  ];
  const names = new Map(visitors);
  const visitor = async (v) => {
    const key = v.team_id ? `team:${v.team_id}` : `clinician:${v.clinician_id}`;
    if (!names.has(key)) {
      const { status, data } = await api("GET", v.team_id ? `/teams/${v.team_id}` : `/clinicians/${v.clinician_id}`);
      names.set(key, status === 200 ? `${data.name}（${await institutionName(data.institution_id)}）` : "");
    }
    return names.get(key);
  };

  const draw = async () => {
    const r = await api("GET", `/visits?institution_id=${own.id}&to=${today()}`);
    if (r.status !== 200) return fill(p.lists, refused(r));
    const rows = await Promise.all(r.data.reverse().map(async (v) => ({
      attrs: { "data-visit": v.id },
      cells: [v.visit_date, await institutionName(v.village_id), await visitor(v),
        v.services.map((s) => t(`service.${s}`)).join("、"), v.notes ?? ""],
    })));
    fill(p.lists, h("p", { class: "muted" }, t("activities.visits_about")),
      table({ id: "visits-list", rows, empty: t("activities.no_visits"),
        columns: ["activities.visit_date", "activities.village", "activities.visitor", "activities.services", "activities.notes"].map((k) => t(k)) }));
  };

  p.button.addEventListener("click", () => p.show(form({
    id: "visit-form",
    intro: h("h3", {}, t("activities.visits_new")),
    fields: [
      { name: "village_id", label: t("activities.village"), type: "select", required: true,
        options: (villages.data ?? []).map((v) => [v.id, v.name]) },
      { name: "visit_date", label: t("activities.visit_date"), type: "date", required: true, value: today(),
        max: today(), check: (v) => (v > today() ? "activities.visit_to_come" : null) },
      { name: "visitor", label: t("activities.visitor"), type: "select", required: true, options: visitors },
      { name: "services", label: t("activities.services"), type: "checks", required: true, wide: true,
        options: SERVICES.map((s) => [s, t(`service.${s}`)]) },
      { name: "notes", label: t("activities.notes"), type: "textarea", wide: true, hint: t("activities.notes_hint") },
    ],
    submitLabel: t("activities.record"),
    submit: async (v) => {
      const [kind, id] = v.visitor.split(":");
      const answer = await api("POST", "/visits", {
        village_id: Number(v.village_id), visit_date: v.visit_date,
        team_id: kind === "team" ? Number(id) : null, clinician_id: kind === "clinician" ? Number(id) : null,
        services: v.services, notes: v.notes,
      });
      return blaming(blaming(answer, "team_id", "visitor"), "clinician_id", "visitor");
    },
    done: async (v) => p.did(t("activities.visit_recorded", { village: await institutionName(v.village_id), day: v.visit_date }), draw),
    cancel: () => p.close(),
  })));
  await draw();
  return p.section;
}

// ---- the section ----------------------------------------------------------------------

export default async function render(root, { me, query }) {
  if (!me.roles.includes("admin") && !me.roles.includes("coordinator")) {
    return fill(root, h("p", { class: "problem" }, t("error.forbidden")));
  }
  const body = h("div", { id: "activities" });
  // Only the institution picked last is drawn, should an earlier one still be loading.
  let asked = 0;
  const show = async (institution) => {
    const mine = ++asked;
    const id = institution.id;
    body.removeAttribute("data-institution");
    fill(body, h("p", { class: "muted" }, t("common.loading")));
    const [clinicians, teams] = await Promise.all([
      api("GET", `/clinicians?institution_id=${id}&limit=1000`),
      api("GET", `/teams?institution_id=${id}`),
    ]);
    if (mine !== asked) return;
    for (const answer of [clinicians, teams]) {
      if (answer.status !== 200) return fill(body, refused(answer));
    }
    const ctx = { institution, clinicians: clinicians.data, teams: teams.data };
    const parts = [];
    for (const draw of [teachingPart, roundsPart, visitsPart]) {
      parts.push(await draw(ctx));
      if (mine !== asked) return;
    }
    fill(body, parts);
    body.dataset.institution = String(id);
  };
  fill(root, institutionPicker({ me, query, onPick: show }), body);
}
