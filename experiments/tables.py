"""Every table and figure of the four papers, as a sweep the reproduce harness runs.

    python -m launch.reproduce --list
    python -m launch.reproduce --table=disk_table1            # reduced ('cpu') scale
    python -m launch.reproduce --table=rad_fig3_cifar10_resnet --scale=full --parallel=4

Each entry names an experiments/ config file and the argument its get_config receives per scale
('cpu' = the declared reduced version on offline data, 'full' = the paper's setting), the grid
of config overrides to sweep, how --seeds enters, and (for harness-aggregated tables) which
numbers to average and where the paper's number for the same cell lives in
papers/paper_numbers.py. Entries whose config or runner does not exist yet are listed as
'not yet implemented' by --list; nothing is ever filled in for them. The entries of each paper
live beside its configs: experiments/{rad,disk,alm,lrds}/tables.py.
"""
from experiments.alm.tables import ENTRIES as _ALM
from experiments.disk.tables import ENTRIES as _DISK
from experiments.lrds.tables import ENTRIES as _LRDS
from experiments.rad.tables import ENTRIES as _RAD
from kdjax.reproduce.spec import Baseline, Curve, Metric, TableSpec, Verify

_ENTRIES: list[TableSpec] = []


def _add(**kw) -> None:
    _ENTRIES.append(TableSpec(**kw))


# --- the harness's own end-to-end check (CE vs KD; no paper numbers) -------------------------
_add(id="kd_fashion_mnist", paper="kd", kind="figure",
     title="CE vs KD students on Fashion-MNIST (harness check, no paper)",
     config="experiments/reproduce/kd_baseline.py", grid={"method": ("ce", "kd")},
     seeds="grid:seed", default_seeds={"cpu": 3, "full": 3},
     metrics=(Metric("student", "test_accuracy"),
              Metric("teacher", "teacher.test_accuracy")),
     curves=(Curve("student", "history"),), paired=(Baseline("method", "ce"),),
     verify=Verify(seeds=1),
     notes="Built on kdjax.methods.kd (CE and Hinton KD); shows sweep, resume, mean ± std and "
           "curves end to end. No paper cell to compare with.")

# --- Compositions (issue 21): beyond the papers -------------------------------------------
_add(id="compose_active_cpu", paper="compose", kind="figure",
     title="Beyond the papers: selection (uniform / margin / RAD) × retraining loss (KD / KD+LR / "
           "ALM-KD) in RAD's active loop, with a teacher wrong on ~25% of the pool",
     config="experiments/compose/active_retrain.py", args={"cpu": "cpu", "full": "cpu"},
     seeds="count:active.num_trials", default_seeds={"cpu": 8, "full": 8},
     notes="No paper counterpart (papers.rad.compose_active): every arm of a trial shares its "
           "split, teacher and round-0 student; the runner prints the paired all-rounds "
           "differences (95% t-intervals, n).")

_ENTRIES[1:1] = _RAD + _DISK + _ALM + _LRDS   # registry order: harness, papers, compositions
TABLES: dict[str, TableSpec] = {t.id: t for t in _ENTRIES}
if len(TABLES) != len(_ENTRIES):
    raise ValueError("experiments/tables.py: duplicate table ids")
