"""PyTorch reference models for tests/test_from_torch.py, written from reading the published
definitions (RepDistiller `models/*.py`, torchvision `models/resnet.py`): the same module tree and
parameter names, so their state_dicts have the published keys, and the same forward passes."""
