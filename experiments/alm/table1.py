"""ALM-KD Table 1: multi-teacher distillation, teachers WRN-16-4 and WRN-16-3 -> WRN-16-1;
TAKD vs DGKD vs ALM-KD (`alm.variant`, one run per variant and seed; experiments/tables.py:
alm_table1) on CIFAR-100 ('full'), Stanford Cars ('full:cars196') and Stanford Dogs
('full:stanford_dogs').

    python -m launch.reproduce --table=alm_table1
    python -m launch.main --config=experiments/alm/table1.py:full:cars196 \
        --config.alm.variant=dgkd --workdir=runs/alm_table1/cars196_dgkd

TAKD: WRN-16-4 -> (KD) WRN-16-3 -> (KD) WRN-16-1. DGKD: the student learns from WRN-16-4 and the
KD-trained WRN-16-3 at once, λ = loss.kd_weight = 0.9 per teacher (Sec. 6.2: "For both TAKD and
DGKD we use λ = 0.9"); `alm.dgkd_drop_prob` > 0 gives stochastic DGKD. ALM-KD: one learned λ per
teacher and example (Eq. 12-15) over WRN-16-4 and a CE-trained WRN-16-3. The assistants train
inside each run's workdir. Sec. 6 recipe (recipe.paper_recipe). 'cpu' (default): smoke run on
Fashion-MNIST with a CNN chain (32,64)/128 -> (16,32)/64 -> (8,16)/32, 2 epochs.
"""
from experiments.alm import recipe


def get_config(arg: str | None = None):
    scale, dataset = recipe.parse_arg(arg, "table1", "cifar100")
    c = recipe.paper_recipe(scale, dataset)
    c.alm.variant = "alm"
    if scale == "full":
        c.teacher.name, c.model.name = "wrn_16_4", "wrn_16_1"
        c.alm.assistants = ("wrn_16_3",)
    else:
        recipe.cpu_models(c, ((32, 64), 128), ((8, 16), 32))
        c.alm.assistants = ("cnn_small",)
        c.alm.assistant_kwargs = ({"widths": (16, 32), "hidden": 64},)
        c.scale_note = ("smoke: Fashion-MNIST 5k/500/2k, CNN chain teacher -> assistant -> "
                        "student, 2 epochs (paper: WRN-16-4/16-3 -> WRN-16-1, 200 epochs)")
    return c
