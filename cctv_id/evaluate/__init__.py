"""Evaluation protocols: how a recogniser is judged on small faces.

- ``datasets``: reading evaluation data (identity folders, LFW ``pairs.txt``, folds,
  TinyFace, Extended Yale B, AT&T) into typed records; bad input is an ``InputError``.
- ``annotate``: per-image landmarks + face size (full-size RetinaFace, dlib HOG box), cached
  on disk; also the cache of full-size embeddings.
- ``recognizers``: the evaluation recognisers (a gallery-side and a probe-side encoder).
- ``features``: embeddings of images under a degradation (size) and a landmark mode.
- ``metrics``: ranks, the k-fold verification threshold, TAR at a FAR (pure numpy).
- ``protocols``: identification, verification, Yale B hard light, AT&T, TinyFace.

Nothing here is imported by the runtime pipeline; heavy libraries load inside functions.
"""
