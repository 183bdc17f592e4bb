"""Paper harness: the toys, figure code and report drivers that only reproduce a paper.

`kdjax/` is the library (it never imports `papers`); each package here holds what one paper's
experiments in `experiments/<paper>/` run: `papers.disk` (Table 1's 1D/2D toys), `papers.alm`
(Sec. 5's synthetic experiment), `papers.rad` (Fig. 2, selection × retraining).
"""
