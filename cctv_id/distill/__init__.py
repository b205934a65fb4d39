"""A-SKD-style distillation of the low-resolution student from the high-resolution teacher.

Owns training only: CCTV degradations of training faces (``degrade``), attention maps and the
A-SKD loss (``attention``), recipes (``recipe``), the training set with its cached teacher
targets (``data``) and the trainer (``trainer``). The runtime never imports this package;
this package never imports ``video``, ``store`` or ``daemon``.
"""
