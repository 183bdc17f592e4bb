"""Every field a kdjax run reads, with defaults: the schema of `kdjax/config.py`.

    python -m launch.main --config=experiments/default.py --workdir=runs/default

Other configs start from it and change a few fields; a field it does not declare is an error.
"""
from kdjax.config import base_config


def get_config(arg: str | None = None):
    del arg
    return base_config()
