"""Every field a kdjax run of one method reads, with defaults: the base of `kdjax/config.py`
and the method's own section (`arg`, default 'kd').

    python -m launch.main --config=experiments/default.py --workdir=runs/default
    python -m launch.main --config=experiments/default.py:disk --config.disk.top_k=3 ...

Other configs start from it (`default.get_config('lrds')`) and change a few fields; a field it
does not declare is an error.
"""
from kdjax.config import base_config


def get_config(arg: str | None = None):
    return base_config(arg or "kd")
