"""The config every DiSK CNN table starts from: the `disk` section for its KD / DiSK / SimKD
rows and the `ce` section for its CE row (`method='ce'`), whose warm start is DiSK's
(`ce.warm_start_epochs` follows `disk.warm_start_epochs`), so every row trains by one recipe."""
import ml_collections

from experiments import default
from kdjax import config as config_lib


def base() -> ml_collections.ConfigDict:
    c = default.get_config("disk")
    config_lib.mount(c, "ce")
    c.ce.warm_start_epochs = c.disk.get_ref("warm_start_epochs")
    return c
