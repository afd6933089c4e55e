// The radiologist's viewer: one study from the gateway's own DICOMweb, a series at a
// time; scroll through it (wheel, arrow keys, the slider), set window and level (drag on
// the image, or a preset), and write and sign the read beside it when the caller is the
// read request's consultant (opinion.js, as on the request page). Beside the read, the
// patient the request names and the one the study's DICOM attributes name, marked when
// they differ.
import { t, when } from "../i18n.js";
import { api, problemText } from "../api.js";
import { h, fill } from "../dom.js";
import * as dicom from "../dicom.js";
import { opinionEditor, signedVersion } from "../opinion.js";

const PRESETS = [["default", null, null], ["brain", 40, 80], ["lung", -600, 1500], ["bone", 400, 1800], ["abdomen", 40, 400]];

export default async function render(root, { me, segments, query }) {
  const study = segments[1];
  const { status, data: seriesList } = await dicom.series(study);
  if (status !== 200) {
    fill(root, h("h1", {}, t("viewer.title")), h("p", { class: "problem", id: "refused" },
      status === 403 ? t("viewer.no_access") : problemText(status, seriesList)));
    return;
  }
  const canvas = h("canvas", { id: "image", tabindex: "0", "aria-label": t("viewer.image") });
  const slider = h("input", { type: "range", id: "slice", min: 1, max: 1, value: 1, "aria-label": t("viewer.slice") });
  const sliceLabel = h("span", { id: "slice-label" });
  const wlLabel = h("span", { id: "wl-label" });
  const preset = h("select", { id: "wl-preset", "aria-label": t("viewer.preset") },
    PRESETS.map(([name]) => h("option", { value: name }, t(`viewer.preset.${name}`))));
  const note = h("p", { class: "problem", role: "alert", id: "viewer-problem" });
  const heading = h("h1", {}, t("viewer.title"));
  const info = h("p", { class: "muted", id: "study-info" });
  const seriesButtons = h("div", { class: "series-list", id: "series" });
  const report = h("aside", { class: "card report", id: "report" });

  // `list`: the series' images, `{meta, frame}`; `images`: decoded ones by index, for the
  // series `generation` names (a late answer for an earlier series is dropped).
  const state = { list: [], images: new Map(), index: 0, center: 40, width: 400, auto: true, seriesUid: null, generation: 0 };
  const ctx = canvas.getContext("2d");

  const draw = () => {
    const meta = state.list[state.index]?.meta;
    if (!meta) return;
    fill(sliceLabel, t("viewer.slice_of", { n: state.index + 1, total: state.list.length }));
    slider.value = String(state.index + 1);
    const image = state.images.get(state.index);
    if (!image || image instanceof Promise) return;
    if (image.kind === "unsupported") {
      fill(note, t("viewer.unsupported", { ts: image.ts }));
      return;
    }
    fill(note);
    if (canvas.width !== image.columns || canvas.height !== image.rows) {
      canvas.width = image.columns;
      canvas.height = image.rows;
    }
    const out = ctx.createImageData(image.columns, image.rows);
    if (image.kind === "rgb") out.data.set(image.rgba);
    else dicom.windowed(image, state.center, state.width, out.data);
    ctx.putImageData(out, 0, 0);
    canvas.dataset.slice = String(state.index + 1);
    canvas.dataset.instance = dicom.value(meta, "00080018") ?? "";
    canvas.dataset.frame = String(state.list[state.index].frame);
    fill(wlLabel, image.kind === "gray" ? t("viewer.wl", { c: Math.round(state.center), w: Math.round(state.width) }) : "");
  };

  const load = (i) => {
    if (state.images.has(i)) return state.images.get(i);
    const { meta, frame } = state.list[i];
    const generation = state.generation;
    const images = state.images;
    const url = dicom.value(meta, "00081190") ?? instanceUrl(study, state.seriesUid, dicom.value(meta, "00080018"));
    const pending = dicom.frame(url, frame).then((f) => dicom.decode(f, meta)).then((image) => {
      if (generation !== state.generation) return image;
      images.set(i, image);
      if (i === state.index) {
        if (state.auto && image.kind === "gray") defaultWindow(image, meta);
        draw();
      }
      return image;
    }).catch((e) => {
      if (generation !== state.generation) return;
      images.delete(i);
      if (i === state.index) fill(note, t("viewer.load_failed"));
      console.error(e);
    });
    state.images.set(i, pending);
    return pending;
  };

  const defaultWindow = (image, meta) => {
    const c = Number(dicom.value(meta, "00281050"));
    const w = Number(dicom.value(meta, "00281051"));
    if (Number.isFinite(c) && Number.isFinite(w) && w > 0) {
      state.center = c;
      state.width = w;
    } else {
      state.center = (image.max + image.min) / 2;
      state.width = Math.max(image.max - image.min, 1);
    }
    state.auto = false;
  };

  const go = (i) => {
    state.index = Math.min(Math.max(i, 0), state.list.length - 1);
    load(state.index);
    draw();
    // Keep the next few ready for smooth scrolling.
    for (let k = 1; k <= 4; k++) if (state.index + k < state.list.length) load(state.index + k);
  };

  const openSeries = async (uid) => {
    state.generation += 1;
    state.seriesUid = uid;
    state.images = new Map();
    state.auto = preset.value === "default";
    for (const b of seriesButtons.querySelectorAll("button")) b.classList.toggle("current", b.dataset.series === uid);
    const { status: s, data } = await dicom.images(study, uid);
    if (s !== 200) return fill(note, problemText(s, data));
    state.list = data;
    slider.max = String(Math.max(data.length, 1));
    const first = data[0]?.meta;
    fill(info, [
      String(dicom.value(first, "00100010") ?? "").replaceAll("^", " "),
      dicom.value(first, "00080020"),
      dicom.value(first, "00080060"),
      dicom.value(first, "00080050"),
      dicom.value(first, "0008103E"),
    ].filter(Boolean).join(" · "));
    canvas.dataset.series = uid;
    go(0);
    await load(0);
    document.body.dataset.viewer = "ready";
  };

  // Scrolling: wheel, keys, slider. Window and level: drag (horizontal width, vertical level).
  canvas.addEventListener("wheel", (e) => { e.preventDefault(); go(state.index + Math.sign(e.deltaY)); }, { passive: false });
  canvas.addEventListener("keydown", (e) => {
    if (e.key === "ArrowDown" || e.key === "ArrowRight" || e.key === "PageDown") { e.preventDefault(); go(state.index + 1); }
    if (e.key === "ArrowUp" || e.key === "ArrowLeft" || e.key === "PageUp") { e.preventDefault(); go(state.index - 1); }
    if (e.key === "Home") go(0);
    if (e.key === "End") go(state.list.length - 1);
  });
  slider.addEventListener("input", () => go(Number(slider.value) - 1));
  let drag = null;
  canvas.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY, c: state.center, w: state.width }; canvas.setPointerCapture(e.pointerId); });
  canvas.addEventListener("pointermove", (e) => {
    if (!drag) return;
    state.width = Math.max(1, drag.w + (e.clientX - drag.x) * 2);
    state.center = drag.c + (e.clientY - drag.y) * 2;
    draw();
  });
  canvas.addEventListener("pointerup", () => { drag = null; });
  preset.addEventListener("change", () => {
    const [, c, w] = PRESETS.find(([name]) => name === preset.value);
    if (c === null) {
      const image = state.images.get(state.index);
      if (image && !(image instanceof Promise) && image.kind === "gray") defaultWindow(image, state.list[state.index].meta);
    } else {
      state.center = c;
      state.width = w;
    }
    draw();
  });

  const usable = seriesList.filter((s) => dicom.value(s, "0020000E"));
  for (const s of usable) {
    const uid = dicom.value(s, "0020000E");
    seriesButtons.append(h("button", { type: "button", class: "series", "data-series": uid, onclick: () => openSeries(uid) },
      [dicom.value(s, "00080060"), dicom.value(s, "0008103E") || t("viewer.series_n", { n: dicom.value(s, "00200011") ?? "" }),
        t("viewer.images", { n: dicom.value(s, "00201209") ?? "?" })].filter(Boolean).join(" · ")));
  }

  fill(root,
    heading, info,
    h("div", { class: "viewer-layout" },
      h("section", { class: "viewer" },
        seriesButtons,
        h("div", { class: "viewport" }, canvas),
        h("div", { class: "viewer-controls" }, slider, sliceLabel, preset, wlLabel),
        h("p", { class: "muted" }, t("viewer.help")),
        note),
      report));
  const named = query.get("request");
  await reportPanel(report, study, me, /^\d+$/.test(named ?? "") ? Number(named) : null);
  if (!usable.length) return fill(note, t("viewer.empty"));
  // The series with the most images first: usually the one to read.
  const main = [...usable].sort((a, b) => Number(dicom.value(b, "00201209") ?? 0) - Number(dicom.value(a, "00201209") ?? 0))[0];
  await openSeries(dicom.value(main, "0020000E"));
  canvas.focus();
}

function instanceUrl(study, series, instance) {
  return `/dicomweb/studies/${encodeURIComponent(study)}/series/${encodeURIComponent(series)}/instances/${encodeURIComponent(instance)}`;
}

/** The read beside the images: the request that names the study, and for its consultant
 * the report to write and sign (booking's opinion: a signed read never changes). */
async function reportPanel(panel, study, me, given) {
  fill(panel, h("h2", {}, t("viewer.report")));
  // The request the page was opened from, else the one the worklist links to the study.
  let id = given;
  if (id === null) {
    const { status, data } = await api("GET", "/imaging/worklist");
    id = (status === 200 ? data.find((s) => s.study_instance_uid === study) : null)?.request_id ?? null;
  }
  if (id === null) {
    panel.append(h("p", { class: "muted" }, t("viewer.no_request")));
    return;
  }
  const [r, o] = await Promise.all([api("GET", `/requests/${id}`), api("GET", `/requests/${id}/opinions`)]);
  if (r.status !== 200) {
    panel.append(h("p", { class: "problem" }, problemText(r.status, r.data)));
    return;
  }
  const req = r.data;
  const opinions = o.status === 200 ? o.data : [];
  const signed = opinions.filter((x) => x.status !== "draft").sort((a, b) => b.version - a.version);
  panel.append(h("p", {}, h("a", { href: `/requests/${id}`, id: "read-request" }, t("request.title", { id })),
    " ", h("span", { class: "badge", "data-state": req.state }, t(`state.${req.state}`))));
  if (req.content?.case_summary?.question) panel.append(h("p", {}, h("strong", {}, t("summary.question")), " ", req.content.case_summary.question));
  panel.append(await patients(req, study));
  for (const s of signed) {
    panel.append(signedVersion(s, [t("opinion.earlier", { version: s.version }), " ",
      h("span", { class: "muted" }, t("opinion.signed_at", { at: when(s.signed_at) }))]));
  }
  if (signed.length) {
    panel.append(h("p", {}, h("a", { id: "read-print-view", href: `/requests/${id}/opinion` }, t("document.print_view"))));
  }
  const consultant = me.clinician_id !== null && me.clinician_id === req.consultant_id;
  const open = ["accepted", "scheduled", "in_session", "opinion_signed", "acknowledged"].includes(req.state);
  if (!consultant || !open) {
    if (!signed.length) panel.append(h("p", { class: "muted" }, consultant ? t("viewer.not_open") : t("viewer.not_yours")));
    return;
  }
  panel.append(opinionEditor(id, {
    me,
    draft: opinions.find((x) => x.status === "draft"),
    amending: signed.length > 0,
    ids: { body: "report-body", save: "save-report", sign: "sign-report" },
    heading: t(signed.length ? "opinion.amend" : "viewer.write"),
    signLabel: t("viewer.sign"),
    onChange: () => reportPanel(panel, study, me, id),
  }));
}

/** A DICOM person name as people write it: `WANG^MOU` → `WANG MOU`. */
function personName(pn) {
  return String(pn ?? "").split("=")[0].replaceAll("^", " ").trim();
}

/** The patient the request names beside the one the study names, each difference marked:
 * a read of the wrong patient's images is caught here, before it is signed. */
async function patients(req, study) {
  const { status, data } = await dicom.study(study);
  const asked = req.content?.patient ?? null;
  // A name in letters, and in characters where the modality wrote them (PS3.18 F.2.2).
  const pn = status === 200 && data ? data["00100010"]?.Value?.[0] ?? {} : {};
  const names = [pn.Alphabetic, pn.Ideographic].map(personName).filter(Boolean);
  const imaged = status === 200 && data ? { name: names.join(" / "), id: String(dicom.value(data, "00100020") ?? "") } : null;
  const same = (a, b) => a.replace(/\s+/g, "").toLowerCase() === b.replace(/\s+/g, "").toLowerCase();
  const nameDiffers = Boolean(asked && names.length && !names.some((n) => same(asked.name, n)));
  const idDiffers = Boolean(asked?.id_number && imaged?.id && !same(asked.id_number, imaged.id));
  const cell = (text, differs) => h("td", { class: differs ? "differs" : null }, text || "—",
    differs ? [" ", h("span", { class: "badge warn" }, t("viewer.patient_differs"))] : null);
  return h("table", { class: "patients", id: "patients", "data-differs": String(nameDiffers || idDiffers) },
    h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, t("patient.name")), h("th", {}, t("viewer.patient_id")))),
    h("tbody", {},
      h("tr", { id: "patient-request" }, h("th", {}, t("viewer.patient_request")),
        cell(asked?.name ?? "", false), cell(asked?.id_number ?? "", false)),
      h("tr", { id: "patient-study" }, h("th", {}, t("viewer.patient_study")),
        cell(imaged?.name ?? "", nameDiffers), cell(imaged?.id ?? "", idDiffers))));
}
