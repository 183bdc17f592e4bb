"""ALM-KD Fig. 5: KD with λ = 0.1, KD with λ = 0.9 and ALM-KD across teacher sizes.

    python -m launch.main --config=experiments/alm/fig5.py --workdir=runs/alm_fig5
    python -m launch.main --config=experiments/alm/fig5.py:full --workdir=runs/alm_fig5_full
    python -m launch.main --config=experiments/alm/fig5.py:full_resnet \
        --workdir=runs/alm_fig5_resnet

'full' (panels a-c): student WRN-16-1, teachers WRN-16-3/4/6/8, on CIFAR-100, Stanford Cars
(TFDS 'cars196') and Stanford Dogs. 'full_resnet' (panel d): student ResNet-8, teachers
ResNet-14/26/32/56, on CIFAR-10. The caption does not name the dataset of each panel; this
mapping is our reading of Sec. 6. Sec. 6 recipe (kdjax.methods.alm_train.paper_recipe): SGD 0.1,
×0.2 at epochs 60/120/160, 200 epochs, 90/10 train/validation split. The figure gives curves,
not numbers, so the paper column stays empty. TFDS data must be prepared offline beforehand
(config.data.data_dir). 'cpu' (default) is a smoke run of the same code on Fashion-MNIST with
small CNNs, 2 epochs, 2 seeds — a check of the pipeline, not a reproduction.
"""
from experiments import default
from kdjax.methods import alm_train


def get_config(arg: str | None = None):
  arg = arg or "cpu"
  if arg not in ("cpu", "full", "full_resnet"):
    raise ValueError(f"fig5 takes 'cpu', 'full' or 'full_resnet', got {arg!r}")
  c = alm_train.paper_recipe(default.get_config(), "cpu" if arg == "cpu" else "full")
  c.alm.variants = ("kd_0.1", "kd_0.9", "alm")
  c.alm.paper_table = "fig5"
  if arg == "full":
    c.alm.datasets = ("cifar100", "cars196", "stanford_dogs")
    c.data.name = "cifar100"
    c.pairs = ("wrn_16_3:wrn_16_1", "wrn_16_4:wrn_16_1", "wrn_16_6:wrn_16_1",
               "wrn_16_8:wrn_16_1")
  elif arg == "full_resnet":
    c.data.name = "cifar10"
    c.pairs = ("resnet14:resnet8", "resnet26:resnet8", "resnet32:resnet8", "resnet56:resnet8")
  else:
    alm_train.cpu_models(c, ((32, 64), 128), ((8, 16), 32))
    c.scale_note = ("smoke: Fashion-MNIST 5k/500/2k, small CNN teacher -> CNN student, "
                    "2 epochs, 2 seeds (paper: WRN/ResNet pairs on CIFAR / fine-grained sets)")
  return c
