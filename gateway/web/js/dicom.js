// Reading a series from the gateway's DICOMweb for the viewer: QIDO-RS for the series,
// WADO-RS metadata for the image attributes, WADO-RS frames (multipart/related, each part
// in the stored transfer syntax) for the pixels, decoded here for the syntaxes a browser
// can decode without a codec library: uncompressed little and big endian, RLE lossless
// (PS3.5 Annex G) and 8-bit JPEG baseline (through the browser's own JPEG decoder).

const JSON_ACCEPT = { accept: "application/dicom+json" };
const FRAME_ACCEPT = { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' };

export const SYNTAX = {
  implicitLE: "1.2.840.10008.1.2",
  explicitLE: "1.2.840.10008.1.2.1",
  deflatedLE: "1.2.840.10008.1.2.1.99",
  explicitBE: "1.2.840.10008.1.2.2",
  rle: "1.2.840.10008.1.2.5",
  jpegBaseline: "1.2.840.10008.1.2.4.50",
};

/** The first value of attribute `tag` in a DICOM JSON object. */
export function value(obj, tag) {
  const v = obj?.[tag]?.Value?.[0];
  return v && typeof v === "object" && "Alphabetic" in v ? v.Alphabetic : v;
}

/** Every value of `tag`. */
export function values(obj, tag) {
  return obj?.[tag]?.Value ?? [];
}

async function json(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: JSON_ACCEPT });
  if (response.status === 204) return { status: 200, data: [] };
  return { status: response.status, data: response.ok ? await response.json() : await response.json().catch(() => null) };
}

/** A study's own attributes, the patient's among them (QIDO-RS, study level). */
export async function study(uid) {
  const { status, data } = await json(`/dicomweb/studies?StudyInstanceUID=${encodeURIComponent(uid)}`);
  return { status, data: status === 200 ? (data[0] ?? null) : data };
}

/** The series of a study (QIDO-RS). */
export function series(study) {
  return json(`/dicomweb/studies/${encodeURIComponent(study)}/series`);
}

/**
 * The images of a series in slice order: `{meta, frame}` for each frame of each instance
 * (a multi-frame instance gives as many images as it has frames).
 */
export async function images(study, seriesUid) {
  const { status, data } = await instances(study, seriesUid);
  if (status !== 200) return { status, data };
  const out = [];
  for (const meta of data) {
    const frames = Math.max(1, Number(value(meta, "00280008") ?? 1) || 1);
    for (let frame = 1; frame <= frames; frame++) out.push({ meta, frame });
  }
  return { status, data: out };
}

/** The instances of a series with their attributes, in slice order. */
export async function instances(study, seriesUid) {
  const { status, data } = await json(
    `/dicomweb/studies/${encodeURIComponent(study)}/series/${encodeURIComponent(seriesUid)}/metadata`);
  if (status !== 200) return { status, data };
  const z = (m) => Number(values(m, "00200032")[2] ?? NaN);
  const n = (m) => Number(value(m, "00200013") ?? 0);
  data.sort((a, b) => n(a) - n(b) || z(a) - z(b));
  return { status, data };
}

/** Splits a multipart/related body into its parts: `{type, bytes}` each. */
export function parts(buffer, contentType) {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType)?.[1];
  if (!boundary) throw new Error("no multipart boundary");
  const bytes = new Uint8Array(buffer);
  const enc = new TextEncoder();
  // A delimiter is CRLF "--" boundary (RFC 2046 §5.1.1); the first may open the body.
  const delimiter = enc.encode(`\r\n--${boundary}`);
  const find = (from, needle) => {
    outer: for (let i = from; i <= bytes.length - needle.length; i++) {
      for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
      return i;
    }
    return -1;
  };
  const crlf2 = enc.encode("\r\n\r\n");
  const out = [];
  // Where the delimiter before the next part starts; -2 when the body opens with it (no
  // CRLF before the first).
  let at = find(0, enc.encode(`--${boundary}`)) === 0 ? -2 : find(0, delimiter);
  while (at !== -1) {
    const headerStart = at + delimiter.length;
    if (bytes[headerStart] === 45 && bytes[headerStart + 1] === 45) break; // "--": the end
    const headerEnd = find(headerStart, crlf2);
    if (headerEnd < 0) break;
    const headers = new TextDecoder().decode(bytes.subarray(headerStart, headerEnd));
    const next = find(headerEnd + 4, delimiter);
    if (next < 0) break;
    const type = /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1] ?? "";
    out.push({ type, bytes: bytes.slice(headerEnd + 4, next) });
    at = next;
  }
  return out;
}

/** Frame `n` (from 1) of an instance: its transfer syntax and bytes (WADO-RS). */
export async function frame(instanceUrl, n = 1) {
  const response = await fetch(`${instanceUrl}/frames/${n}`, { credentials: "same-origin", headers: FRAME_ACCEPT });
  if (!response.ok) throw new Error(`frames: ${response.status}`);
  const [part] = parts(await response.arrayBuffer(), response.headers.get("content-type") ?? "");
  if (!part) throw new Error("frames: an empty answer");
  const ts = /transfer-syntax=([0-9.]+)/.exec(part.type)?.[1] ?? SYNTAX.explicitLE;
  return { ts, bytes: part.bytes };
}

/** PS3.5 G.3.1: an RLE frame (a header of 16 offsets, then PackBits segments), as the
 * interleaved bytes of one frame of `rows × columns × samples` samples of `bits` bits. */
export function decodeRle(bytes, rows, columns, samples, bits) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = view.getUint32(0, true);
  const pixels = rows * columns;
  const bytesPerSample = bits / 8;
  const out = new Uint8Array(pixels * samples * bytesPerSample);
  for (let s = 0; s < count; s++) {
    const start = view.getUint32(4 + 4 * s, true);
    const end = s + 1 < count ? view.getUint32(8 + 4 * s, true) : bytes.length;
    // Segments hold the most significant byte first; sample `sample`, byte `b` of it.
    const sample = Math.floor(s / bytesPerSample);
    const b = bytesPerSample - 1 - (s % bytesPerSample);
    let p = 0;
    let i = start;
    while (i < end && p < pixels) {
      const n = (bytes[i] << 24) >> 24; // signed
      i++;
      if (n >= 0) {
        for (let k = 0; k <= n && p < pixels; k++, p++) out[(p * samples + sample) * bytesPerSample + b] = bytes[i + k];
        i += n + 1;
      } else if (n !== -128) {
        const v = bytes[i++];
        for (let k = 0; k < 1 - n && p < pixels; k++, p++) out[(p * samples + sample) * bytesPerSample + b] = v;
      }
    }
  }
  return out;
}

/**
 * The frame as an image for display: `{kind: "gray", values: Float32Array (modality
 * values, after rescale), min, max}` or `{kind: "rgb", rgba: Uint8ClampedArray}`, or
 * `{kind: "unsupported", ts}` for syntaxes this viewer cannot decode.
 */
export async function decode(f, meta) {
  const rows = Number(value(meta, "00280010"));
  const columns = Number(value(meta, "00280011"));
  const bits = Number(value(meta, "00280100") ?? 16);
  const stored = Number(value(meta, "00280101") ?? bits);
  const high = Number(value(meta, "00280102") ?? stored - 1);
  const signed = Number(value(meta, "00280103") ?? 0) === 1;
  const samples = Number(value(meta, "00280002") ?? 1);
  const slope = Number(value(meta, "00281053") ?? 1);
  const intercept = Number(value(meta, "00281052") ?? 0);
  const photometric = String(value(meta, "00280004") ?? "MONOCHROME2");
  const planar = Number(value(meta, "00280006") ?? 0);
  const pixels = rows * columns;
  // What this viewer draws right; anything else is said to be not shown, never drawn wrong.
  const drawable = (photometric.startsWith("MONOCHROME") && samples === 1 && (bits === 8 || bits === 16))
    || (photometric === "RGB" && samples === 3 && bits === 8)
    || (f.ts === SYNTAX.jpegBaseline && bits === 8);
  if (!drawable) return { kind: "unsupported", ts: `${f.ts} ${photometric} ${bits}` };
  if (f.ts === SYNTAX.jpegBaseline) {
    const bitmap = await createImageBitmap(new Blob([f.bytes], { type: "image/jpeg" }));
    const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    const rgba = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
    if (samples === 3) return { kind: "rgb", rgba, rows: bitmap.height, columns: bitmap.width };
    const vals = new Float32Array(bitmap.width * bitmap.height);
    for (let p = 0; p < vals.length; p++) vals[p] = rgba[p * 4] * slope + intercept;
    return gray(vals, bitmap.height, bitmap.width, photometric);
  }
  let raw;
  let littleEndian = true;
  if (f.ts === SYNTAX.implicitLE || f.ts === SYNTAX.explicitLE || f.ts === SYNTAX.deflatedLE) {
    raw = f.bytes;
  } else if (f.ts === SYNTAX.explicitBE) {
    raw = f.bytes;
    littleEndian = false;
  } else if (f.ts === SYNTAX.rle) {
    // Decoded RLE is little endian by construction here.
    raw = decodeRle(f.bytes, rows, columns, samples, bits);
  } else {
    return { kind: "unsupported", ts: f.ts };
  }
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  if (samples === 3 && bits === 8) {
    const rgba = new Uint8ClampedArray(pixels * 4);
    for (let p = 0; p < pixels; p++) {
      for (let c = 0; c < 3; c++) {
        rgba[p * 4 + c] = planar === 1 && f.ts !== SYNTAX.rle ? raw[c * pixels + p] : raw[p * 3 + c];
      }
      rgba[p * 4 + 3] = 255;
    }
    return { kind: "rgb", rgba, rows, columns };
  }
  // PS3.5 8.1.1: the stored value is `stored` bits ending at bit `high`; the bits around
  // it are not the pixel's (overlays, or nothing), and a signed value extends its top bit.
  const shift = high + 1 - stored;
  const mask = stored >= 32 ? 0xffffffff : (1 << stored) - 1;
  const sign = 1 << (stored - 1);
  const vals = new Float32Array(pixels);
  for (let p = 0; p < pixels; p++) {
    let v = bits === 8 ? view.getUint8(p) : view.getUint16(p * 2, littleEndian);
    v = (v >> shift) & mask;
    if (signed && v & sign) v -= mask + 1;
    vals[p] = v * slope + intercept;
  }
  return gray(vals, rows, columns, photometric);
}

function gray(vals, rows, columns, photometric) {
  let min = Infinity;
  let max = -Infinity;
  for (const v of vals) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { kind: "gray", values: vals, min, max, rows, columns, inverted: photometric === "MONOCHROME1" };
}

/** PS3.3 C.11.2.1.2: the linear VOI function, to 0–255, into `rgba`. */
export function windowed(image, center, width, rgba) {
  const w = Math.max(width, 1);
  const low = center - 0.5 - (w - 1) / 2;
  const scale = 255 / Math.max(w - 1, 1);
  const { values: vals, inverted } = image;
  for (let p = 0; p < vals.length; p++) {
    let y = (vals[p] - low) * scale;
    y = y < 0 ? 0 : y > 255 ? 255 : y;
    if (inverted) y = 255 - y;
    rgba[p * 4] = rgba[p * 4 + 1] = rgba[p * 4 + 2] = y;
    rgba[p * 4 + 3] = 255;
  }
}
