"""cctv-id: find people of interest in CCTV footage where faces are tiny.

The package is a library first; ``cctv_id.cli`` is a thin click layer over it.
Heavy dependencies (torch, onnxruntime, dlib, faiss, av) are imported only inside
the backend that needs them.
"""

__version__ = "0.1.0"
