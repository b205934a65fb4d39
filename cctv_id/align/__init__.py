"""Face alignment: 5-point similarity warps to the chip each recogniser expects."""
