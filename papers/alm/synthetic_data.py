"""ALM-KD Sec. 5 synthetic data: make_classification, 14 features, 20 classes, 8100 / 900 / 1000
train / val / test, 10% of the training labels flipped to a different uniformly drawn class
(val / test clean); optionally (OURS, `n_select`) a fourth clean split for choosing the
hyper-parameters of issue 20's variants. Standardised with the training split's statistics."""
from __future__ import annotations

import ml_collections
import numpy as np
from sklearn.datasets import make_classification


def default_data_config() -> ml_collections.ConfigDict:
    """make_classification arguments; the paper fixes only features, classes and split sizes."""
    return ml_collections.ConfigDict(dict(
        n_features=14, n_classes=20, n_train=8100, n_val=900, n_test=1000, flip_frac=0.1,
        n_informative=10, n_redundant=2, n_repeated=0, n_clusters_per_class=1, class_sep=1.0,
        standardize=True,
        n_select=0))  # OURS (issue 20): clean points drawn after the test split, for choosing
    #                   the variants' hyper-parameters (neither meta-validation nor test);
    #                   0 = the paper's three splits, the same draws as before


def make_data(seed: int, d: ml_collections.ConfigDict) -> dict[str, np.ndarray]:
    """One synthetic data set; labels of exactly round(flip_frac·n_train) train points flipped."""
    if d.n_classes * d.n_clusters_per_class > 2 ** d.n_informative:
        raise ValueError("make_classification needs n_classes·n_clusters_per_class <= "
                         f"2**n_informative, got {d.n_classes}·{d.n_clusters_per_class} > "
                         f"2**{d.n_informative}")
    n_sel = int(d.get("n_select", 0))
    n = d.n_train + d.n_val + d.n_test + n_sel
    x, y = make_classification(
        n_samples=n, n_features=d.n_features, n_informative=d.n_informative,
        n_redundant=d.n_redundant, n_repeated=d.n_repeated, n_classes=d.n_classes,
        n_clusters_per_class=d.n_clusters_per_class, class_sep=d.class_sep, flip_y=0.0,
        shuffle=True, random_state=seed)
    x, y = x.astype(np.float32), y.astype(np.int32)
    tr, va = slice(0, d.n_train), slice(d.n_train, d.n_train + d.n_val)
    te = slice(d.n_train + d.n_val, d.n_train + d.n_val + d.n_test)
    if d.standardize:
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-6
        x = (x - mu) / sd
    rng = np.random.default_rng(seed + 10_000)
    flipped = np.zeros(d.n_train, bool)
    flipped[rng.choice(d.n_train, int(round(d.flip_frac * d.n_train)), replace=False)] = True
    y_tr = y[tr].copy()
    y_tr[flipped] = (y_tr[flipped] + rng.integers(1, d.n_classes, flipped.sum())) % d.n_classes
    out = dict(x_train=x[tr], y_train=y_tr, y_train_clean=y[tr], flipped=flipped,
               x_val=x[va], y_val=y[va], x_test=x[te], y_test=y[te])
    if n_sel:
        out["x_select"], out["y_select"] = x[te.stop:], y[te.stop:]
    return out


def make_data_stack(seeds, d) -> dict[str, np.ndarray]:
    sets = [make_data(int(s), d) for s in seeds]
    return {k: np.stack([s[k] for s in sets]) for k in sets[0]}
