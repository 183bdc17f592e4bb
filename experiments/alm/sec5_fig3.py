"""ALM-KD Sec. 5.1 / Fig. 3: mean learned λ per teacher-confidence bucket, noisy vs clean labels,
mean ± SEM over 50 seeds (a table, plus fig3.png).

    python -m launch.main --config=experiments/alm/sec5_fig3.py --workdir=runs/alm_sec5_fig3

'cpu' and 'full' are the same: the paper's full setting (50 seeds, 8100/900/1000, 100 epochs)
runs on this CPU (vectorised over seeds). Choices the paper leaves open are fields of
papers.alm.synthetic.base_config (make_classification args, batch size, τ, η_λ, λ init,
clipping); run experiments/alm/sec5_sensitivity.py for how they change the outcome.
"""
from papers.alm import synthetic as alm_synthetic


def get_config(arg=None):
    c = alm_synthetic.base_config(arg)
    c.method = "papers.alm.synthetic:run_fig3"
    c.scale_note = "full setting" if c.num_seeds == 50 else "smoke: 2 seeds, 2 epochs, 1/10 data"
    return c
