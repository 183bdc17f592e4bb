"""A one-point `launch.reproduce` registry on tests/configs/tiny.py (digits, CE): 20 epochs,
long enough that a failure the tests inject comes first (tests/test_failures_end_the_job.py).

    python -m launch.reproduce --registry=tests.configs.tiny_sweep:TABLES --table=tiny_ce_long
"""
from kdjax.reproduce.spec import Metric, TableSpec

TABLES = {"tiny_ce_long": TableSpec(
    id="tiny_ce_long", paper="none", title="tiny CE, 20 epochs", config="tests/configs/tiny.py",
    args={"cpu": "ce", "full": "ce"}, seeds="grid:seed", default_seeds={"cpu": 1, "full": 1},
    grid={"train.epochs": (20,)}, metrics=(Metric("student", "test_accuracy"),))}
