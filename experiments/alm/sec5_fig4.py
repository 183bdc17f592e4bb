"""ALM-KD Sec. 5.2 / Fig. 4: test accuracy per epoch of CE, KD (λ = 0.9) and ALM-KD, mean ± SEM
over 50 seeds (a table at selected epochs, plus fig4.png with the whole curves).

    python -m launch.main --config=experiments/alm/sec5_fig4.py --workdir=runs/alm_sec5_fig4

'cpu' and 'full' are the same: the paper's full setting runs on this CPU. See sec5_fig3.py for
the open choices.
"""
from papers.alm import synthetic as alm_synthetic


def get_config(arg=None):
    c = alm_synthetic.base_config(arg)
    c.method = "papers.alm.synthetic:run_fig4"
    c.scale_note = "full setting" if c.num_seeds == 50 else "smoke: 2 seeds, 2 epochs, 1/10 data"
    return c
