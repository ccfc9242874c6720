"""Scale-out on Ray Serve: generation and the server parse as replicas (one GPU each) behind the same Gradio
app. ``cluster`` starts or joins Ray and deploys; ``replica`` is what each replica runs (the single box's own
service, pipeline calls only); ``remote`` is the front end's side, :class:`~webapp.serving.remote.RayBackend`
(the views reach it through ``webapp.backend``, as they reach the local one); ``app`` is the Serve application
for ``serve run deploy/serve_config.yaml`` / KubeRay. Needs ``pip install 'face-studio[ray]'``; without
``--ray`` nothing here is imported."""
