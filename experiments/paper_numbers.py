"""Every number the reports print beside ours, typed in from the papers in ../shared/papers/.

One dict per paper; each entry cites its table/figure and row. Reports look cells up by
(table id, row, column) keys chosen by the method's runner.
"""

# --- RAD (Baykal et al., ICLR 2023) -----------------------------------------------------------
RAD: dict = {}

# --- DiSK (Kag et al.) ------------------------------------------------------------------------
DISK: dict = {
    # Table 1: runs (of 100) landing in each minimum; "accuracy" is the table's Accuracy row (%).
    "table1": {
        "counts": {
            "intervals_1d": {"Cross-Entropy": {"A": 35, "B": 64, "C": 1},
                             "KD": {"A": 30, "B": 67, "C": 3},
                             "DiSK": {"A": 9, "B": 1, "C": 90}},
            "gaussians_2d": {"Cross-Entropy": {"A": 73, "B": 12, "C": 9, "D": 6},
                             "KD": {"A": 1, "B": 11, "C": 31, "D": 57},
                             "DiSK": {"A": 0, "B": 0, "C": 3, "D": 97}},
        },
        "accuracy": {"intervals_1d": {"A": 67, "B": 83, "C": 87},
                     "gaussians_2d": {"A": 70, "B": 80, "C": 90, "D": 100}},
    },
}

# --- ALM-KD (Sarkar et al.) -------------------------------------------------------------------
ALM: dict = {
    # Sec. 5.1 / Fig. 3 (and App. B, Fig. 8): only qualitative claims, no numbers in the text.
    ("sec5_fig3", "claim"): "teacher gives lower p(label) to noisy points; learned λ higher on "
                            "noisy than clean labels (mean±SEM over seeds)",
    # Sec. 5.2 / Fig. 4: qualitative claim, curves only.
    ("sec5_fig4", "claim"): "ALM-KD learns faster and converges to higher test accuracy than CE "
                            "and KD λ=0.9 (50 runs)",
    # Table 1 (multi-teacher, WRN-16-3 + WRN-16-4 -> WRN-16-1), rows TAKD / DGKD / ALM-KD.
    ("table1", "TAKD", "cifar100"): 67.29, ("table1", "TAKD", "stanford_cars"): 45.10,
    ("table1", "TAKD", "stanford_dogs"): 50.33,
    ("table1", "DGKD", "cifar100"): 68.61, ("table1", "DGKD", "stanford_cars"): 48.45,
    ("table1", "DGKD", "stanford_dogs"): 51.36,
    ("table1", "ALM-KD", "cifar100"): 67.8, ("table1", "ALM-KD", "stanford_cars"): 50.87,
    ("table1", "ALM-KD", "stanford_dogs"): 51.44,
    # Table 2 (CIFAR-100, teacher WRN-16-8, early stops at epochs 20/70/130/final).
    ("table2", "vanilla_kd_0.9", "densenet40_12"): 75.83, ("table2", "vanilla_kd_0.9", "wrn_16_1"): 66.6,
    ("table2", "alm_final_teacher", "densenet40_12"): 75.7, ("table2", "alm_final_teacher", "wrn_16_1"): 66.98,
    ("table2", "alm_early_stopped", "densenet40_12"): 76.69, ("table2", "alm_early_stopped", "wrn_16_1"): 67.97,
    # Table 3 (self-distillation, WRN-16-8).
    ("table3", "ce", "fgvc_aircraft"): 68.29, ("table3", "ce", "stanford_dogs"): 56.47,
    ("table3", "early_stopped_ce", "fgvc_aircraft"): 69.94, ("table3", "early_stopped_ce", "stanford_dogs"): 56.55,
    ("table3", "self_distillation", "fgvc_aircraft"): 71.17, ("table3", "self_distillation", "stanford_dogs"): 58.17,
    ("table3", "self_distillation_alm", "fgvc_aircraft"): 72.53, ("table3", "self_distillation_alm", "stanford_dogs"): 58.42,
}

# --- LR+DS (Lan et al., arXiv 2404.03693; numbers the summary / NOTES.md give) ---------------
LRDS: dict = {}

PAPERS = {"rad": RAD, "disk": DISK, "alm": ALM, "lrds": LRDS}
