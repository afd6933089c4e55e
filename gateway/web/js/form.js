// The forms of the management pages. A form is described by its fields; it checks them
// all in the page before sending, shows every error at once beside its field in the
// page's language, and when the server refuses, shows the refusal beside the field it
// names (or above the button) and keeps everything that was typed.
import { t, has } from "./i18n.js";
import { h, fill } from "./dom.js";
import { rule } from "./api.js";

/**
 * A field:
 *   name      the key of its value (and of the server's `field` that blames it)
 *   label     its label, already translated
 *   type      text (default), password, number, date, time, datetime-local, textarea,
 *             select, checkbox, checks (several boxes, the value is the list of ticked)
 *   options   for select and checks: [[value, text], …]
 *   value     the initial value
 *   required, min, max, minLength, step, placeholder, hint (text), autocomplete
 *   check(value, values)  a further check: the catalogue key of its error, or null
 *   lookup(text, values)  for type "lookup": a name typed is looked up as it is typed,
 *             resolving to `[[id, text], …]`; the value is the id of the entry chosen
 *             (`value` and `text` set the initial one)
 */
function control(f, prefix) {
  const common = { name: f.name, id: `${prefix}-${f.name}` };
  switch (f.type) {
    case "textarea":
      return h("textarea", { ...common }, f.value ?? "");
    case "select": {
      const select = h("select", { ...common },
        f.required ? null : h("option", { value: "" }, f.placeholder ?? "—"),
        (f.options ?? []).map(([value, text]) => h("option", { value }, text)));
      if (f.value !== undefined && f.value !== null) select.value = String(f.value);
      return select;
    }
    case "checkbox":
      return h("input", { ...common, type: "checkbox", checked: Boolean(f.value) });
    case "lookup":
      return lookupControl(f, common);
    case "checks": {
      const ticked = new Set((f.value ?? []).map(String));
      return h("div", { class: "checks", id: common.id, "data-name": f.name, role: "group" },
        (f.options ?? []).map(([value, text]) => h("label", { class: "check inline" },
          h("input", { type: "checkbox", value, checked: ticked.has(String(value)) }), text)));
    }
    default:
      return h("input", {
        ...common,
        type: f.type ?? "text",
        value: f.value ?? null,
        min: f.min ?? null,
        max: f.max ?? null,
        step: f.step ?? null,
        placeholder: f.placeholder ?? null,
        autocomplete: f.autocomplete ?? (f.type === "password" ? "new-password" : null),
      });
  }
}

/** A text box that offers the entries `f.lookup` finds for what is typed. */
function lookupControl(f, common) {
  const list = h("datalist", { id: `${common.id}-list` });
  const input = h("input", { ...common, type: "search", list: list.id, autocomplete: "off", value: f.text ?? null, placeholder: f.placeholder ?? null });
  const ids = new Map(f.text && f.value ? [[f.text, f.value]] : []);
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const found = await f.lookup(input.value.trim(), input.form?.values?.() ?? {});
      for (const [id, text] of found) ids.set(text, id);
      fill(list, found.map(([, text]) => h("option", { value: text })));
    }, 200);
  });
  input.resolve = () => (input.value.trim() === "" ? null : ids.get(input.value) ?? Number.NaN);
  const wrap = h("span", { class: "lookup" }, input, list);
  wrap.input = input;
  return wrap;
}

/** The value of a field's control: trimmed text or null, a number, a bool, a list. */
function read(f, el) {
  switch (f.type) {
    case "checkbox":
      return el.checked;
    case "checks":
      return [...el.querySelectorAll("input:checked")].map((i) => i.value);
    case "number":
      return el.value.trim() === "" ? null : Number(el.value);
    case "lookup":
      return el.input.resolve();
    case "password":
      return el.value === "" ? null : el.value;
    default: {
      const v = el.value.trim();
      return v === "" ? null : v;
    }
  }
}

/** The catalogue key of what is wrong with `value`, or null. */
function invalid(f, value, values) {
  const empty = value === null || (Array.isArray(value) && value.length === 0);
  if (empty) return f.required ? "form.required" : null;
  if (f.type === "number" && Number.isNaN(value)) return "form.number";
  if (f.type === "lookup" && Number.isNaN(value)) return "form.pick";
  if (f.min !== undefined && f.type === "number" && value < f.min) return "form.too_small";
  if (f.max !== undefined && f.type === "number" && value > f.max) return "form.too_large";
  if (f.minLength !== undefined && String(value).length < f.minLength) return "form.too_short";
  return f.check ? f.check(value, values) : null;
}

/** The sentence for a refusal the server sent about one field or the whole form. */
function refusal(status, problem) {
  const r = rule(problem);
  if (r && r !== "invalid-field" && r !== "conflict" && has(`rule.${r}`)) return t(`rule.${r}`);
  if (status === 409) return t("form.conflict");
  if (status === 403) return t("error.forbidden");
  if (status === 0) return t("error.network");
  // The server says its problems in the page's language (`api()` asks for it).
  if (status === 422) return problem?.detail || t("form.invalid");
  return problem?.detail || t("error.generic", { status });
}

/**
 * A form. `submit(values)` sends it and returns `{status, data}` as `api()` does;
 * `done(data, values)` runs after a 2xx; `cancel` closes it, by a button saying
 * `cancelLabel` (“Cancel” unless given). The element returned has `.values()`.
 */
export function form({ id, fields, submitLabel, submit, done, cancel, cancelLabel, intro }) {
  const controls = new Map();
  const errors = new Map();
  const rows = fields.map((f) => {
    if (f.type === "heading") return h("h3", {}, f.label);
    const el = control(f, id ?? "f");
    controls.set(f.name, el);
    const error = h("small", { class: "error", "data-error-for": f.name, id: `${id ?? "f"}-${f.name}-error`, role: "alert" });
    errors.set(f.name, error);
    const focusable = el.input ?? el;
    focusable.setAttribute("aria-describedby", error.id);
    if (f.type === "checkbox") {
      return h("div", { class: `field${f.wide ? " wide" : ""}`, "data-field": f.name }, h("label", { class: "check" }, el, f.label),
        f.hint ? h("small", { class: "hint" }, f.hint) : null, error);
    }
    const label = f.type === "checks"
      ? h("span", { class: "label", id: `${id ?? "f"}-${f.name}-label` }, f.label, f.required ? " *" : "")
      : h("label", { for: focusable.id }, f.label, f.required ? " *" : "");
    if (f.type === "checks") el.setAttribute("aria-labelledby", `${id ?? "f"}-${f.name}-label`);
    return h("div", { class: `field${f.wide ? " wide" : ""}`, "data-field": f.name }, label, el,
      f.hint ? h("small", { class: "hint" }, f.hint) : null, error);
  });
  const problem = h("p", { class: "problem", role: "alert", "data-form-problem": "" });
  const button = h("button", { type: "submit", class: "primary" }, submitLabel ?? t("common.save"));
  const el = h("form", { id, class: "form card", novalidate: true },
    intro ?? null,
    h("div", { class: "form-grid" }, rows),
    problem,
    h("div", { class: "actions" }, button,
      cancel ? h("button", { type: "button", onclick: cancel }, cancelLabel ?? t("common.cancel")) : null));

  const values = () => Object.fromEntries(fields.filter((f) => f.type !== "heading")
    .map((f) => [f.name, read(f, controls.get(f.name))]));
  el.values = values;

  const clear = () => {
    for (const e of errors.values()) { fill(e); e.removeAttribute("title"); }
    for (const c of controls.values()) (c.input ?? c).removeAttribute("aria-invalid");
    fill(problem);
  };
  const mark = (name, text, detail) => {
    const error = errors.get(name);
    if (!error) return false;
    fill(error, text);
    if (detail) error.title = detail;
    (controls.get(name).input ?? controls.get(name)).setAttribute("aria-invalid", "true");
    return true;
  };
  /** The field the server blamed: `supporter.id` blames `supporter` or `supporter.id`. */
  const blamed = (field) => {
    if (!field) return null;
    if (controls.has(field)) return field;
    const head = field.split(/[.[]/)[0];
    return controls.has(head) ? head : null;
  };

  el.addEventListener("submit", async (event) => {
    event.preventDefault();
    clear();
    const v = values();
    let bad = 0;
    for (const f of fields) {
      if (f.type === "heading") continue;
      const key = invalid(f, v[f.name], v);
      if (key) {
        bad += 1;
        mark(f.name, t(key, { min: f.min ?? f.minLength, max: f.max }));
      }
    }
    if (bad) {
      fill(problem, t("form.fix", { n: bad }));
      el.querySelector("[aria-invalid=true]")?.focus();
      return;
    }
    button.disabled = true;
    try {
      const { status, data } = await submit(v);
      if (status >= 200 && status < 300) {
        await done?.(data, v);
        return;
      }
      // Every field the server names is marked at once, each with what it says of it.
      const named = data?.errors?.length ? data.errors : [{ field: data?.field, detail: null }];
      let marked = 0;
      for (const e of named) {
        const field = blamed(e.field);
        const text = named.length > 1 && e.detail ? e.detail : refusal(status, data);
        if (field && mark(field, text, e.detail)) {
          if (!marked) (controls.get(field).input ?? controls.get(field)).focus?.();
          marked += 1;
        }
      }
      if (marked) {
        fill(problem, t("form.fix", { n: marked }));
      } else {
        fill(problem, refusal(status, data));
        if (data?.detail) problem.title = data.detail;
      }
    } finally {
      button.disabled = false;
    }
  });
  return el;
}

/** A table of rows `{attrs, cells}` under `columns` (app.js labels its cells for phones). */
export function table({ id, columns, rows, empty }) {
  if (!rows.length) return h("p", { class: "muted", id }, empty ?? t("common.none"));
  return h("div", { class: "scroll-x" }, h("table", { class: "stack", id },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows.map((row) => {
      const tr = h("tr", row.attrs ?? {});
      for (const cell of row.cells) tr.append(h("td", {}, cell));
      return tr;
    }))));
}

/** A short-lived note that something was done, for a status line. */
export function notice(el, text) {
  fill(el, text);
  el.classList.add("done");
}
