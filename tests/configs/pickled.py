"""A config a test built and pickled, for `launch.main`:

    python -m launch.main --config=tests/configs/pickled.py:/tmp/x/config.pkl --workdir=...
"""
import pickle


def get_config(arg: str):
    with open(arg, "rb") as f:
        return pickle.load(f)
