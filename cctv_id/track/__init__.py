"""Multi-face tracking and best-shot selection per track."""
