"""ALM-KD Table 3: self-distillation (Sec. 6.5), WRN-16-8 -> WRN-16-8 on Stanford Dogs
(experiments/tables.py: alm_table3).

    python -m launch.reproduce --table=alm_table3
    python -m launch.main --config=experiments/alm/table3.py:full --config.alm.variant=alm \
        --workdir=runs/alm_table3/alm

Rows: CE ('ce'), CE early-stopped at its best validation epoch (the 'ce' run's
`early_stop.test_accuracy`), self-distillation = KD λ = 0.9 from a CE-trained WRN-16-8 ('kd'),
self-distillation + ALM-KD ('alm'). FGVC-Aircraft, the paper's other column, is not in TFDS:
'full:fgvc_aircraft' reads it as prepared TF-free by `python -m launch.prepare
--dataset=fgvc_aircraft` (README "Data"). Sec. 6 recipe (recipe.paper_recipe) at 224x224 (the
TFDS fine-grained loaders' size). 'cpu' (default): smoke run on Fashion-MNIST, CNN (16,32)/64
-> itself, 2 epochs.
"""
from experiments.alm import recipe


def get_config(arg: str | None = None):
    scale, dataset = recipe.parse_arg(arg, "table3", "stanford_dogs")
    c = recipe.paper_recipe(scale, dataset)
    c.alm.variant = "alm"
    if scale == "full":
        c.teacher.name = c.model.name = "wrn_16_8"
    else:
        recipe.cpu_models(c, ((16, 32), 64), ((16, 32), 64))
        c.scale_note = ("smoke: Fashion-MNIST 5k/500/2k, CNN self-distillation, 2 epochs "
                        "(paper: WRN-16-8 on FGVC-Aircraft / Stanford Dogs)")
    return c
