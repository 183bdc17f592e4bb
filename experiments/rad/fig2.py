"""RAD Fig. 2: Corollary 1's optimal distribution for several teacher accuracies (exact).

Run:
    python -c "from experiments.rad import fig2; from papers.rad.fig2 import run_fig2; \
print(run_fig2(fig2.get_config(), '/tmp/rad_fig2')['checks'])"

'cpu' and 'full' are the same computation (seconds on a CPU); 'full' uses a bigger pool and more
seeds. Accuracies and n are [ours]: the paper's Fig. 2 shows curves without stating them.
"""
import ml_collections


def get_config(arg=None):
    arg = arg or "cpu"
    if arg not in ("cpu", "full"):
        raise ValueError(f"arg must be 'cpu' or 'full', got {arg!r}")
    c = ml_collections.ConfigDict()
    c.method = "papers.rad.fig2:run_fig2"
    c.accuracies = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)   # [ours]
    c.n = 10_000 if arg == "cpu" else 1_000_000              # [ours]; gains ~ U[0, 1] [paper]
    c.seeds = (0, 1, 2) if arg == "cpu" else tuple(range(10))
    c.plot = True
    return c
