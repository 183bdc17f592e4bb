"""LR+DS: Label Revision and Data Selection around a distillation loss (Lan et al., arXiv
2404.03693; IEEE TCDS 2025).

Files: `loss.py` (LR's p = β p^t + (1 − β) y with β = η / (p^t_max − p^t_y + 1), and LR and DS
as wrappers of any per-example loss), `influence.py` (the DS scorers: last-layer influence
||H^-1 g_i|| and the alternatives), `selection.py` (the DS stage: the CE warm-up student, its
cached scores, D^t), `method.py` (`make_method`, the teacher stage, `summarize`), `config.py`
(the `lrds` section).
"""
