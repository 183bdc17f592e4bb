"""Every number the reports print beside ours, typed in from the papers in ../shared/papers/.

One dict per paper; each entry cites its table/figure and row. Reports look cells up by
(table id, row, column) keys chosen by the method's runner or a Metric's `paper` key
(kdjax/reproduce/aggregate.py lookup_paper); `launch.reproduce` hands `PAPERS` to the harness
(--paper_numbers), which never imports this package.
"""

# --- RAD (Baykal et al., ICLR 2023) -----------------------------------------------------------
RAD: dict = {
    # Numbers stated in the text (the result plots, Figs. 1-18, carry no printed values).
    # Fig. 1 (CIFAR-10, ResNet student/teacher): overall accuracies quoted in the caption, %.
    ("fig1", "teacher", "accuracy"): 60.7,
    ("fig1", "student", "accuracy"): 49.4,
    # Sec. 4.1: SVHN teacher accuracy "as high as ≈ 92%".
    ("fig3", "svhn_teacher", "accuracy_approx"): 92.0,
    # Sec. 4.2 / Fig. 4 (ImageNet, ResNet-50 → ResNet-18): |A| and budgets as % of |I|, 3 trials.
    ("fig4", "setup", "labeled_pct"): 10.0,
    ("fig4", "setup", "budgets_pct"): (3, 5, 7, 9, 11),
    ("fig4", "setup", "trials"): 3,
    # D.1: validation-set sizes used to estimate m.
    ("d1", "cifar_svhn", "val_size"): 1000,
    ("d1", "imagenet", "val_size"): 10000,
    # D.2: approximate CM buckets and clusters.
    ("d2", "cluster_margin", "bucket_size"): 10000,
    ("d2", "cluster_margin", "clusters_per_bucket"): 500,
    ("d2", "cluster_margin", "total_clusters"): 56000,
    # D.4: standard active learning with m = 0.05 n.
    ("d4", "rad", "m_over_n"): 0.05,
    # D.5: w grid (plus the default w = 1 − m/n), 5 trials.
    ("d5", "rad", "w_grid"): (0.0, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 1.0),
    ("d5", "rad", "trials"): 5,
    # D.7 (SVHN grid): students ResNetV2-{11,20,29}, teachers ResNetV2-{56,110}, |A|, b, epochs.
    ("d7", "grid", "labeled"): (5000, 10000, 20000),
    ("d7", "grid", "b"): (1000, 2000, 5000),
    ("d7", "grid", "epochs"): (100, 200),
    # Sec. 4.1: results averaged over 10 trials unless stated otherwise.
    ("fig3", "setup", "trials"): 10,
}

# --- DiSK (Kag et al.) ------------------------------------------------------------------------
DISK: dict = {
    # Tables 2, 5 and 6 (model statistics; A.4): MACs in millions, parameters in millions.
    # None = the OCR'd cell is unreadable (e.g. "M", "aM"). Table 5 = large-mismatch ResNet10
    # family (CIFAR-100 and Tiny-ImageNet); Table 6 = small-mismatch models (CIFAR-100).
    "table2_6": {
        "cifar100": {
            "resnet10_l": {"macs_M": 64, "params_M": 1.25}, "resnet10": {"macs_M": 253, "params_M": 4.92},
            "resnet18": {"macs_M": 555, "params_M": 11.22}, "resnet34": {"macs_M": 1159, "params_M": 21.32},
            "resnet10_xxs": {"macs_M": None, "params_M": 0.013}, "resnet10_xs": {"macs_M": None, "params_M": 0.028},
            "resnet10_s": {"macs_M": None, "params_M": 0.084}, "resnet10_m": {"macs_M": 16, "params_M": 0.32},
            "resnet32x4": {"macs_M": 1083, "params_M": 7.4}, "wrn_40_2": {"macs_M": 327, "params_M": 2.25},
            "resnet8x4": {"macs_M": 177, "params_M": 1.2}, "shufflenetv2": {"macs_M": 44.5, "params_M": 1.4},
            "wrn_16_2": {"macs_M": 101, "params_M": 0.70}, "wrn_40_1": {"macs_M": 83, "params_M": 0.57},
            "mobilenetv2_x2": {"macs_M": 22, "params_M": 2.4}},
        "tiny_imagenet": {
            "resnet10_l": {"macs_M": 255, "params_M": 1.28}, "resnet10": {"macs_M": 1013, "params_M": None},
            "resnet18": {"macs_M": 2221, "params_M": 11.27}, "resnet34": {"macs_M": 4637, "params_M": 21.38},
            "resnet10_xxs": {"macs_M": None, "params_M": 0.015}, "resnet10_xs": {"macs_M": 12, "params_M": 0.031},
            "resnet10_s": {"macs_M": 16, "params_M": 0.090}, "resnet10_m": {"macs_M": 64, "params_M": 0.333}},
    },
    # Table 3 (large capacity mismatch, ResNet10 family): (dataset, "teacher:student") ->
    # top-1 % of the CE teacher and of the CE / KD / DiSK students (mean of 3 trials, Sec. 4).
    # OCR lost decimal points in some Tiny-ImageNet cells ("1744" = 17.44, "3743" = 37.43,
    # "4474" = 44.74, "1796" = 17.96, "3737" = 37.37, "375" = 37.5, "1891" = 18.91, "3425" =
    # 34.25, "5495" = 54.95, "3393" = 33.93); each restored from the row's Gain column.
    "table3": {
        # CIFAR-100, teacher Resnet10-l (71.99)
        ("cifar100", "resnet10_l:resnet10_xxs"): {"teacher": 71.99, "ce": 32.05, "kd": 32.64, "disk": 37.56},
        ("cifar100", "resnet10_l:resnet10_s"): {"teacher": 71.99, "ce": 52.16, "kd": 54.92, "disk": 58.14},
        ("cifar100", "resnet10_l:resnet10_m"): {"teacher": 71.99, "ce": 65.24, "kd": 66.96, "disk": 70.03},
        # CIFAR-100, teacher Resnet10 (75.25)
        ("cifar100", "resnet10:resnet10_xxs"): {"teacher": 75.25, "ce": 32.05, "kd": 34.25, "disk": 37.84},
        ("cifar100", "resnet10:resnet10_s"): {"teacher": 75.25, "ce": 52.16, "kd": 54.95, "disk": 58.36},
        ("cifar100", "resnet10:resnet10_m"): {"teacher": 75.25, "ce": 65.24, "kd": 67.27, "disk": 70.15},
        # CIFAR-100, teacher Resnet18 (76.56)
        ("cifar100", "resnet18:resnet10_xxs"): {"teacher": 76.56, "ce": 32.05, "kd": 34.16, "disk": 37.8},
        ("cifar100", "resnet18:resnet10_s"): {"teacher": 76.56, "ce": 52.16, "kd": 55.76, "disk": 58.11},
        ("cifar100", "resnet18:resnet10_m"): {"teacher": 76.56, "ce": 65.24, "kd": 68.09, "disk": 69.86},
        # CIFAR-100, teacher Resnet34 (80.46)
        ("cifar100", "resnet34:resnet10_xxs"): {"teacher": 80.46, "ce": 32.05, "kd": 33.93, "disk": 37.78},
        ("cifar100", "resnet34:resnet10_s"): {"teacher": 80.46, "ce": 52.16, "kd": 54.19, "disk": 58.02},
        ("cifar100", "resnet34:resnet10_m"): {"teacher": 80.46, "ce": 65.24, "kd": 66.78, "disk": 69.89},
        # Tiny-ImageNet, teacher Resnet10-l (52.14)
        ("tiny_imagenet", "resnet10_l:resnet10_xxs"): {"teacher": 52.14, "ce": 17.44, "kd": 17.59, "disk": 18.62},
        ("tiny_imagenet", "resnet10_l:resnet10_s"): {"teacher": 52.14, "ce": 34.65, "kd": 35.77, "disk": 37.43},
        ("tiny_imagenet", "resnet10_l:resnet10_m"): {"teacher": 52.14, "ce": 44.74, "kd": 46.01, "disk": 48.03},
        # Tiny-ImageNet, teacher Resnet10 (56.04)
        ("tiny_imagenet", "resnet10:resnet10_xxs"): {"teacher": 56.04, "ce": 17.44, "kd": 17.96, "disk": 18.55},
        ("tiny_imagenet", "resnet10:resnet10_s"): {"teacher": 56.04, "ce": 34.65, "kd": 36.11, "disk": 37.37},
        ("tiny_imagenet", "resnet10:resnet10_m"): {"teacher": 56.04, "ce": 44.74, "kd": 46.08, "disk": 48.19},
        # Tiny-ImageNet, teacher Resnet18 (62.48)
        ("tiny_imagenet", "resnet18:resnet10_xxs"): {"teacher": 62.48, "ce": 17.44, "kd": 17.47, "disk": 18.53},
        ("tiny_imagenet", "resnet18:resnet10_s"): {"teacher": 62.48, "ce": 34.65, "kd": 35.59, "disk": 37.5},
        ("tiny_imagenet", "resnet18:resnet10_m"): {"teacher": 62.48, "ce": 44.74, "kd": 45.91, "disk": 47.7},
        # Tiny-ImageNet, teacher Resnet34 (63.06)
        ("tiny_imagenet", "resnet34:resnet10_xxs"): {"teacher": 63.06, "ce": 17.44, "kd": 17.67, "disk": 18.91},
        ("tiny_imagenet", "resnet34:resnet10_s"): {"teacher": 63.06, "ce": 34.65, "kd": 35.43, "disk": 37.68},
        ("tiny_imagenet", "resnet34:resnet10_m"): {"teacher": 63.06, "ce": 44.74, "kd": 45.89, "disk": 47.6},
    },
    # Table 4 (small capacity mismatch, CIFAR-100): ("cifar100", "teacher:student") -> top-1 %.
    # Teachers: Resnet32x4 81.45 (OCR "]1.45"); Wide-Resnet-40-2 78.41 (Table 4's cell is
    # garbled "1041"; value from Table 6). Feature-matching columns (FitNet / SemCKD / SimKD)
    # are given where the table has them.
    "table4": {
        ("cifar100", "resnet32x4:resnet8x4"): {"teacher": 81.45, "ce": 73.89, "kd": 76.25, "disk": 76.92, "fitnet": 74.32, "semckd": 76.23, "simkd": 78.08},
        ("cifar100", "resnet32x4:shufflenetv2"): {"teacher": 81.45, "ce": 73.74, "kd": 79.13, "disk": 80.23, "fitnet": 75.82, "semckd": 77.62, "simkd": 78.39},
        ("cifar100", "resnet32x4:wrn_16_2"): {"teacher": 81.45, "ce": 74.26, "kd": 76.28, "disk": 77.67, "fitnet": 74.70, "semckd": 75.65, "simkd": 77.17},
        ("cifar100", "resnet32x4:mobilenetv2_x2"): {"teacher": 81.45, "ce": 69.24, "kd": 76.05, "disk": 77.24, "fitnet": 73.09, "semckd": 73.98, "simkd": 75.43},
        ("cifar100", "wrn_40_2:resnet8x4"): {"teacher": 78.41, "ce": 73.89, "kd": 75.15, "disk": 76.05, "fitnet": 75.02, "semckd": 75.85, "simkd": 76.75},
        ("cifar100", "wrn_40_2:shufflenetv2"): {"teacher": 78.41, "ce": 73.74, "kd": 75.81, "disk": 78.33},
        ("cifar100", "wrn_40_2:wrn_40_1"): {"teacher": 78.41, "ce": 72.81, "kd": 74.44, "disk": 75.92, "fitnet": 74.17, "semckd": 74.4, "simkd": 75.56},
        ("cifar100", "wrn_40_2:mobilenetv2_x2"): {"teacher": 78.41, "ce": 69.24, "kd": 73.92, "disk": 76.32},
    },
    # Table 7 (App. A.6, ImageNet-1K), row "Resnet50 | Resnet18": top-1 %; CE / KD / SemCKD /
    # SimKD are the paper's borrowed baselines (Chen et al., 2022). The table gives no teacher
    # accuracy. (The official code's README reports CE 69.73 / KD 71.29 / DiSK 72.35 for the
    # same pair: not the paper's numbers, not typed here.)
    "table7": {
        ("imagenet2012", "resnet50:resnet18"): {"ce": 70.58, "kd": 71.29, "semckd": 71.41, "simkd": 71.66, "disk": 71.5},
    },
    # Table 8 (App. A.7, CIFAR-100, DiSK inside SimKD). Both rows have teacher Wide-Resnet-40-2
    # (the OCR'd teacher cells are garbled; 78.41 from Table 6); row 1 student Resnet8x4 (its
    # CE..SimKD cells equal Table 4's WRN-40-2 -> Resnet8x4 row; "7713" = 77.13 from Gain 0.38),
    # row 2 student Wide-Resnet-40-1 (Gain "0.6]" = 76.21 - 75.56 = 0.65).
    "table8": {
        ("cifar100", "wrn_40_2:resnet8x4"): {"teacher": 78.41, "ce": 73.89, "kd": 75.15, "disk": 76.05, "fitnet": 75.02, "semckd": 75.85, "simkd": 76.75, "simkd_disk": 77.13},
        ("cifar100", "wrn_40_2:wrn_40_1"): {"teacher": 78.41, "ce": 72.81, "kd": 74.44, "disk": 75.92, "fitnet": 74.17, "semckd": 74.4, "simkd": 75.56, "simkd_disk": 76.21},
    },
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
    # Fig. 5 (Sec. 6.1): bar charts only, no numbers in the text; the caption's and Sec. 6.1's claim.
    ("fig5", "claim"): "ALM-KD equivalent to or better than KD with fixed λ ∈ {0.1, 0.9} "
                       "across teachers/datasets; on CIFAR-100 λ=0.9 performs comparably",
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
LRDS: dict = {
    # The LR+DS paper's own per-cell tables are not in ../shared/papers (the summary gives only
    # "+1-2% over vanilla KD on CIFAR-100 and ImageNet"), so no LR/DS cell is filled in. The KD
    # rows of the same-family CIFAR-100 table carry the vanilla-KD baseline the paper builds on:
    # RepDistiller's table (Tian et al. 2020, KD column), as quoted in ../shared/papers/NOTES.md.
    # Keys: table id -> "teacher:student" -> variant -> top-1 %.
    "cifar100_same_family": {
        "resnet32x4:resnet8x4": {"KD": 73.33},
        "wrn_40_2:wrn_16_2": {"KD": 74.92},
        "resnet56:resnet20": {"KD": 70.66},
        "vgg13:vgg8": {"KD": 72.98},
    },
}

PAPERS = {"rad": RAD, "disk": DISK, "alm": ALM, "lrds": LRDS}
