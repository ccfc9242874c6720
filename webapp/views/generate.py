"""Generate view: SD3.5 text-to-image on the server, and its Gradio API.

API names: ``generate`` (images, seed used, parameters text; ``lora`` picks one of the LoRAs the operator
allowed, by name, for this request only), ``read_parameters`` (a PNG → the page's fields), ``cancel``. No
endpoint takes a server path. The work goes to the generation backend (``webapp.backend``: this machine, or
Ray Serve replicas), which also says which lane to queue on; ``webapp.app.setup_queue`` bounds the GPU lanes
(``--max-queue``) apart from the parse lane, and Gradio shows waiting users their position.
"""

from __future__ import annotations

import html

import gradio as gr

from face_studio.errors import UserError
from webapp.backend import Backend, BackendStatus, backend_for
from webapp.errors import user_errors
from webapp.fields import Field, api_description
from webapp.generation import presets as P
from webapp.generation.loras import NO_LORA
from webapp.generation.params import GENERATE, generate_fields, read_png_parameters
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


def generate_lora_choices(backend: Backend) -> list[str]:
    """The LoRA dropdown: "(none)", then the allowed names (never their paths)."""
    return [NO_LORA, *backend.lora_names]


def status_markdown(status: BackendStatus) -> str:
    """One line for the page: model, device, memory mode, speed, LoRAs (and the replicas under Ray)."""
    if status.unavailable:
        return f"**Model** `{status.model}` · not loaded: generation is off on this server (why: above)."
    state = "loaded" if status.loaded else "loads on first use"
    loras = ", ".join(status.loras) or "none allowed"
    if status.gpu_gib is None:
        where = "**device** cpu (float32, chosen with --device cpu)"
        if status.memory_mode == "no-t5":
            where += " · **memory mode** no-t5"
    else:
        mode = f"{status.memory_mode}" + (" (auto)" if status.memory_mode_auto else "")
        where = (f"**device** {status.device} ({status.gpu_gib:.0f} GiB) · **memory mode** {mode} — "
                 f"{P.MEMORY_MODES.get(status.memory_mode or '', '')}")
    speed = f" · **speed** {status.speed}" + (f" ({status.speed_note})" if status.speed_note else "")
    line = f"**Model** `{status.model}` ({state}) · {where}{speed} · **LoRAs** {loras}"
    if status.backend == "ray":
        count = status.replica_range + (" (autoscaling)" if "–" in status.replica_range else "")
        line += f" · **Ray Serve** {count} replica(s), {'1 GPU each' if status.gpus_per_replica else 'CPU'}"
    return line


# ------------------------------------------------------------------------------------------ handlers


def make_handlers(backend: Backend):
    """The view's event handlers, bound to one backend (returned as a namespace for tests and the CLI)."""

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
        cancel = backend.begin_job(key)
        try:
            note = backend.first_use_note(width, height)  # loading the model; --speed compile: compiling
            if note:
                progress(0, desc=note)

            def on_step(done: int, total: int) -> None:
                progress((done, total), desc=f"denoising step {done}/{total}", unit="steps")

            result = backend.generate(
                prompt=prompt, negative_prompt=negative_prompt, preset=preset, steps=steps, guidance=guidance,
                width=width, height=height, seed=seed, num_images=num_images,
                max_sequence_length=max_sequence_length, lora=lora, lora_scale=lora_scale, progress=on_step,
                cancel=cancel)
        finally:
            backend.end_job(key, cancel)
        gallery = [(str(img.path), generate_caption(img.seed, img.parameters.width, img.parameters.height))
                   for img in result.images]
        return gallery, result.seed, result.parameters_text

    def cancel(request: gr.Request) -> None:
        """Stop this session's running generation at its next denoising step."""
        if backend.cancel(request.session_hash or "anonymous"):
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
        return status_markdown(backend.status())

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


GENERATE_SUMMARY = ("Text to image with SD3.5: the images (PNGs carrying their parameters), the seed used (image i "
                    "used seed + i) and the parameters as AUTOMATIC1111-style text.")


def _number(field: Field, interactive: bool) -> gr.Number:
    """A number input from its field record (label, default, step; whole numbers shown without decimals)."""
    # No precision=0 (not even for the seed): Gradio would int() the value before our check, and NaN would get
    # its raw "Could not preprocess input component" instead of our message.
    return gr.Number(field.default, label=field.label, step=field.step, interactive=interactive)


def build(settings: ServeSettings) -> None:
    """Lay out the Generate tab inside the current Blocks."""
    backend = backend_for(settings)  # this machine, or Ray Serve replicas (--ray): the same interface
    # The PNGs are served from where they are saved, wherever --output-dir points (not only cwd / temp).
    gr.set_static_paths([backend.output_dir])
    h = make_handlers(backend)
    reason = backend.unavailable_reason
    enabled = reason is None
    fields = generate_fields(backend.default_preset)  # labels, defaults, steps; the server checks the same records

    if reason:
        gr.Markdown(f"**Generation is off on this server.** {html.escape(reason)}", elem_id="generate-unavailable")
    status = gr.Markdown(status_markdown(backend.status()), elem_id="generate-status")
    with gr.Row():
        with gr.Column(scale=3):
            prompt = gr.Textbox(label=fields["prompt"].label, lines=3, placeholder="a portrait photo of …",
                                interactive=enabled)
            negative = gr.Textbox(label=fields["negative_prompt"].label, lines=2, interactive=enabled)
            with gr.Row():
                preset = gr.Dropdown(list(fields["preset"].choices), value=fields["preset"].default,
                                     label=fields["preset"].label,
                                     allow_custom_value=True, interactive=enabled,
                                     info="sets steps, guidance, size range and skip-layer guidance")
                seq_len = gr.Dropdown(list(fields["max_sequence_length"].choices),
                                      value=fields["max_sequence_length"].default,
                                      label=fields["max_sequence_length"].label, allow_custom_value=True,
                                      interactive=enabled)
            with gr.Row():
                steps, guidance, num_images = (_number(fields[n], enabled) for n in ("steps", "guidance", "num_images"))
            with gr.Row():
                aspect = gr.Dropdown([*P.ASPECTS, CUSTOM_ASPECT], value="1:1", label="Aspect", interactive=enabled)
                width, height = _number(fields["width"], enabled), _number(fields["height"], enabled)
            with gr.Row():
                seed = _number(fields["seed"], enabled)
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
                lora = gr.Dropdown(generate_lora_choices(backend), value=NO_LORA, label=fields["lora"].label,
                                   allow_custom_value=True, interactive=enabled and bool(backend.lora_names),
                                   elem_id="generate-lora",
                                   info="for this run only; the server's operator chooses which are offered"
                                   if backend.lora_names else "none offered (serve --lora FILE / --lora-dir DIR)")
                lora_scale = _number(fields["lora_scale"], enabled and bool(backend.lora_names))
        with gr.Column(scale=4):
            # interactive=False: results only, no "Drop Media Here" upload invite
            images = gr.Gallery(label="Images", format="png", columns=2, height=560, object_fit="contain",
                                elem_id="generate-images", interactive=False)
            to_edit = gr.Button("✎ Edit this image (pick regions to regenerate)", size="sm", elem_id="generate-to-edit")
            seed_used = gr.Number(label="Seed used", precision=0, interactive=False, elem_id="generate-seed-used",
                                  placeholder="set by a run")  # empty, not "0", before the first run
            parameters = gr.Textbox(label="Parameters", lines=4, interactive=False)
            session_gallery = gr.Gallery(label="This session", columns=6, height=220, object_fit="cover",
                                         preview=False, elem_id="generate-session", interactive=False)
    session = gr.State([])

    # Generate: one job per GPU at a time; the rest queue (bounded by the server) and see their position.
    by_name = dict(prompt=prompt, negative_prompt=negative, preset=preset, steps=steps, guidance=guidance, width=width,
                   height=height, seed=seed, num_images=num_images, max_sequence_length=seq_len, lora=lora,
                   lora_scale=lora_scale)
    gen_event = run.click(
        h.generate,
        inputs=[by_name[name] for name in GENERATE],  # the API's positional order, from the field records
        outputs=[images, seed_used, parameters],
        api_name="generate",
        show_progress_on=images,  # one bar (steps, queue position) over the images
        api_description=api_description(GENERATE_SUMMARY, fields, GENERATE),
        # one job per GPU; with the batched queue (or Ray replicas) as many as can run or share a batch at once
        concurrency_id=backend.lane("generate").concurrency_id,
        concurrency_limit=backend.lane("generate").limit,
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
