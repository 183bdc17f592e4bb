"""ALM-KD Table 2: early-stopped teachers as several teachers (Sec. 6.3), CIFAR-100, teacher
WRN-16-8 at epochs 20 / 70 / 130 / final (200); students DenseNet-40-12 and WRN-16-1.

    python -m launch.main --config=experiments/alm/table2.py --workdir=runs/alm_table2
    python -m launch.main --config=experiments/alm/table2.py:full --workdir=runs/alm_table2_full

Rows: vanilla KD λ = 0.9 with the final teacher ('kd'), ALM-KD with the final teacher only
('alm_final'), ALM-KD with the four checkpoints, one λ per checkpoint and example ('alm'). The
teacher run keeps a checkpoint every gcd(epochs) epochs so that the early stops can be loaded
(`alm.teacher_epochs`); it is trained once and shared by both students. Sec. 6 recipe
(paper_recipe). 'cpu' (default): smoke run on Fashion-MNIST, CNN teacher at epochs 1 / 2 (final),
2 epochs, 2 seeds.
"""
from experiments import default
from kdjax.methods import alm_train


def get_config(arg: str | None = None):
  arg = arg or "cpu"
  if arg not in ("cpu", "full"):
    raise ValueError(f"table2 takes 'cpu' or 'full', got {arg!r}")
  c = alm_train.paper_recipe(default.get_config(), arg)
  c.alm.variants = ("kd", "alm_final", "alm")
  c.alm.kd_lambda = 0.9
  c.alm.paper_table = "table2"
  c.alm.paper_column = "student"
  c.alm.paper_rows = {"kd": "vanilla_kd_0.9", "alm_final": "alm_final_teacher",
                      "alm": "alm_early_stopped"}
  if arg == "full":
    c.data.name = "cifar100"
    c.pairs = ("wrn_16_8:densenet40_12", "wrn_16_8:wrn_16_1")
    c.alm.teacher_epochs = (20, 70, 130, 200)
  else:
    alm_train.cpu_models(c, ((32, 64), 128), ((8, 16), 32))
    c.alm.teacher_epochs = (1, 2)
    c.scale_note = ("smoke: Fashion-MNIST 5k/500/2k, CNN teacher checkpoints at epochs 1/2, "
                    "2 epochs, 2 seeds (paper: WRN-16-8 at 20/70/130/200 on CIFAR-100)")
  return c
