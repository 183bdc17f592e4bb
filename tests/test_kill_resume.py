"""Nothing is lost on a kill: SIGKILL at random instants, several times in one run, then resume;
`results.json` (every field but timings) and the metrics log equal an uninterrupted run's."""
import zlib

import pytest

from tests import kill_resume as kr

TINY = f"{kr.ROOT}/tests/configs/tiny.py"
# (config, overrides): every runner; checkpoints every 2 steps so kills land mid-epoch.
# ce runs in the default suite (no teacher stage: ~4 process starts, ~30 s of CPU on 2 cores).
RUNNERS = {
    "ce": (f"{TINY}:ce", ("--config.train.checkpoint_every_steps=2",)),
    "kd": (f"{TINY}:kd", ("--config.train.checkpoint_every_steps=2",)),
}
_EVERY2 = "--config.train.checkpoint_every_steps=2"
SLOW_RUNNERS = {
    "ce": (f"{TINY}:ce", (_EVERY2, "--config.train.epochs=4")),
    "disk": (f"{TINY}:disk", (_EVERY2, "--config.model.kwargs.hidden=(16,)",
                              "--config.teacher.epochs=2", "--config.train.epochs=2",
                              "--config.disk.warm_start_epochs=1", "--config.disk.top_k=3",
                              "--config.disk.lam_period=2", "--config.disk.delta_period=2",
                              "--config.disk.guide_init_epochs=1")),
    "alm": (f"{TINY}:alm", (_EVERY2, "--config.train.epochs=2", "--config.teacher.epochs=1")),
    "lrds": (f"{TINY}:lrds", (_EVERY2, "--config.lrds.lr.enabled=True",
                              "--config.lrds.ds.enabled=True", "--config.train.epochs=2")),
    "rad": (f"{TINY}:rad", (_EVERY2, "--config.active.num_labeled=300",
                            "--config.active.budget=100", "--config.active.rounds=2",
                            "--config.active.b_uniform=40", "--config.data.num_validation=0",
                            "--config.train.epochs=2")),
}


def _check(name, config, overrides, tmp_path, kills):
    full, cut, cache = tmp_path / "full", tmp_path / "cut", str(tmp_path / "xla")
    kr.run_with_kills(kr.command(config, full, *overrides, cache=cache), str(full), kills=0,
                      seed=0)
    landed = kr.run_with_kills(kr.command(config, cut, *overrides, cache=cache), str(cut),
                               kills=kills, seed=zlib.crc32(name.encode()))
    assert landed >= 2, f"{name}: only {landed} kills landed before the run finished"
    assert kr.results(cut) == kr.results(full)
    assert kr.logged_steps(cut) == kr.logged_steps(full)


# kd: ~113 s on 2 cores (2026-12-03), so `make test-slow`; ce runs by default.
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n == "kd" else n
                                  for n in sorted(RUNNERS)])
def test_killed_run_resumes_to_the_uninterrupted_result(name, tmp_path):
    _check(name, *RUNNERS[name], tmp_path, kills=3)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW_RUNNERS))
def test_killed_run_resumes_to_the_uninterrupted_result_slow(name, tmp_path):
    _check(name, *SLOW_RUNNERS[name], tmp_path, kills=4)
