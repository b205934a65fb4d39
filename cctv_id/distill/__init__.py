"""A-SKD-style distillation of the low-resolution student from the high-resolution teacher.

Owns training only: CCTV degradations of training faces (``degrade``), attention maps and the
A-SKD loss (``attention``), recipes (``recipe``), the training set with its cached teacher
targets (``data``) and the trainer (``trainer``); and the paper's own recipe ("Teaching Where
to Look", iResNet + CBAM on CASIA-WebFace: ``paper_recipe``, ``paper_data``,
``paper_trainer``, ``paper_eval``) over its data readers (``recordio``, ``verification_bin``,
``faces112``) and margin heads (``heads``); helpers both trainers share live in ``common``.
The runtime never imports this package; this package never imports ``video``, ``store`` or
``daemon``.
"""
