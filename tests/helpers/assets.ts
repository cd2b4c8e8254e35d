/**
 * Tiny real test files, built in code (nothing binary in the repository):
 *
 * - {@link png}: a valid PNG (8-bit grey, zlib-compressed rows, CRCs);
 * - {@link jpeg}: a valid baseline JPEG, 8×8 grey (one block, DC only, minimal
 *   Huffman tables), the kind of file Telegram stores a photo as;
 * - {@link pdf}: a one-page PDF with a text line in Helvetica, with a correct xref
 *   table, that pdf.js reads back;
 * - {@link oggOpus}: an Ogg Opus stream as Telegram's voice notes are: the `OpusHead`
 *   and `OpusTags` pages with real Ogg CRCs, and no audio packets (no encoder here;
 *   the fake transcription server reads the container, not the sound).
 */

const encoder = new TextEncoder();

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function u32be(n: number): Uint8Array {
  return new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

function u16be(n: number): Uint8Array {
  return new Uint8Array([(n >>> 8) & 255, n & 255]);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

async function zlib(data: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([data as BlobPart]).stream().pipeThrough(
    new CompressionStream("deflate"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** A valid `size`×`size` PNG, 8-bit greyscale, filled with `grey`. */
export async function png(size = 2, grey = 128): Promise<Uint8Array> {
  const chunk = (type: string, data: Uint8Array) => {
    const body = concat([encoder.encode(type), data]);
    return concat([u32be(data.length), body, u32be(crc32(body))]);
  };
  const ihdr = concat([u32be(size), u32be(size), new Uint8Array([8, 0, 0, 0, 0])]);
  // Each row: filter byte 0, then the pixels.
  const raw = new Uint8Array(size * (size + 1));
  for (let y = 0; y < size; y++) raw.fill(grey, y * (size + 1) + 1, (y + 1) * (size + 1));
  return concat([
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", await zlib(raw)),
    chunk("IEND", new Uint8Array()),
  ]);
}

/**
 * A valid baseline JPEG: 8×8 pixels of mid grey. One 8-bit component, quantization
 * all ones, one DC and one AC Huffman table with a single 1-bit code each (symbol 0:
 * DC difference 0, AC end of block), so the scan is the bits `00` padded with ones.
 */
export function jpeg(): Uint8Array {
  const segment = (marker: number, data: number[]) =>
    new Uint8Array([0xff, marker, ...u16be(data.length + 2), ...data]);
  const huffman = (tableClass: number) => [
    (tableClass << 4) | 0,
    1,
    ...new Array(15).fill(0),
    0,
  ];
  return concat([
    new Uint8Array([0xff, 0xd8]), // SOI
    segment(0xe0, [...encoder.encode("JFIF\0"), 1, 1, 0, 0, 1, 0, 1, 0, 0]), // APP0
    segment(0xdb, [0, ...new Array(64).fill(1)]), // DQT
    segment(0xc0, [8, ...u16be(8), ...u16be(8), 1, 1, 0x11, 0]), // SOF0: 8×8, 1 component
    segment(0xc4, huffman(0)), // DHT DC 0
    segment(0xc4, huffman(1)), // DHT AC 0
    segment(0xda, [1, 1, 0x00, 0, 63, 0]), // SOS
    new Uint8Array([0x3f]), // DC diff 0 ("0"), EOB ("0"), padded with ones
    new Uint8Array([0xff, 0xd9]), // EOI
  ]);
}

/** A one-page PDF that shows `text` (ASCII) in Helvetica. */
export function pdf(text: string): Uint8Array {
  const escaped = text.replace(/[\\()]/g, "\\$&");
  const stream = `BT /F1 18 Tf 20 100 Td (${escaped}) Tj ET`;
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents 4 0 R " +
    "/Resources << /Font << /F1 5 0 R >> >> >>",
    `<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
  ];
  let body = "%PDF-1.4\n";
  const offsets: number[] = [];
  objects.forEach((object, i) => {
    offsets.push(body.length);
    body += `${i + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xref = body.length;
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n` +
    offsets.map((o) => `${String(o).padStart(10, "0")} 00000 n \n`).join("") +
    `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return encoder.encode(body);
}

/** Ogg's CRC-32 (polynomial 0x04c11db7, not reflected). */
function oggCrc(bytes: Uint8Array): number {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 24;
    for (let k = 0; k < 8; k++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
  }
  return crc >>> 0;
}

function oggPage(sequence: number, headerType: number, packet: Uint8Array): Uint8Array {
  const header = new Uint8Array(27 + 1);
  header.set(encoder.encode("OggS"), 0);
  header[4] = 0; // version
  header[5] = headerType;
  // granule position 0 (bytes 6–13), serial number 0x1234 (14–17), sequence (18–21)
  new DataView(header.buffer).setUint32(14, 0x1234, true);
  new DataView(header.buffer).setUint32(18, sequence, true);
  header[26] = 1; // one segment
  header[27] = packet.length;
  const page = concat([header, packet]);
  new DataView(page.buffer).setUint32(22, oggCrc(page), true);
  return page;
}

/** An Ogg Opus stream's two header pages (mono, 48 kHz), without audio. */
export function oggOpus(): Uint8Array {
  const head = new Uint8Array(19);
  head.set(encoder.encode("OpusHead"), 0);
  const view = new DataView(head.buffer);
  head[8] = 1; // version
  head[9] = 1; // channels
  view.setUint16(10, 312, true); // pre-skip
  view.setUint32(12, 48000, true); // input sample rate
  const vendor = encoder.encode("test");
  const tags = concat([
    encoder.encode("OpusTags"),
    new Uint8Array(new Uint32Array([vendor.length]).buffer),
    vendor,
    new Uint8Array(4), // no comments
  ]);
  return concat([oggPage(0, 2, head), oggPage(1, 0, tags)]);
}
