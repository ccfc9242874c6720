"""Generate view: SD3.5 text-to-image on the server, and its Gradio API.

API names: ``generate`` (images, seed used, parameters text; ``lora`` picks one of the LoRAs the operator
allowed, by name, for this request only), ``read_parameters`` (a PNG → the page's fields), ``cancel``. No
endpoint takes a server path. Every event that uses the GPU shares one queue slot
(``concurrency_id=GPU_CONCURRENCY_ID``, ``concurrency_limit=1``); ``webapp.app.setup_queue`` bounds the GPU
lane (``--max-queue``) apart from the parse lane, and Gradio shows waiting users their position.
"""

from __future__ import annotations

import html

import gradio as gr

from face_studio.errors import UserError
from webapp.errors import user_errors
from webapp.generation import presets as P
from webapp.generation.loras import NO_LORA
from webapp.generation.params import read_png_parameters
from webapp.generation.service import GenerationService, get_service
from webapp.serving.remote import remote_service as serving_service
from webapp.settings import ServeSettings

CUSTOM_ASPECT = "custom"


# ------------------------------------------------------------------------------------- pure helpers


def generate_caption(seed: int, width: int, height: int) -> str:
    return f"seed {seed} · {width}×{height}"


def generate_preset_defaults(preset: str) -> tuple[int, float]:
    """Steps and guidance a preset starts from (unknown names are left to the validator)."""
    spec = P.PRESETS.get(preset, P.PRESETS["Custom"])
    return spec.steps, spec.guidance


def generate_aspect_size(aspect: str, preset: str) -> tuple[int, int] | None:
    """Width × height for an aspect at the preset's native area (1 MP; Custom's small models: the same)."""
    return P.ASPECTS.get(aspect)


def generate_lora_choices(service: GenerationService) -> list[str]:
    """The LoRA dropdown: "(none)", then the allowed names (never their paths)."""
    return [NO_LORA, *service.lora_names]


# ------------------------------------------------------------------------------------------ handlers


def make_handlers(service: GenerationService):
    """The view's event handlers, bound to one service (returned as a namespace for tests and the CLI)."""

    @user_errors
    def generate(prompt: str, negative_prompt: str, preset: str, steps: float | None, guidance: float | None,
                 width: float, height: float, seed: float, num_images: float, max_sequence_length: int | str,
                 lora: str | None = NO_LORA, lora_scale: float | None = None, request: gr.Request | None = None,
                 progress: gr.Progress = gr.Progress()):  # noqa: B008 - Gradio's idiom
        """Text to image with SD3.5. Returns the images (PNGs carrying their parameters), the seed used
        (image i used seed + i, exactly as a run of that seed alone) and the parameters as AUTOMATIC1111-style
        text. seed -1 = random; steps / guidance left empty take the preset's values; lora: the name of a
        LoRA this server allows, or "(none)"; lora_scale empty: the server's scale for it."""
        key = (request.session_hash if request else None) or "anonymous"
        cancel = service.begin_job(key)
        try:
            if not service.owner.loaded and service.unavailable_reason is None:
                progress(0, desc="loading the model (first use)…")
            compiling = service.speed_status(width, height)  # --speed compile / fp8: the first run compiles
            if compiling:
                progress(0, desc=compiling)

            def on_step(done: int, total: int) -> None:
                progress((done, total), desc=f"denoising step {done}/{total}", unit="steps")

            result = service.generate_from_inputs(
                prompt=prompt, negative_prompt=negative_prompt, preset=preset, steps=steps, guidance=guidance,
                width=width, height=height, seed=seed, num_images=num_images,
                max_sequence_length=max_sequence_length, lora=lora, lora_scale=lora_scale, progress=on_step,
                cancel=cancel)
        finally:
            service.end_job(key, cancel)
        gallery = [(str(img.path), generate_caption(img.seed, img.parameters.width, img.parameters.height))
                   for img in result.images]
        return gallery, result.seed, result.parameters_text

    def cancel(request: gr.Request) -> None:
        """Stop this session's running generation at its next denoising step."""
        if service.cancel(request.session_hash or "anonymous"):
            gr.Info("Cancelling at the next step…")

    def add_to_session(images: list | None, session: list[str]) -> tuple[list, list[str]]:
        paths = [item[0] if isinstance(item, (list, tuple)) else item for item in images or []]
        session = [*paths, *session][:200]  # newest first; a long session keeps its last 200
        return session, session

    @user_errors
    def read_parameters(file: str | None):
        """Read the parameters stored in a PNG (ours, AUTOMATIC1111's or Forge's) into the fields: prompt,
        negative prompt, preset, steps, guidance, width, height, seed, T5 max sequence length."""
        if not file:
            raise UserError("no PNG given: drop a PNG made by face-studio, AUTOMATIC1111 or Forge.")
        found = read_png_parameters(file)
        preset = found.get("preset")
        values = [
            found.get("prompt", gr.skip()),
            found.get("negative_prompt", gr.skip()),
            preset if preset in P.PRESETS else gr.skip(),
            found.get("steps", gr.skip()),
            found.get("guidance", gr.skip()),
            found.get("width", gr.skip()),
            found.get("height", gr.skip()),
            found.get("seed", gr.skip()),
            found.get("max_sequence_length", gr.skip()),
        ]
        aspect = CUSTOM_ASPECT if "width" in found else gr.skip()
        return (*values, aspect)

    def status() -> str:
        return service.status_markdown()

    handlers = dict(generate=generate, cancel=cancel, add_to_session=add_to_session,
                    read_parameters=read_parameters, status=status)
    return type("GenerateHandlers", (), {k: staticmethod(v) for k, v in handlers.items()})


# ---------------------------------------------------------------------------------------------- layout

# Runs in the page: take the gallery's shown image (else the first), open the Edit tab, wait for its view
# (static/js/edit-view.js sets window.faceStudioEdit when mounted) and load the image there.
SEND_TO_EDIT_JS = """async () => {
  const gallery = document.querySelector('#generate-images');
  const img = gallery && (gallery.querySelector('.preview img') || gallery.querySelector('img'));
  const tab = [...document.querySelectorAll('button[role=tab]')].find((b) => b.textContent.trim() === 'Edit');
  if (tab) tab.click();
  for (let i = 0; i < 100 && !window.faceStudioEdit; i++) await new Promise((r) => setTimeout(r, 100));
  if (!window.faceStudioEdit) return;
  if (img) await window.faceStudioEdit.loadUrl(img.src, 'generated.png');
  else window.faceStudioEdit.fail('No generated image yet: generate one first, or choose a file here.');
}"""


def build(settings: ServeSettings) -> None:
    """Lay out the Generate tab inside the current Blocks."""
    service = serving_service(settings) if settings.ray else get_service(settings)  # --ray: replicas on Ray Serve
    # The PNGs are served from where they are saved, wherever --output-dir points (not only cwd / temp).
    gr.set_static_paths([service.output_dir])
    h = make_handlers(service)
    reason = service.unavailable_reason
    enabled = reason is None
    steps0, guidance0 = generate_preset_defaults(service.default_preset)

    if reason:
        gr.Markdown(f"**Generation is off on this server.** {html.escape(reason)}", elem_id="generate-unavailable")
    status = gr.Markdown(service.status_markdown(), elem_id="generate-status")
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label="Prompt", lines=3, placeholder="a portrait photo of …", interactive=enabled)
            negative = gr.Textbox(label="Negative prompt", lines=2, interactive=enabled)
            with gr.Row():
                preset = gr.Dropdown(list(P.PRESET_NAMES), value=service.default_preset, label="Model preset",
                                     allow_custom_value=True, interactive=enabled,
                                     info="sets steps, guidance, size range and skip-layer guidance")
                seq_len = gr.Dropdown(list(P.SEQ_LENGTHS), value=P.DEFAULT_SEQ_LENGTH, label="T5 max tokens",
                                      allow_custom_value=True, interactive=enabled)
            with gr.Row():
                steps = gr.Number(steps0, label=f"Steps ({P.MIN_STEPS}–{P.MAX_STEPS})", step=1, interactive=enabled)
                guidance = gr.Number(guidance0, label="Guidance (CFG)", step=0.1, interactive=enabled)
                num_images = gr.Number(1, label=f"Images per run (1–{P.MAX_IMAGES})", step=1, interactive=enabled)
            with gr.Row():
                aspect = gr.Dropdown([*P.ASPECTS, CUSTOM_ASPECT], value="1:1", label="Aspect", interactive=enabled)
                width = gr.Number(1024, label="Width", step=P.SIZE_MULTIPLE, interactive=enabled)
                height = gr.Number(1024, label="Height", step=P.SIZE_MULTIPLE, interactive=enabled)
            with gr.Row():
                # No precision=0: Gradio would int() the value before our check (NaN → a raw "Could not preprocess").
                seed = gr.Number(-1, label="Seed (-1 = random)", step=1, interactive=enabled)
                random_seed = gr.Button("🎲 Random", size="sm", interactive=enabled)
                reuse_seed = gr.Button("♻️ Reuse last", size="sm", interactive=enabled)
            with gr.Row():
                run = gr.Button("Generate", variant="primary", interactive=enabled, elem_id="generate-run")
                stop = gr.Button("Cancel", variant="stop", interactive=enabled)
            with gr.Accordion("Load parameters from a PNG", open=False):
                png = gr.File(label="Drop a PNG (face-studio, AUTOMATIC1111, Forge)", file_types=[".png"],
                              type="filepath", elem_id="generate-png")
            with gr.Row():
                # allow_custom_value: an unknown name gets our message (the names allowed), not Gradio's
                lora = gr.Dropdown(generate_lora_choices(service), value=NO_LORA, label="LoRA",
                                   allow_custom_value=True, interactive=enabled and bool(service.lora_names),
                                   elem_id="generate-lora",
                                   info="for this run only; the server's operator chooses which are offered"
                                   if service.lora_names else "none offered (serve --lora FILE / --lora-dir DIR)")
                lora_scale = gr.Number(None, label="LoRA scale (empty: the server's)", step=0.05,
                                       interactive=enabled and bool(service.lora_names))
        with gr.Column(scale=4):
            images = gr.Gallery(label="Images", format="png", columns=2, height=560, object_fit="contain",
                                elem_id="generate-images")
            to_edit = gr.Button("✎ Edit this image (pick regions to regenerate)", size="sm", elem_id="generate-to-edit")
            seed_used = gr.Number(label="Seed used", precision=0, interactive=False)
            parameters = gr.Textbox(label="Parameters", lines=4, interactive=False)
            session_gallery = gr.Gallery(label="This session", columns=6, height=220, object_fit="cover",
                                         preview=False, elem_id="generate-session")
    session = gr.State([])

    # Generate: one job per GPU at a time; the rest queue (bounded by the server) and see their position.
    gen_event = run.click(
        h.generate,
        inputs=[prompt, negative, preset, steps, guidance, width, height, seed, num_images, seq_len, lora,
                lora_scale],
        outputs=[images, seed_used, parameters],
        api_name="generate",
        show_progress_on=images,  # one bar (steps, queue position) over the images
        # one job per GPU; with the batched queue (or Ray replicas) as many as can run or share a batch at once
        concurrency_limit=service.generate_concurrency[1],
        concurrency_id=service.generate_concurrency[0],
    )
    gen_event.success(h.add_to_session, inputs=[images, session], outputs=[session_gallery, session],
                      api_visibility="private")
    gen_event.then(h.status, outputs=status, api_visibility="private")
    stop.click(h.cancel, api_name="cancel", cancels=[gen_event], queue=False)

    # One click from the gallery to the Edit tab: the image shown (or the first one) is handed over in the page.
    to_edit.click(None, js=SEND_TO_EDIT_JS)

    # Field helpers on the user's own picks only (`.select`: loading a PNG's fields must not reset them).
    preset.select(generate_preset_defaults, inputs=preset, outputs=[steps, guidance], api_visibility="private")

    def on_aspect(a: str, p: str):
        size = generate_aspect_size(a, p)
        return (size[0], size[1]) if size else (gr.skip(), gr.skip())

    aspect.select(on_aspect, inputs=[aspect, preset], outputs=[width, height], api_visibility="private")
    random_seed.click(lambda: -1, outputs=seed, api_visibility="private")
    reuse_seed.click(lambda s: s if s is not None else -1, inputs=seed_used, outputs=seed, api_visibility="private")

    png.upload(
        h.read_parameters,
        inputs=png,
        outputs=[prompt, negative, preset, steps, guidance, width, height, seed, seq_len, aspect],
        api_name="read_parameters",
    )
