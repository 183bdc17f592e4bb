"""Imported at start-up by every Python process whose PYTHONPATH names this folder (the processes
`tests/test_rehearse_full.py` starts through `launch.main --multihost`): with
KDJAX_TEST_MOCK_TFDS=N set, TFDS serves N fabricated examples per split of every builder
(`tfds.testing.mock_data`, the builder's own feature spec), as the in-process tests do."""
import os

if os.environ.get("KDJAX_TEST_MOCK_TFDS"):
    import tensorflow_datasets as tfds

    _MOCK = tfds.testing.mock_data(num_examples=int(os.environ["KDJAX_TEST_MOCK_TFDS"]))
    _MOCK.__enter__()
