"""Face detection: FaceDetector backends and the tiny-face (upscale + tiles) strategy."""
