"""ALM-KD Sec. 5: sensitivity of the Fig. 3 / Fig. 4 patterns to the choices the paper leaves
open (λ clipping, τ, η_λ, λ init, meta-gradient, L). Shares data, teachers, CE and KD baselines.

    python -m launch.main --config=experiments/alm/sec5_sensitivity.py --workdir=runs/alm_sec5_sens

'cpu': 10 seeds per variant (the paper's Sec. 5 otherwise in full); 'full': 50 seeds.
"""
import ml_collections

from papers.alm import synthetic as alm_synthetic

# name -> nested overrides for the ALM-KD student only (base: clip none, τ 4, η_λ 1e4, λ init
# 0.5, L 10); the CE and KD students keep the base config.
VARIANTS = {
    "base": {},
    "clip01": {"alm": {"clip": "unit"}},
    "tau1": {"loss": {"temperature": 1.0}},
    "tau1_clip01": {"loss": {"temperature": 1.0}, "alm": {"clip": "unit"}},
    "eta_lambda_1e5": {"alm": {"lambda_lr": 1e5}},
    "eta_lambda_1e5_clip01": {"alm": {"lambda_lr": 1e5, "clip": "unit"}},
    "init09": {"alm": {"lambda_init": 0.9}},
    "last_layer": {"alm": {"meta_grad": "last_layer"}},
    "L1": {"alm": {"update_every": 1}},
    "eta_lambda_1e3": {"alm": {"lambda_lr": 1e3}},
    "init09_clip01": {"alm": {"lambda_init": 0.9, "clip": "unit"}},
}


def get_config(arg=None):
    arg = arg or "cpu"
    c = alm_synthetic.base_config("full" if arg == "cpu" else arg)
    if arg == "cpu":
        c.num_seeds = 10
    c.method = "papers.alm.synthetic:run_sensitivity"
    c.variants = ml_collections.ConfigDict(
        {k: ml_collections.ConfigDict(v) for k, v in VARIANTS.items()})
    c.variant_order = list(VARIANTS)  # ConfigDict sorts its keys; run in this order
    c.scale_note = ("full setting" if c.num_seeds == 50 else
                    f"reduced: {c.num_seeds} seeds per variant (paper: 50)")
    return c
