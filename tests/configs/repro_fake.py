"""A fake, instant runner and registry for tests/test_reproduce.py (no jax training).

The runner's "accuracy" is a known function of (variant, seed), so aggregation can be checked
by hand; each call appends a line to $REPRO_FAKE_DIR/calls.txt; with
$REPRO_FAKE_INTERRUPT=<point-ident> the first call of that point raises KeyboardInterrupt
(a killed sweep).
"""
import json
import os

import ml_collections

from kdjax.reproduce.spec import Baseline, Curve, Metric, TableSpec, Verify

ACC = {"a": 0.50, "b": 0.80, "c": 0.60}
BUMP = {"c": 0.02}   # c − a = 0.10 + 0.02·seed²: a paired difference with a spread


def accuracy(variant: str, seed: int) -> float:
    return ACC[variant] + 0.01 * seed + BUMP.get(variant, 0.0) * seed ** 2


def get_config(arg=None):
    c = ml_collections.ConfigDict()
    c.method = "tests.configs.repro_fake:run"
    c.variant = "a"
    c.seed = 0
    c.num_runs = 1
    c.scale_note = "full setting" if arg == "full" else "reduced: fake"
    return c


def run(config, workdir):
    ident = f"{config.variant}{config.seed}"
    base = os.environ["REPRO_FAKE_DIR"]
    marker = os.path.join(base, f"interrupted_{ident}")
    if os.environ.get("REPRO_FAKE_INTERRUPT") == ident and not os.path.exists(marker):
        open(marker, "w").close()
        raise KeyboardInterrupt(f"simulated kill at {ident}")
    with open(os.path.join(base, "calls.txt"), "a") as f:
        f.write(ident + "\n")
    acc = accuracy(config.variant, config.seed)
    os.makedirs(workdir, exist_ok=True)
    result = {"acc": acc, "teacher_queries": 10, "num_runs": config.num_runs,
              "history": [{"epoch": e, "test/accuracy": acc * e / 2} for e in (1, 2)],
              "rows": [{"variant": config.variant, "ours": {"mean": acc, "std": 0.0}}]}
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump(result, f)
    return result


TABLES = {
    "fake_table": TableSpec(
        id="fake_table", paper="fake", kind="figure", title="Fake table",
        config="tests/configs/repro_fake.py", grid={"variant": ("a", "b")}, seeds="grid:seed",
        default_seeds={"cpu": 2, "full": 3},
        metrics=(Metric("acc", "acc", paper=("t1", "{variant}")),),
        curves=(Curve("acc curve", "history"),), verify=Verify()),
    "fake_paired": TableSpec(
        id="fake_paired", paper="fake", title="Fake table with paired differences",
        config="tests/configs/repro_fake.py", grid={"variant": ("a", "b", "c")},
        seeds="grid:seed", default_seeds={"cpu": 3, "full": 3},
        metrics=(Metric("acc", "acc", paper=("t1", "{variant}")),
                 Metric("queries", "teacher_queries", scale=1.0)),
        paired=(Baseline("variant", "a"), Baseline("variant", "b", values=("c",),
                                                   metrics=("acc", "queries"))),
        paper_rows={"variant": {"c": "C-row"}}, verify=Verify(seeds=1)),
    "fake_rows": TableSpec(
        id="fake_rows", paper="fake", title="Fake runner rows",
        config="tests/configs/repro_fake.py", seeds="count:num_runs", verify=Verify(scale="full")),
    "fake_missing": TableSpec(
        id="fake_missing", paper="fake", title="Not written yet",
        config="tests/configs/does_not_exist.py"),
}
