"""Scale-out on Ray Serve: generation and the server parse as replicas (one GPU each) behind the same Gradio
app. ``cluster`` starts or joins Ray and deploys; ``replica`` is what each replica runs (the single box's own
service); ``remote`` is the front end's side (the views call it as they call the local service).
Needs ``pip install 'face-studio[ray]'``; without ``--ray`` nothing here is imported."""
