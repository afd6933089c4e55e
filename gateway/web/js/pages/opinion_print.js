// The signed opinion as a page to print for the records: the request's facts, the case
// summary, every signed version with its signer, the signature block of the version in
// force and the document hash (the one the PDF prints); `?version=N` shows the document
// as of version N. A print button, and a link to the same document as a PDF. It needs no
// font on the server: the browser sets the text.
import { t, when } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill } from "../dom.js";
import { institutionName } from "../requests.js";
import { signerBlock } from "../opinion.js";

function facts(id, pairs) {
  return h("dl", { class: "facts", id },
    pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
      .flatMap(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)]));
}

export default async function render(root, { segments, query }) {
  const id = segments[1];
  if (!/^\d+$/.test(id ?? "")) {
    fill(root, h("p", { class: "problem", id: "refused" }, t("error.not_found")));
    return;
  }
  const [r, o] = await Promise.all([api("GET", `/requests/${id}`), api("GET", `/requests/${id}/opinions`)]);
  if (r.status !== 200 || o.status !== 200) {
    const failed = r.status !== 200 ? r : o;
    document.body.dataset.access = "refused";
    fill(root, h("h1", {}, t("request.title", { id })), h("p", { class: "problem", id: "refused" },
      failed.status === 403 ? t("request.no_access") : problemText(failed.status, failed.data)));
    return;
  }
  const req = r.data;
  const asked = Number(query.get("version"));
  const all = o.data.filter((x) => x.status === "signed").sort((a, b) => a.version - b.version);
  const shown = asked ? all.filter((x) => x.version <= asked) : all;
  const current = shown[shown.length - 1];
  const back = h("a", { href: `/requests/${id}`, class: "no-print" }, t("document.back"));
  if (!current) {
    fill(root, back, h("h1", {}, t(`document.title.${req.kind}`)), h("p", { class: "muted", id: "no-opinion" }, t("opinion.none")));
    return;
  }
  const c = req.content;
  const summary = c.case_summary ?? {};
  const patient = c.patient
    ? `${c.patient.name} · ${t(`sex.${c.patient.sex}`)} · ${c.patient.birth_date}`
    : null;
  fill(root,
    h("div", { class: "actions no-print" }, back,
      h("button", { type: "button", class: "primary", id: "print", onclick: () => window.print() }, t("document.print")),
      h("a", { class: "button", id: "pdf", href: `/api/v1/requests/${id}/opinions/${current.version}/pdf` }, t("document.pdf_version", { version: current.version }))),
    h("article", { class: "document", id: "opinion-document", "data-version": current.version },
      h("h1", {}, t(`document.title.${req.kind}`)),
      h("p", { class: "muted" }, t("document.number_version", { id: req.id, version: current.version })),
      h("h2", {}, t("document.facts")),
      facts("document-facts", [
        ["request.kind", t(`kind.${req.kind}`)],
        ["request.from", await institutionName(req.requester_institution_id)],
        ["request.to", await institutionName(req.supporter_institution_id)],
        ["document.patient", patient],
        ["request.created", when(req.created_at)],
        ["request.submitted", when(req.submitted_at)],
        ["request.scheduled", req.scheduled_start ? when(req.scheduled_start) : null],
        ["request.reason", c.reason],
        ["request.purpose", c.purpose],
        ["request.specialty", c.specialty],
      ]),
      h("h2", {}, t("new.summary")),
      facts("document-summary", [
        ["summary.chief_complaint", summary.chief_complaint],
        ["summary.history", summary.history],
        ["summary.findings", summary.findings],
        ["summary.question", summary.question],
      ]),
      h("h2", {}, t("opinion.title")),
      h("div", { id: "document-versions" }, shown.map((v) => {
        const amended = shown.find((x) => x.id === v.amends_id);
        return h("section", { class: "opinion-version", "data-version": v.version },
          h("h3", {}, t("opinion.earlier", { version: v.version }),
            amended ? [" ", h("span", { class: "muted" }, t("document.amends", { version: amended.version }))] : null),
          h("p", { class: "opinion" }, v.body),
          signerBlock(v.signer, v.signed_local));
      })),
      h("h2", {}, t("document.signature")),
      current.signer ? facts("signer-block", [
        ["document.signer", current.signer.name],
        ["document.signer_title", current.signer.title],
        ["document.signer_institution", current.signer.institution],
        ["document.signed_at", t("opinion.signed_local", { at: current.signed_local })],
      ]) : null,
      h("p", { class: "hash" }, h("span", {}, t("document.hash")), " ",
        h("code", { id: "document-hash" }, current.document_sha256)),
      h("p", { class: "muted small" }, t("document.hash_note"))));
  document.body.dataset.document = "ready";
}
