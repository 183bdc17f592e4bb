"""SimKD: knowledge distillation with the reused teacher classifier (Chen et al., CVPR 2022),
the feature-matching method DiSK's Table 8 (App. A.7) puts DiSK inside.

Files: `model.py` (the student wrapped as backbone + projector Ψ + the teacher's frozen head),
`loss.py` (the feature loss ||Ψ(f_s) − f_t||² and A.7 Eq. 9, its guided form with the guide
objective), `config.py` (`config.simkd`), `method.py` (`config.method = 'simkd'`: SimKD on its
own; DiSK's recipe runs it as `disk.variant = 'simkd'` / `'simkd_disk'`).
"""
