"""ALM-KD Table 1: multi-teacher distillation, teachers WRN-16-4 and WRN-16-3 -> WRN-16-1;
TAKD vs DGKD vs ALM-KD on CIFAR-100, Stanford Cars (TFDS 'cars196') and Stanford Dogs.

    python -m launch.main --config=experiments/alm/table1.py --workdir=runs/alm_table1
    python -m launch.main --config=experiments/alm/table1.py:full --workdir=runs/alm_table1_full

TAKD: WRN-16-4 -> (KD) WRN-16-3 -> (KD) WRN-16-1. DGKD: the student learns from WRN-16-4 and the
KD-trained WRN-16-3 at once, λ = 0.9 per teacher (Sec. 6.2: "For both TAKD and DGKD we use
λ = 0.9"); `alm.dgkd_drop_prob` > 0 gives stochastic DGKD. ALM-KD: one learned λ per teacher and
example (Eq. 12-15) over WRN-16-4 and a CE-trained WRN-16-3. Sec. 6 recipe (paper_recipe).
'cpu' (default): smoke run on Fashion-MNIST with a CNN chain (32,64)/128 -> (16,32)/64 ->
(8,16)/32, 2 epochs, 2 seeds.
"""
from experiments import default
from kdjax.methods import alm_train


def get_config(arg: str | None = None):
  arg = arg or "cpu"
  if arg not in ("cpu", "full"):
    raise ValueError(f"table1 takes 'cpu' or 'full', got {arg!r}")
  c = alm_train.paper_recipe(default.get_config(), arg)
  c.alm.variants = ("takd", "dgkd", "alm")
  c.alm.kd_lambda = 0.9
  c.alm.paper_table = "table1"
  c.alm.paper_rows = {"takd": "TAKD", "dgkd": "DGKD", "alm": "ALM-KD"}
  if arg == "full":
    c.teacher.name, c.model.name = "wrn_16_4", "wrn_16_1"
    c.alm.assistants = ("wrn_16_3",)
    c.alm.datasets = ("cifar100", "cars196", "stanford_dogs")
    c.data.name = "cifar100"
  else:
    alm_train.cpu_models(c, ((32, 64), 128), ((8, 16), 32))
    c.alm.assistants = ("cnn_small",)
    c.alm.assistant_kwargs = ({"widths": (16, 32), "hidden": 64},)
    c.scale_note = ("smoke: Fashion-MNIST 5k/500/2k, CNN chain teacher -> assistant -> student, "
                    "2 epochs, 2 seeds (paper: WRN-16-4/16-3 -> WRN-16-1, 200 epochs)")
  return c
