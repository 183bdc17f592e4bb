"""Nothing is lost on a kill: SIGKILL at random instants, several times in one run, then resume;
`results.json` (every field but timings) and the metrics log equal an uninterrupted run's."""
import zlib

import pytest

from tests import kill_resume as kr

TINY = f"{kr.ROOT}/tests/configs/tiny.py"
# (config, overrides): every runner; checkpoints every 2 steps so kills land mid-epoch.
RUNNERS = {
    "kd": (f"{TINY}:kd", ("--config.train.checkpoint_every_steps=2",)),
}
SLOW_RUNNERS = {
    "ce": (f"{TINY}:ce", ("--config.train.checkpoint_every_steps=2",
                          "--config.train.epochs=4")),
}


def _check(name, config, overrides, tmp_path, kills):
    full, cut = tmp_path / "full", tmp_path / "cut"
    kr.run_with_kills(kr.command(config, full, *overrides), str(full), kills=0, seed=0)
    landed = kr.run_with_kills(kr.command(config, cut, *overrides), str(cut), kills=kills,
                               seed=zlib.crc32(name.encode()))
    assert landed >= 2, f"{name}: only {landed} kills landed before the run finished"
    assert kr.results(cut) == kr.results(full)
    assert kr.logged_steps(cut) == kr.logged_steps(full)


@pytest.mark.parametrize("name", sorted(RUNNERS))
def test_killed_run_resumes_to_the_uninterrupted_result(name, tmp_path):
    _check(name, *RUNNERS[name], tmp_path, kills=3)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SLOW_RUNNERS))
def test_killed_run_resumes_to_the_uninterrupted_result_slow(name, tmp_path):
    _check(name, *SLOW_RUNNERS[name], tmp_path, kills=4)
