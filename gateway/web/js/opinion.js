// The consultant's opinion, for any page that shows a request (the request page, the
// viewer's read, the video room): write it, save the draft, sign it and amend it. Signing
// asks for the password again in a dialog that shows the signer block as it will be
// kept; a wrong password is said beside the field and the dialog stays open. The signed
// versions are shown with their signer (name, title, institution, time in China).
import { t } from "./i18n.js";
import { api, problemText } from "./api.js";
import { h, fill, field } from "./dom.js";
import { institutionName } from "./requests.js";

/** Who signed and when, as a document shows it. */
export function signerBlock(signer, signedLocal, attrs = {}) {
  if (!signer) return null;
  return h("p", { class: "signer", ...attrs },
    h("span", { class: "signer-label" }, t("opinion.signed_by")), " ",
    h("strong", { class: "signer-name" }, signer.name), " ",
    h("span", { class: "signer-title" }, signer.title), " · ",
    h("span", { class: "signer-institution" }, signer.institution),
    signedLocal ? [" · ", h("span", { class: "signer-time" }, t("opinion.signed_local", { at: signedLocal }))] : null);
}

/** A signed version: its heading, text and signer. */
export function signedVersion(o, heading) {
  return h("article", { class: "opinion-version", "data-version": o.version },
    h("h3", {}, heading),
    h("p", { class: "opinion" }, o.body),
    signerBlock(o.signer, o.signed_local));
}

/** The caller as a signer: their clinician record's name and title, and institution. */
async function meAsSigner(me) {
  const institution = await institutionName(me.institution_id);
  if (me.clinician_id === null) return { name: me.display_name, title: "", institution };
  const { status, data } = await api("GET", `/clinicians/${me.clinician_id}`);
  return status === 200
    ? { name: data.name, title: data.title, institution }
    : { name: me.display_name, title: "", institution };
}

/**
 * The editor of request `id`'s opinion for its consultant `me`: `draft` (the draft
 * version, if any), `amending` (whether a signed version exists), the element ids the
 * page uses (`ids.body`, `ids.save`, `ids.sign`), the heading and the sign button's
 * label, and `onChange`, called after a draft is saved or the opinion signed.
 */
export function opinionEditor(id, { me, draft, amending, ids = {}, heading, signLabel, onChange }) {
  const body = h("textarea", { name: "body", id: ids.body ?? "opinion-body", rows: 8 }, draft?.body ?? "");
  const note = h("p", { class: "problem", role: "alert" });
  const save = async () => {
    fill(note);
    const { status, data } = await api("PUT", `/requests/${id}/opinions`, { body: body.value });
    if (status !== 200) fill(note, problemText(status, data));
    return status === 200;
  };
  const dialog = signDialog(id, me, async () => { await onChange?.(); });
  return h("div", { id: "opinion-editor" },
    heading ? h("h3", {}, heading) : null,
    body, note,
    h("div", { class: "actions" },
      h("button", { type: "button", id: ids.save ?? "save-opinion", onclick: async () => { if (await save()) await onChange?.(); } }, t("opinion.save")),
      h("button", { type: "button", class: "primary", id: ids.sign ?? "sign", onclick: async () => {
        if (await save()) await dialog.open();
      } }, signLabel ?? t("step.sign"))),
    dialog.element);
}

/** The dialog that signs: the signer block to be kept, the password, confirm, cancel. */
function signDialog(id, me, signed) {
  const password = h("input", { type: "password", name: "password", id: "sign-password", autocomplete: "current-password", required: true });
  const passwordField = field(t("opinion.sign_password"), password, t("opinion.sign_password_hint"));
  const error = passwordField.querySelector("small.error");
  error.id = "sign-password-error";
  const preview = h("div", { id: "sign-preview" });
  const problem = h("p", { class: "problem", role: "alert", id: "sign-problem" });
  const confirm = h("button", { type: "submit", class: "primary", id: "sign-confirm" }, t("opinion.sign_confirm_button"));
  const cancel = h("button", { type: "button", id: "sign-cancel", onclick: () => element.close() }, t("common.cancel"));
  const form = h("form", { method: "dialog" },
    h("h2", {}, t("opinion.sign_title")),
    h("p", {}, t("opinion.sign_confirm")),
    preview, passwordField, problem,
    h("div", { class: "actions" }, confirm, cancel));
  const element = h("dialog", { id: "sign-dialog", "aria-labelledby": "sign-dialog-title" }, form);
  form.querySelector("h2").id = "sign-dialog-title";
  const clear = () => {
    fill(error);
    fill(problem);
    password.removeAttribute("aria-invalid");
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    clear();
    confirm.disabled = true;
    const { status, data } = await api("POST", `/requests/${id}/sign`, { password: password.value });
    confirm.disabled = false;
    if (status === 200) {
      password.value = "";
      element.close();
      await signed();
      return;
    }
    if (data?.field === "password" || status === 429) {
      // Said beside the field; the dialog stays open for another try.
      fill(error, status === 429 ? problemText(status, data) : (password.value ? t("opinion.sign_wrong_password") : t("opinion.sign_password_missing")));
      password.setAttribute("aria-invalid", "true");
      password.select();
      password.focus();
      return;
    }
    fill(problem, problemText(status, data));
  });
  element.addEventListener("close", () => { password.value = ""; clear(); });
  return {
    element,
    async open() {
      clear();
      fill(preview, h("p", { class: "muted" }, t("opinion.sign_as")),
        signerBlock(await meAsSigner(me), null, { id: "sign-signer" }));
      element.showModal();
      password.focus();
    },
  };
}
