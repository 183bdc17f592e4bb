"""Every bad input of docs/errors.md gets exactly the one line the doc shows."""
import os
import subprocess
import sys

import pytest

from tests import bad_inputs


@pytest.mark.parametrize("case", [c for c in bad_inputs.CASES if c.attempt is not None],
                         ids=lambda c: c.what)
def test_message(case, tmp_path):
    message = bad_inputs.message_of(case, tmp_path)
    assert bad_inputs.matches(message, case.message), message


def test_the_entry_point_prints_one_line_and_no_traceback(tmp_path):
    root = os.path.dirname(bad_inputs.DOC)[: -len("/docs")]
    by_cli = {c.cli: c for c in bad_inputs.CASES}
    for cli, args in [("`--config.train.epoch=3`", ["--config.train.epoch=3"]),
                      ("`--config.loss.kd_weight=1.5`", ["--config.loss.kd_weight=1.5"]),
                      ("`--config=experiments/nosuch.py`", None)]:
        config = "experiments/nosuch.py" if args is None else "tests/configs/tiny.py"
        out = subprocess.run([sys.executable, "-m", "launch.main", f"--config={config}",
                              f"--workdir={tmp_path / 'w'}", *(args or [])], cwd=root,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 1
        assert "Traceback" not in out.stderr, out.stderr
        last = out.stderr.strip().splitlines()[-1]
        assert bad_inputs.matches(last, f"error: {by_cli[cli].message}"), last


def test_the_doc_lists_every_case():
    with open(bad_inputs.DOC) as f:
        assert f.read() == bad_inputs.render(), "run `python -m tests.bad_inputs`"
