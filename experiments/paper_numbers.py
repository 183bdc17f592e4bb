"""Every number the reports print beside ours, typed in from the papers in ../shared/papers/.

One dict per paper; each entry cites its table/figure and row. Reports look cells up by
(table id, row, column) keys chosen by the method's runner.
"""

# --- RAD (Baykal et al., ICLR 2023) -----------------------------------------------------------
RAD: dict = {}

# --- DiSK (Kag et al.) ------------------------------------------------------------------------
DISK: dict = {}

# --- ALM-KD (Sarkar et al.) -------------------------------------------------------------------
ALM: dict = {}

# --- LR+DS (Lan et al., arXiv 2404.03693; numbers the summary / NOTES.md give) ---------------
LRDS: dict = {}

PAPERS = {"rad": RAD, "disk": DISK, "alm": ALM, "lrds": LRDS}
