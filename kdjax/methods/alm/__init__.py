"""ALM-KD: adaptive per-example loss mixing for knowledge distillation (Sarkar et al.).

Files: `config.py` (the `alm` section), `loss.py` (the Eq. 5 / 12 student loss and Eq. 6's
perturbed target), `meta.py` (the look-ahead of Eq. 7, the outer objective of Eq. 6 + 16, the
exact and last-layer meta-gradients of Eq. 8-9 / 14 and the λ step of Eq. 10 / 15),
`teachers.py` (final, early-stopped and assistant teacher sets; the TAKD / DGKD baselines),
`method.py` (`make_method`: one run of `alm.variant` on `loop.fit`).
"""
