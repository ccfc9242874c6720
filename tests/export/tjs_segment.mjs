// Load an exported folder with transformers.js (Node) and run image-segmentation once per dtype.
// Usage: node tjs_segment.mjs EXPORT_DIR IMAGE.png fp32,fp16,q8  → prints JSON {dtype: {labels, width,
// height, labelMap (base64 uint8, pixel = class id)}} on stdout.
import path from 'node:path';
import { env, pipeline, RawImage } from '@huggingface/transformers';

const [dir, imagePath, dtypes] = process.argv.slice(2);
env.allowRemoteModels = false;
env.localModelPath = path.dirname(path.resolve(dir)) + '/';

const image = await RawImage.read(imagePath);
const out = {};
for (const dtype of dtypes.split(',')) {
  const segmenter = await pipeline('image-segmentation', path.basename(dir), { dtype, device: 'cpu' });
  const segments = await segmenter(image);
  const labelMap = new Uint8Array(image.width * image.height).fill(255);
  for (const seg of segments) {
    const id = Number(Object.entries(segmenter.model.config.id2label).find(([, v]) => v === seg.label)[0]);
    const m = seg.mask.data;
    for (let i = 0; i < m.length; ++i) if (m[i]) labelMap[i] = id;
  }
  out[dtype] = {
    labels: segments.map((s) => s.label),
    width: segments[0].mask.width,
    height: segments[0].mask.height,
    labelMap: Buffer.from(labelMap).toString('base64'),
  };
  await segmenter.dispose();
}
process.stdout.write(JSON.stringify(out));
