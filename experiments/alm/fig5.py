"""ALM-KD Fig. 5: KD with λ = 0.1, KD with λ = 0.9 and ALM-KD across teacher sizes; one run is
one (variant, λ, teacher, seed) point of the table's grid (experiments/tables.py: alm_fig5).

    python -m launch.reproduce --table=alm_fig5                    # cpu smoke grid
    python -m launch.main --config=experiments/alm/fig5.py:full --config.alm.variant=alm \
        --config.teacher.name=wrn_16_4 --workdir=runs/alm_fig5/wrn_16_4_alm
    python -m launch.main --config=experiments/alm/fig5.py:full:cars196 ...     # other datasets
    python -m launch.main --config=experiments/alm/fig5.py:full_resnet \
        --config.teacher.name=resnet14 ...

'full' (panels a-c): student WRN-16-1, teachers WRN-16-3/4/6/8 (the grid's teacher.name), on
CIFAR-100 ('full'), Stanford Cars ('full:cars196') and Stanford Dogs ('full:stanford_dogs').
'full_resnet' (panel d): student ResNet-8, teachers ResNet-14/26/32/56, on CIFAR-10. The
caption does not name the dataset of each panel; this mapping is our reading of Sec. 6. Sec. 6
recipe (recipe.paper_recipe). The figure gives curves, not numbers. TFDS data must be prepared
offline beforehand (config.data.data_dir). 'cpu' (default) is a smoke run of the same code on
Fashion-MNIST with small CNNs, 2 epochs — a check of the pipeline, not a reproduction.
"""
from experiments.alm import recipe

TEACHERS = ("wrn_16_3", "wrn_16_4", "wrn_16_6", "wrn_16_8")
RESNET_TEACHERS = ("resnet14", "resnet26", "resnet32", "resnet56")


def get_config(arg: str | None = None):
    scale, dataset = recipe.parse_arg(arg, "fig5", "cifar100", extra=("full_resnet",))
    if scale == "full_resnet":
        c = recipe.paper_recipe("full", "cifar10")
        c.teacher.name, c.model.name = RESNET_TEACHERS[0], "resnet8"
    elif scale == "full":
        c = recipe.paper_recipe("full", dataset)
        c.teacher.name, c.model.name = TEACHERS[0], "wrn_16_1"
    else:
        c = recipe.paper_recipe("cpu")
        recipe.cpu_models(c, ((32, 64), 128), ((8, 16), 32))
        c.scale_note = ("smoke: Fashion-MNIST 5k/500/2k, small CNN teacher -> CNN student, "
                        "2 epochs (paper: WRN/ResNet pairs on CIFAR / fine-grained sets)")
    return c
