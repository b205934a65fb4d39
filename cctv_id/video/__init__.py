"""Video sources: file and stream readers on PyAV yielding Frame records."""
