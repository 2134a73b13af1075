/**
 * What the viewer asks of WADO-RS frames (PS3.18 8.7.3): every lossless encoding the DICOM
 * image loader decodes, and the server picks the best it can produce (highest q; on equal q
 * a stored compressed frame as it lies, then HTJ2K, JPEG-LS, JPEG 2000, uncompressed).
 *
 * HTJ2K and the stored encoding share the top: a frame stored compressed (JPEG 2000, JPEG-LS,
 * RLE, a lossy original's JPEG) travels as stored, neither decoded on the server nor grown
 * into a lossless copy of lossy pixels; a frame stored uncompressed travels as HTJ2K (a real
 * 512² CT slice in about a quarter of its 512 kB; the fastest of the JPEG 2000 family to
 * decode). For an uncompressed frame `transfer-syntax=*` means uncompressed, which HTJ2K
 * beats on equal q. JPEG-LS and JPEG 2000 remain for servers without HTJ2K; uncompressed
 * comes last.
 *
 * The loader picks each frame's decoder from its part's Content-Type
 * (`transfer-syntax=` names the encoding of the bytes, whatever was asked).
 */

export const TRANSFER_SYNTAX = {
  htj2kLossless: "1.2.840.10008.1.2.4.201",
  jpegLsLossless: "1.2.840.10008.1.2.4.80",
  jpeg2000Lossless: "1.2.840.10008.1.2.4.90",
  explicitLittleEndian: "1.2.840.10008.1.2.1",
} as const;

const entry = (media: string, syntax: string, q: number) =>
  `multipart/related; type="${media}"; transfer-syntax=${syntax}; q=${q}`;

export const FRAME_ACCEPT = [
  entry("image/jphc", TRANSFER_SYNTAX.htj2kLossless, 1),
  entry("application/octet-stream", "*", 1),
  entry("image/jls", TRANSFER_SYNTAX.jpegLsLossless, 0.9),
  entry("image/jp2", TRANSFER_SYNTAX.jpeg2000Lossless, 0.8),
  entry("application/octet-stream", TRANSFER_SYNTAX.explicitLittleEndian, 0.5),
].join(", ");
