"""ALM-KD Table 2: early-stopped teachers as several teachers (Sec. 6.3), CIFAR-100, teacher
WRN-16-8 at epochs 20 / 70 / 130 / final (200); students DenseNet-40-12 and WRN-16-1 (the
table's grid sets model.name; experiments/tables.py: alm_table2).

    python -m launch.reproduce --table=alm_table2
    python -m launch.main --config=experiments/alm/table2.py:full --config.alm.variant=alm \
        --config.model.name=wrn_16_1 --workdir=runs/alm_table2/wrn_16_1_alm

Rows (`alm.variant`): vanilla KD λ = 0.9 with the final teacher ('kd'), ALM-KD with the final
teacher only ('alm_final'), ALM-KD with the four checkpoints, one λ per checkpoint and example
('alm'). The teacher run keeps a checkpoint every gcd(epochs) epochs so that the early stops can
be loaded (`alm.teacher_epochs`). Sec. 6 recipe (recipe.paper_recipe). 'cpu' (default): smoke
run on Fashion-MNIST, CNN teacher at epochs 1 / 2 (final), 2 epochs.
"""
from experiments.alm import recipe


def get_config(arg: str | None = None):
    scale, dataset = recipe.parse_arg(arg, "table2", "cifar100")
    c = recipe.paper_recipe(scale, dataset)
    c.alm.variant = "alm"
    if scale == "full":
        c.teacher.name, c.model.name = "wrn_16_8", "wrn_16_1"
        c.alm.teacher_epochs = (20, 70, 130, 200)
    else:
        recipe.cpu_models(c, ((32, 64), 128), ((8, 16), 32))
        c.alm.teacher_epochs = (1, 2)
        c.scale_note = ("smoke: Fashion-MNIST 5k/500/2k, CNN teacher checkpoints at epochs 1/2, "
                        "2 epochs (paper: WRN-16-8 at 20/70/130/200 on CIFAR-100)")
    return c
