// Turn a user's file into RGBA pixels, with the same refusals as face_studio/images.py: empty, not an image,
// too large (checked from the header, before decoding: a 20000×20000 PNG must never be decoded), corrupt.

import { pngDamage } from './png.js';

const MB = 1e6;

// Read width/height from the first bytes of PNG, JPEG, GIF, WebP or BMP; null if none of these.
export function sniffSize(bytes) {
  const b = bytes;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ascii = (o, n) => String.fromCharCode(...b.subarray(o, o + n));
  if (b.length >= 24 && b[0] === 0x89 && ascii(1, 3) === 'PNG') {
    return { format: 'PNG', width: dv.getUint32(16), height: dv.getUint32(20) };
  }
  if (b.length >= 10 && ascii(0, 3) === 'GIF') {
    return { format: 'GIF', width: dv.getUint16(6, true), height: dv.getUint16(8, true) };
  }
  if (b.length >= 26 && ascii(0, 2) === 'BM') {
    return { format: 'BMP', width: Math.abs(dv.getInt32(18, true)), height: Math.abs(dv.getInt32(22, true)) };
  }
  if (b.length >= 30 && ascii(0, 4) === 'RIFF' && ascii(8, 4) === 'WEBP') {
    const chunk = ascii(12, 4);
    if (chunk === 'VP8X') {
      return { format: 'WebP', width: 1 + (b[24] | (b[25] << 8) | (b[26] << 16)),
        height: 1 + (b[27] | (b[28] << 8) | (b[29] << 16)) };
    }
    if (chunk === 'VP8L') {
      const bits = dv.getUint32(21, true);
      return { format: 'WebP', width: 1 + (bits & 0x3fff), height: 1 + ((bits >> 14) & 0x3fff) };
    }
    if (chunk === 'VP8 ') {
      return { format: 'WebP', width: dv.getUint16(26, true) & 0x3fff, height: dv.getUint16(28, true) & 0x3fff };
    }
    return { format: 'WebP', width: 0, height: 0 };
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    // Walk the JPEG markers to the first SOFn frame header.
    let o = 2;
    while (o + 9 < b.length) {
      if (b[o] !== 0xff) { o++; continue; }
      const marker = b[o + 1];
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0xff) {
        o += marker === 0xff ? 1 : 2;
        continue;
      }
      const len = dv.getUint16(o + 2);
      const isSOF = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isSOF) return { format: 'JPEG', width: dv.getUint16(o + 7), height: dv.getUint16(o + 5) };
      o += 2 + len;
    }
    return { format: 'JPEG', width: 0, height: 0 };
  }
  return null;
}

export class ImageInputError extends Error {}

/**
 * Check and decode `file` (a File/Blob). Resolves to {bitmap, rgba: Uint8ClampedArray, width, height, name}.
 * Rejects with ImageInputError whose message says what was wrong and what to do.
 */
export async function readImage(file, { maxPixels, maxSide }) {
  const name = file?.name ? `'${file.name}'` : 'the image';
  if (!file) throw new ImageInputError('No image was given: upload a PNG, JPEG or WebP file.');
  if (file.size === 0) throw new ImageInputError(`${name} is empty (0 bytes): upload a PNG, JPEG or WebP file.`);
  const head = new Uint8Array(await file.slice(0, 64 * 1024).arrayBuffer());
  const info = sniffSize(head);
  if (!info) {
    throw new ImageInputError(`${name} is not an image we can read (PNG, JPEG, WebP, GIF, BMP): check the file.`);
  }
  const { width: w, height: h } = info;
  if (w * h > maxPixels || Math.max(w, h) > maxSide) {
    throw new ImageInputError(`${name} is ${w}×${h} (${Math.round((w * h) / MB)} MP), over the limit of `
      + `${Math.round(maxPixels / MB)} MP and ${maxSide} px a side: downscale it first.`);
  }
  if (info.format === 'PNG') {
    // Browsers draw a damaged PNG as far as it goes; Pillow refuses it. Refuse it here too.
    const damage = pngDamage(new Uint8Array(await file.arrayBuffer()));
    if (damage) {
      throw new ImageInputError(`${name} looks like a PNG file but is corrupt or truncated (${damage}): `
        + 're-save or re-export it.');
    }
  }
  if (info.format === 'JPEG') {
    // Browsers show a cut JPEG with a grey bottom; Pillow refuses it. A whole JPEG ends with EOI (FF D9),
    // possibly followed by a little padding.
    const tail = new Uint8Array(await file.slice(Math.max(0, file.size - 1024)).arrayBuffer());
    const hasEnd = tail.some((v, i) => v === 0xff && tail[i + 1] === 0xd9);
    if (!hasEnd) {
      throw new ImageInputError(`${name} looks like a JPEG file but is corrupt or truncated (no end-of-image `
        + 'marker: file truncated): re-save or re-export it.');
    }
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (err) {
    throw new ImageInputError(`${name} looks like a ${info.format} file but is corrupt or truncated `
      + `(${err.message || err.name}): re-save or re-export it.`);
  }
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bitmap, 0, 0);
  const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  return { bitmap, rgba: data, width: bitmap.width, height: bitmap.height, name: file.name || 'image' };
}
