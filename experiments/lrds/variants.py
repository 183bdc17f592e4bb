"""The LR+DS variants a table sweeps, each one run's config fields (`kdjax.reproduce.sweep.Setting`).

KD, KD+LR, KD+DS and KD+LR+DS switch `lrds.lr.enabled` / `lrds.ds.enabled`; CE is the plain
cross-entropy student (`method='ce'`, no teacher); the ablations change one more field of
KD+LR+DS (η, |D^t|/|D|, the DS scorer, D^t = the lowest-scored fraction); the controls
(`CONTROLS`, [ours]) are KD+DS with a random D^t and KD+LR on the teacher-wrong rows only.
"""
from kdjax.reproduce.sweep import Setting


def variant(label: str, *, lr: bool, ds: bool, **fields) -> Setting:
    """LR / DS on or off, plus `lrds.<field>` overrides given as lr__eta=..., ds__fraction=..."""
    extra = tuple((f"lrds.{k.replace('__', '.')}", v) for k, v in fields.items())
    return Setting(label, (("method", "lrds"), ("lrds.lr.enabled", lr),
                           ("lrds.ds.enabled", ds)) + extra)


CE = Setting("CE", (("method", "ce"),))
KD = variant("KD", lr=False, ds=False)
KD_LR = variant("KD+LR", lr=True, ds=False)
KD_DS = variant("KD+DS", lr=False, ds=True)
KD_LR_DS = variant("KD+LR+DS", lr=True, ds=True)
STANDARD = (KD, KD_LR, KD_DS, KD_LR_DS)
# [ours] controls (issue 20): DS without a score (a uniformly random 80%, seed teacher.seed) and
# LR without the extra label mass on the targets the teacher already had right.
KD_RANDOM = variant("KD+random 80%", lr=False, ds=True, ds__scorer="random")
KD_LR_WRONG = variant("KD+LR (wrong only)", lr=True, ds=False, lr__only_wrong=True)
CONTROLS = (KD_RANDOM, KD_LR_WRONG)


def eta_sweep(etas) -> tuple:
    return tuple(variant(f"KD+LR+DS eta={e:g}", lr=True, ds=True, lr__eta=float(e))
                 for e in etas)


def fraction_sweep(fractions) -> tuple:
    return tuple(variant(f"KD+LR+DS |Dt|={f:g}", lr=True, ds=True, ds__fraction=float(f))
                 for f in fractions)


def scorer_sweep(scorers, lr: bool = True) -> tuple:
    """KD+LR+DS (or, lr=False, KD+DS) with each DS scorer in place of the default."""
    name = "KD+LR+DS" if lr else "KD+DS"
    return tuple(variant(f"{name} ({s})", lr=lr, ds=True, ds__scorer=s) for s in scorers)


LOWEST = (variant("KD+DS (lowest scores)", lr=False, ds=True, ds__lowest=True),
          variant("KD+LR+DS (lowest scores)", lr=True, ds=True, ds__lowest=True))
