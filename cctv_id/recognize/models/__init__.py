"""PyTorch networks of the recogniser side: ``dlib_resnet_torch`` (dlib's face ResNet v1
ported from its ``.dat``, the distillation teacher) and the students. Importing this package
does not import torch; its submodules do."""
