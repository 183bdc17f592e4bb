"""RAD: robust active distillation (Baykal et al., ICLR 2023).

Files: `distribution.py` (gains, Theorem 1 / Corollary 1's optimal sampling distribution, game
value, realized gain, sampling b queries, estimating m), `solver.py` (the exact sort-free solver
of Theorem 1), `doublefloat.py` (its error-free arithmetic), `dependent_rounding.py` (DepRound,
App. B); RAD's active distillation: `loop.py` (Alg. 1, `config.method = 'rad'`), `strategies.py`
(the selection rules), `retrain.py` (any method's loss in the retraining rounds), `trials.py`
(paired trials sharing split, teacher and round 0), `compare.py` (strategies side by side,
`'rad_compare'`) and `paired.py` (their paired differences). Paper figures: `papers/rad/`.
"""
from kdjax.methods.rad.dependent_rounding import depround, depround_sharded
from kdjax.methods.rad.distribution import (RadSolution, default_w, entropy_gain,
                                            estimate_num_mistakes, game_value,
                                            inclusion_probabilities, margin_gain,
                                            rad_distribution, rad_distribution_sharded,
                                            realized_gain, robust_distribution,
                                            robust_distribution_sharded, sample_queries,
                                            uniform_estimation_sample)

__all__ = ["RadSolution", "default_w", "depround", "depround_sharded", "entropy_gain",
           "estimate_num_mistakes", "game_value", "inclusion_probabilities", "margin_gain",
           "rad_distribution", "rad_distribution_sharded", "realized_gain", "robust_distribution",
           "robust_distribution_sharded", "sample_queries", "uniform_estimation_sample"]
