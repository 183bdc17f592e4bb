"""Paper harness: the toys, figure code, report drivers and published numbers that only
reproduce a paper.

`kdjax/` is the library (it never imports `papers`, tests/test_layout.py); what one paper's
experiments in `experiments/<paper>/` run lives here: `papers.disk` (Table 1's 1D/2D toys,
Tables 2/5/6's model sizes), `papers.alm` (Sec. 5's synthetic experiment), `papers.rad` (Fig. 2,
selection × retraining), and `papers.paper_numbers` (the papers' published values, handed to
`launch.reproduce`).
"""
