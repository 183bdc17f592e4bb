"""RAD (Baykal et al., ICLR 2023) figure code: Fig. 2 and the selection × retraining report.
The library part (distribution, solver, DepRound, Alg. 1, strategies) is kdjax/methods/rad."""
