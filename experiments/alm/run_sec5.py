"""Runs ALM-KD Fig. 4 then Fig. 3 (Sec. 5) in one process, so Fig. 3 reuses the teachers and the
ALM-KD run of Fig. 4 instead of training them again (~15 min on 2 busy CPU cores, 50 seeds).

    python -m experiments.alm.run_sec5 [cpu|full|smoke] [workdir_root]
"""
import importlib.util
import os
import sys
import time

from papers.alm import synthetic as alm_synthetic


def _load(name):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), name)
    spec = importlib.util.spec_from_file_location(name[:-3], path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(arg="cpu", root="runs/alm"):
    t0 = time.time()
    alm_synthetic.run_fig4(_load("sec5_fig4.py").get_config(arg), f"{root}/sec5_fig4_{arg}")
    print(f"fig4 done {time.time() - t0:.0f}s", flush=True)
    alm_synthetic.run_fig3(_load("sec5_fig3.py").get_config(arg), f"{root}/sec5_fig3_{arg}")
    print(f"fig3 done {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
