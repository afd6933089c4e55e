// The viewer's DICOM decoding (gateway/web/js/dicom.js), function by function, in Node:
// multipart parts (RFC 2046), RLE (PS3.5 Annex G), stored bits and sign (PS3.5 8.1.1),
// the VOI window (PS3.3 C.11.2.1.2), and what it refuses to draw.
// Run: node --test tests/browser/dicom.test.mjs (tests/tests/e2e/pages.rs runs it).
import test from "node:test";
import assert from "node:assert/strict";
import { parts, decodeRle, decode, windowed, SYNTAX } from "../../gateway/web/js/dicom.js";

const enc = new TextEncoder();

test("multipart bodies give their parts, with or without a preamble", () => {
  const body = enc.encode("--b1\r\nContent-Type: application/octet-stream; transfer-syntax=1.2.840.10008.1.2.5\r\n\r\n\x01\r\n--b2\r\n\r\n--b1\r\nContent-Type: x\r\n\r\nZ\r\n--b1--\r\n");
  const p = parts(body.buffer, 'multipart/related; type="application/octet-stream"; boundary="b1"');
  assert.equal(p.length, 2);
  assert.match(p[0].type, /transfer-syntax=1\.2\.840\.10008\.1\.2\.5/);
  // A line that looks like another boundary inside a part stays in it.
  assert.deepEqual([...p[0].bytes], [...enc.encode("\x01\r\n--b2\r\n")]);
  assert.deepEqual([...p[1].bytes], [90]);
  const preamble = enc.encode("ignored\r\n--b1\r\nContent-Type: y\r\n\r\nQQ\r\n--b1--");
  assert.deepEqual(parts(preamble.buffer, "multipart/related; boundary=b1").map((x) => [x.type, [...x.bytes]]), [["y", [81, 81]]]);
  assert.throws(() => parts(body.buffer, "multipart/related"));
});

/** An RLE frame of the given segments (each already PackBits-coded). */
function rle(segments) {
  const header = new DataView(new ArrayBuffer(64));
  header.setUint32(0, segments.length, true);
  let offset = 64;
  segments.forEach((s, i) => {
    header.setUint32(4 + 4 * i, offset, true);
    offset += s.length;
  });
  const out = new Uint8Array(offset);
  out.set(new Uint8Array(header.buffer), 0);
  let at = 64;
  for (const s of segments) {
    out.set(s, at);
    at += s.length;
  }
  return out;
}

test("RLE: literal and repeated runs, most significant byte first", () => {
  // 2×2 pixels of 16 bits: values 0x0102, 0x0102, 0x0300, 0x0400.
  const high = Uint8Array.of(0xff, 0x01, 1, 0x03, 0x04); // run of 2 × 0x01, literal 0x03 0x04
  const low = Uint8Array.of(0x01, 0x02, 0x02, 0xff, 0x00); // literal 0x02 0x02, run of 2 × 0x00
  const bytes = decodeRle(rle([high, low]), 2, 2, 1, 16);
  const view = new DataView(bytes.buffer);
  assert.deepEqual([0, 1, 2, 3].map((p) => view.getUint16(p * 2, true)), [0x0102, 0x0102, 0x0300, 0x0400]);
});

const meta = (extra) => ({
  "00280010": { Value: [1] }, "00280011": { Value: [3] }, "00280002": { Value: [1] },
  "00280004": { Value: ["MONOCHROME2"] }, "00280100": { Value: [16] }, ...extra,
});

test("stored bits: high bits masked off, a signed value extended from its top bit", async () => {
  // 12 stored bits at bits 0–11, signed: 0x0FFF is −1, 0x0800 is −2048; 0xF001 has
  // bits above the stored ones set (an overlay), which are not the pixel's.
  const raw = new Uint8Array(new Uint16Array([0x0fff, 0x0800, 0xf001]).buffer);
  const image = await decode({ ts: SYNTAX.explicitLE, bytes: raw }, meta({
    "00280101": { Value: [12] }, "00280102": { Value: [11] }, "00280103": { Value: [1] },
    "00281052": { Value: ["-1024"] }, "00281053": { Value: ["1"] },
  }));
  assert.equal(image.kind, "gray");
  assert.deepEqual([...image.values], [-1 - 1024, -2048 - 1024, 1 - 1024]);
});

test("big endian data is read as such", async () => {
  const raw = Uint8Array.of(0x01, 0x02, 0x00, 0x10, 0xff, 0xff);
  const image = await decode({ ts: SYNTAX.explicitBE, bytes: raw }, meta({}));
  assert.deepEqual([...image.values], [0x0102, 0x0010, 0xffff]);
});

test("the window maps level ± width/2 onto black to white, inverted for MONOCHROME1", () => {
  const image = { values: Float32Array.of(-1000, 40, 1000), inverted: false };
  const rgba = new Uint8ClampedArray(12);
  windowed(image, 40, 400, rgba);
  assert.deepEqual([rgba[0], rgba[4], rgba[8]], [0, 128, 255]);
  windowed({ ...image, inverted: true }, 40, 400, rgba);
  assert.deepEqual([rgba[0], rgba[4], rgba[8]], [255, 127, 0]);
});

test("what the viewer cannot draw right it says so, and draws nothing", async () => {
  for (const extra of [
    { "00280004": { Value: ["YBR_FULL_422"] }, "00280002": { Value: [3] }, "00280100": { Value: [8] } },
    { "00280004": { Value: ["PALETTE COLOR"] } },
    { "00280100": { Value: [32] } },
  ]) {
    const image = await decode({ ts: SYNTAX.explicitLE, bytes: new Uint8Array(12) }, meta(extra));
    assert.equal(image.kind, "unsupported", JSON.stringify(extra));
  }
  const jpegLs = await decode({ ts: "1.2.840.10008.1.2.4.80", bytes: new Uint8Array(4) }, meta({}));
  assert.equal(jpegLs.kind, "unsupported");
});
