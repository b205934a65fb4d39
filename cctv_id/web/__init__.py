"""The local web application over the hit database (``cctv-id serve``): a JSON API under
``/api/`` and server-rendered pages, both calling the same library functions as the CLI."""
