"""face-studio web app: server, views, parsing engine, generation, editing and the CLI."""

from face_studio import __version__  # noqa: F401  (one version for the distribution)
