"""Detector backends, each adapting its model output to FaceDetections."""
