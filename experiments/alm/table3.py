"""ALM-KD Table 3: self-distillation (Sec. 6.5), WRN-16-8 -> WRN-16-8 on Stanford Dogs.

    python -m launch.main --config=experiments/alm/table3.py --workdir=runs/alm_table3
    python -m launch.main --config=experiments/alm/table3.py:full --workdir=runs/alm_table3_full

Rows: CE ('ce'), CE early-stopped at its best validation epoch ('ce_early_stop'),
self-distillation = KD λ = 0.9 from a CE-trained WRN-16-8 ('kd'), self-distillation + ALM-KD
('alm'). FGVC-Aircraft, the paper's other column, is not in TFDS 4.9.10 and kdjax has no loader
for it: `--config.alm.datasets=fgvc_aircraft` stops with a ValueError saying so. Sec. 6 recipe
(paper_recipe) at 224x224 (the TFDS fine-grained loaders' size). 'cpu' (default): smoke run on
Fashion-MNIST, CNN (16,32)/64 -> itself, 2 epochs, 2 seeds.
"""
from experiments import default
from kdjax.methods import alm_train


def get_config(arg: str | None = None):
  arg = arg or "cpu"
  if arg not in ("cpu", "full"):
    raise ValueError(f"table3 takes 'cpu' or 'full', got {arg!r}")
  c = alm_train.paper_recipe(default.get_config(), arg)
  c.alm.variants = ("ce", "ce_early_stop", "kd", "alm")
  c.alm.kd_lambda = 0.9
  c.alm.paper_table = "table3"
  c.alm.paper_rows = {"ce": "ce", "ce_early_stop": "early_stopped_ce",
                      "kd": "self_distillation", "alm": "self_distillation_alm"}
  if arg == "full":
    c.teacher.name = c.model.name = "wrn_16_8"
    c.alm.datasets = ("stanford_dogs",)
    c.data.name = "stanford_dogs"
  else:
    alm_train.cpu_models(c, ((16, 32), 64), ((16, 32), 64))
    c.scale_note = ("smoke: Fashion-MNIST 5k/500/2k, CNN self-distillation, 2 epochs, 2 seeds "
                    "(paper: WRN-16-8 on FGVC-Aircraft / Stanford Dogs)")
  return c
