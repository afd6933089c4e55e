// The imaging set-up of one institution (`/manage/imaging?institution=<id>`): the DICOM
// nodes that may send studies for it, the destination studies it reads are forwarded to
// (with a C-ECHO connection test), and the forward queue with retry and cancel. An
// administrator picks any institution by name; a coordinator manages their own.
import { t, when } from "../../i18n.js";
import { api, problemText } from "../../api.js";
import { h, fill } from "../../dom.js";
import { form, table, notice } from "../../form.js";
import { institutionName, pageOf, pager } from "../../requests.js";
import { institutionPicker } from "./picker.js";

/** Forwards shown at once. */
const PAGE = 50;

/** The states a forward is filtered by, in the order it moves through them. */
const STATES = ["pending", "sending", "delivered", "failed", "cancelled"];

/** The catalogue key of what is wrong with an AE title (PS3.5 §6.2: at most 16
 * characters, no backslash or control characters), or null. */
function aeTitle(value) {
  if (value.length > 16) return "manage.imaging.ae_too_long";
  return /^[\x20-\x5b\x5d-\x7e]+$/.test(value) ? null : "manage.imaging.ae_bad";
}

/** Whether `value` looks like an IPv4 or IPv6 address (the server checks it exactly). */
function ipAddress(value) {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(value);
  if (v4) return v4.slice(1).every((n) => Number(n) <= 255);
  return value.includes(":") && /^[0-9a-fA-F:.]+$/.test(value);
}

/** An in-page question with two buttons, in place of `el`'s contents until answered. */
function confirmIn(el, { question, yes, no, id, onYes }) {
  const kept = [...el.childNodes];
  const back = () => fill(el, kept);
  fill(el, h("div", { class: "confirm", role: "alertdialog", id },
    h("p", {}, question),
    h("div", { class: "actions" },
      h("button", { type: "button", class: "danger confirm-yes", onclick: () => onYes(back) }, yes),
      h("button", { type: "button", class: "confirm-no", onclick: back }, no))));
  el.querySelector(".confirm-no").focus();
}

export default async function render(root, { me, query }) {
  const chosen = h("div", { id: "imaging-institution" });
  // The institution the address names opens on the queue page it names; another one
  // chosen later starts on its queue's first page, unfiltered.
  let arriving = true;
  const open = async (institution) => {
    const url = new URL(location.href);
    if (!arriving) {
      url.search = new URLSearchParams({ institution: String(institution.id) }).toString();
      history.replaceState(null, "", url);
    }
    arriving = false;
    await drawInstitution(chosen, institution, url.searchParams);
  };
  fill(root, institutionPicker({ me, query, onPick: open }), chosen);
}

async function drawInstitution(el, institution, query) {
  fill(el, h("h2", { id: "institution-name", "data-institution": institution.id },
    institution.name, " ", h("span", { class: "muted" }, t(`level.${institution.level}`))));
  const nodes = h("section", { class: "card", id: "nodes-card" });
  const destination = h("section", { class: "card", id: "destination-card" });
  const forwards = h("section", { class: "card", id: "forwards-card" });
  el.append(nodes, destination, forwards);
  await Promise.all([
    drawNodes(nodes, institution.id),
    drawDestination(destination, institution.id),
    drawForwards(forwards, institution.id, query),
  ]);
}

// ---- DICOM nodes ---------------------------------------------------------------------

async function drawNodes(el, id) {
  const status = h("p", { role: "status", id: "nodes-status" });
  const list = h("div");
  const editor = h("div");
  const base = `/institutions/${id}/dicom-nodes`;
  const fields = (node) => [
    { name: "ae_title", label: t("manage.imaging.ae_title"), required: true, value: node?.ae_title,
      hint: t("manage.imaging.ae_hint"), check: aeTitle },
    { name: "host", label: t("manage.imaging.node_host"), required: true, value: node?.host,
      hint: t("manage.imaging.node_host_hint"), check: (v) => (v === "*" || ipAddress(v) ? null : "manage.imaging.ip_bad") },
    { name: "description", label: t("manage.imaging.node_description"), value: node?.description, wide: true,
      placeholder: t("manage.imaging.node_description_example"), check: (v) => (v && v.length > 100 ? "manage.imaging.description_long" : null) },
  ];
  // An empty description clears the one the node had.
  const body = (v) => ({ ...v, description: v.description ?? "" });
  // A title taken by another node is refused as a conflict; it is the title's fault.
  const blamingTitle = (answer) => (answer.status === 409
    ? { ...answer, data: { ...answer.data, field: "ae_title" } } : answer);
  const adding = () => fill(editor, form({
    id: "node-form",
    fields: fields(null),
    submitLabel: t("manage.imaging.add_node"),
    submit: async (v) => blamingTitle(await api("POST", base, body(v))),
    done: async (node) => { await load(); adding(); notice(status, t("manage.imaging.node_added", { ae: node.ae_title })); },
  }));
  const editing = (node) => {
    fill(editor, form({
      id: "node-edit-form",
      intro: h("h3", {}, t("manage.imaging.edit_node", { ae: node.ae_title })),
      fields: fields(node),
      submit: async (v) => blamingTitle(await api("PATCH", `${base}/${node.id}`, body(v))),
      done: async (changed) => { await load(); adding(); notice(status, t("manage.imaging.node_changed", { ae: changed.ae_title })); },
      cancel: adding,
    }));
    editor.querySelector("input")?.focus();
  };
  const load = async () => {
    const { status: code, data } = await api("GET", base);
    if (code !== 200) return fill(list, h("p", { class: "problem" }, problemText(code, data)));
    fill(list, table({
      id: "dicom-nodes",
      empty: t("manage.imaging.no_nodes"),
      columns: [t("manage.imaging.ae_title"), t("manage.imaging.node_host"), t("manage.imaging.node_description"), ""],
      rows: data.map((node) => {
        const actions = h("div", { class: "actions" },
          h("button", { type: "button", class: "edit", onclick: () => editing(node) }, t("manage.imaging.edit")),
          h("button", { type: "button", class: "danger remove", onclick: () => confirmIn(actions, {
            id: "confirm-remove",
            question: t("manage.imaging.remove_node", { ae: node.ae_title }),
            yes: t("manage.imaging.confirm_remove"),
            no: t("common.cancel"),
            onYes: async (back) => {
              const answer = await api("DELETE", `${base}/${node.id}`);
              if (answer.status !== 204) { back(); return fill(status, h("span", { class: "problem" }, problemText(answer.status, answer.data))); }
              await load();
              adding();
              notice(status, t("manage.imaging.node_removed", { ae: node.ae_title }));
            },
          }) }, t("manage.imaging.remove")));
        return {
          attrs: { "data-node": node.id, "data-ae": node.ae_title },
          cells: [h("code", {}, node.ae_title), node.host === "*" ? t("manage.imaging.any_host") : node.host, node.description || "–", actions],
        };
      }),
    }));
  };
  fill(el, h("h3", {}, t("manage.imaging.nodes")),
    h("p", { class: "muted" }, t("manage.imaging.nodes_about")), list, status, editor);
  adding();
  await load();
}

// ---- the destination and its test ----------------------------------------------------

async function drawDestination(el, id) {
  const path = `/institutions/${id}/imaging-destination`;
  const saved = h("div", { id: "destination-saved" });
  const status = h("p", { role: "status", id: "destination-status" });
  const result = h("p", { role: "status", id: "echo-result", class: "echo-result" });
  const echo = h("button", { type: "button", id: "echo" }, t("manage.imaging.echo"));
  let current = null;
  const show = () => fill(saved, current
    ? [h("p", { class: "muted" }, t("manage.imaging.saved")), h("dl", { class: "facts" },
      h("dt", {}, t("manage.imaging.ae_title")), h("dd", {}, h("code", {}, current.ae_title)),
      h("dt", {}, t("manage.imaging.destination_host")), h("dd", {}, current.host),
      h("dt", {}, t("manage.imaging.port")), h("dd", {}, String(current.port)),
      h("dt", {}, t("manage.imaging.tls")), h("dd", {}, t(current.tls ? "common.yes" : "common.no")))]
    : h("p", { class: "muted", id: "destination-none" }, t("manage.imaging.destination_none")));
  const answer = await api("GET", path);
  if (answer.status === 200) current = answer.data;
  else if (answer.status !== 404) return fill(el, h("p", { class: "problem" }, problemText(answer.status, answer.data)));
  // The names differ from the node form's, which shares the page; the server's blame of
  // `ae_title`, `host`, `port` is put on these.
  const f = form({
    id: "destination-form",
    fields: [
      { name: "dest_ae_title", label: t("manage.imaging.ae_title"), required: true, value: current?.ae_title,
        hint: t("manage.imaging.ae_hint"), check: aeTitle },
      { name: "dest_host", label: t("manage.imaging.destination_host"), required: true, value: current?.host,
        check: (v) => (/\s/.test(v) || v.length > 253 ? "manage.imaging.host_bad" : null) },
      { name: "dest_port", label: t("manage.imaging.port"), type: "number", required: true, min: 1, max: 65535,
        value: current?.port ?? 104, hint: t("manage.imaging.port_hint") },
      { name: "dest_tls", label: t("manage.imaging.tls"), type: "checkbox", value: current?.tls ?? false },
    ],
    submitLabel: t("manage.imaging.save_destination"),
    submit: async (v) => {
      const sent = await api("PUT", path, { ae_title: v.dest_ae_title, host: v.dest_host, port: v.dest_port, tls: v.dest_tls });
      return sent.data?.field ? { ...sent, data: { ...sent.data, field: `dest_${sent.data.field}` } } : sent;
    },
    done: (d) => {
      current = d;
      show();
      fill(result);
      notice(status, t("manage.imaging.destination_saved"));
    },
  });
  echo.addEventListener("click", async () => {
    echo.disabled = true;
    result.className = "echo-result";
    fill(result, t("manage.imaging.echoing"));
    try {
      const { status: code, data } = await api("POST", `${path}/echo`);
      if (code !== 200) {
        result.classList.add("problem");
        return fill(result, problemText(code, data));
      }
      result.dataset.outcome = data.outcome;
      result.title = data.message;
      result.classList.add(data.ok ? "done" : "problem");
      fill(result, echoText(data, current));
    } finally {
      echo.disabled = false;
    }
  });
  show();
  fill(el, h("h3", {}, t("manage.imaging.destination")),
    h("p", { class: "muted" }, t("manage.imaging.destination_about")),
    saved, f, status,
    h("div", { class: "actions" }, echo),
    h("small", { class: "muted" }, t("manage.imaging.echo_hint")),
    result);
}

/** What an echo found, in the page's language. */
function echoText(report, destination) {
  const vars = {
    ae: destination?.ae_title ?? "", host: destination?.host ?? "", port: destination?.port ?? "",
    calling: report.calling_ae_title, ms: report.round_trip_ms,
  };
  const specific = report.reason && report.reason !== "other" ? `manage.imaging.echo.${report.outcome}.${report.reason}` : null;
  return t(specific ?? `manage.imaging.echo.${report.outcome}`, vars);
}

// ---- the forward queue ---------------------------------------------------------------

async function drawForwards(el, id, query) {
  const state = h("select", { id: "forward-state", "aria-label": t("manage.imaging.state") },
    h("option", { value: "" }, t("manage.imaging.any_state")),
    STATES.map((s) => h("option", { value: s }, t(`forward.state.${s}`))));
  state.value = STATES.includes(query.get("state")) ? query.get("state") : "";
  const refresh = h("button", { type: "button", id: "forwards-refresh" }, t("manage.imaging.refresh"));
  const status = h("p", { role: "status", id: "forwards-status" });
  const list = h("div");
  const page = pageOf(query, "page");
  let asked = 0;
  const load = async () => {
    const mine = ++asked;
    const q = new URLSearchParams({ institution_id: String(id), limit: String(PAGE + 1), offset: String((page - 1) * PAGE) });
    if (state.value) q.set("state", state.value);
    const { status: code, data } = await api("GET", `/forwards?${q}`);
    if (mine !== asked) return;
    if (code !== 200) return fill(list, h("p", { class: "problem" }, problemText(code, data)));
    const rows = await Promise.all(data.slice(0, PAGE).map((f) => forwardRow(f, status, load)));
    if (mine !== asked) return;
    fill(list, table({
      id: "forwards",
      empty: t("manage.imaging.no_forwards"),
      columns: ["state", "study", "route", "to", "attempts", "last_error", "time", null]
        .map((k) => (k ? t(`manage.imaging.${k}`) : "")),
      rows,
    }), pager("page", page, data.length > PAGE,
      { id: "forwards-previous", label: t("list.previous") }, { id: "forwards-next", label: t("list.next") }));
  };
  state.addEventListener("change", () => {
    const url = new URL(location.href);
    if (state.value) url.searchParams.set("state", state.value); else url.searchParams.delete("state");
    url.searchParams.delete("page");
    history.replaceState(null, "", url);
    fill(status);
    load();
  });
  refresh.addEventListener("click", () => { fill(status); load(); });
  fill(el, h("h3", {}, t("manage.imaging.forwards")),
    h("p", { class: "muted" }, t("manage.imaging.forwards_about")),
    h("div", { class: "toolbar" }, state, refresh), status, list);
  await load();
}

/** A forward's row, with Retry where the queue allows it (pending, failed, cancelled) and
 * Cancel (pending, failed, after a confirmation); `reload` draws the list again. */
async function forwardRow(f, status, reload) {
  const actions = h("div", { class: "actions" });
  /** Retries or cancels; false (with the refusal shown) when the server refuses. */
  const act = async (verb, done) => {
    const answer = await api("POST", `/forwards/${f.id}/${verb}`);
    if (answer.status !== 200) {
      fill(status, h("span", { class: "problem" }, problemText(answer.status, answer.data)));
      return false;
    }
    await reload();
    notice(status, t(done));
    return true;
  };
  if (["pending", "failed", "cancelled"].includes(f.state)) {
    actions.append(h("button", { type: "button", class: "retry", onclick: () => act("retry", "manage.imaging.retried") },
      t("manage.imaging.retry")));
  }
  if (["pending", "failed"].includes(f.state)) {
    actions.append(h("button", { type: "button", class: "danger cancel", onclick: () => confirmIn(actions, {
      id: "confirm-cancel",
      question: t("manage.imaging.cancel_forward"),
      yes: t("manage.imaging.confirm_cancel"),
      no: t("manage.imaging.keep"),
      onYes: async (back) => { if (!(await act("cancel", "manage.imaging.cancelled"))) back(); },
    }) }, t("manage.imaging.cancel")));
  }
  const time = f.state === "delivered" && f.delivered_at
    ? t("manage.imaging.delivered_at", { at: when(f.delivered_at) })
    : f.state === "pending" && f.attempts > 0
      ? t("manage.imaging.next_at", { at: when(f.next_attempt_at) })
      : t("manage.imaging.queued_at", { at: when(f.created_at) });
  const [from, to] = await Promise.all([
    institutionName(f.source_institution_id),
    f.destination_institution_id === null ? t("manage.imaging.unknown_institution") : institutionName(f.destination_institution_id),
  ]);
  return {
    attrs: { "data-forward": f.id, "data-state": f.state },
    cells: [
      h("span", { class: `badge forward-${f.state}` }, t(`forward.state.${f.state}`)),
      h("code", { class: "uid", title: t("manage.imaging.instance", { uid: f.sop_instance_uid }) }, f.study_instance_uid),
      `${from} → ${to}`,
      f.ae_title ? h("code", { class: "uid" }, `${f.ae_title}@${f.host}:${f.port}${f.tls ? " (TLS)" : ""}`) : "",
      String(f.attempts),
      f.last_error_kind ? h("span", { class: "forward-error", title: f.last_error ?? "" }, t(`forward.error.${f.last_error_kind}`)) : "",
      time,
      actions,
    ],
  };
}
