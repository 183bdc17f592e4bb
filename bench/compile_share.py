"""A `launch.main` run with JAX's compile events summed: how much of its wall time is tracing,
lowering and XLA compilation (issue 19).

    python bench/compile_share.py --config=experiments/quickstart.py --workdir=/tmp/cs \
        --compilation_cache=

Takes launch.main's flags (an empty --compilation_cache turns the persistent cache off, so
that every compile counts). At exit prints to stderr, one `COMPILE-SHARE` line each: the wall
time, the seconds and event counts of jaxpr tracing, MLIR lowering and XLA backend compiles
(`/jax/core/compile/*_duration`, through a jax.monitoring listener), persistent-cache
retrievals, their total and its share of the wall time; with --json=PATH also as JSON, and
with --names=PATH the functions XLA compiled with their compile counts and seconds (from jax_log_compiles).
"""
from __future__ import annotations

import atexit
import collections
import json
import logging
import os
import re
import sys
import time

from jax import monitoring

EVENTS = {"trace": "/jax/core/compile/jaxpr_trace_duration",
          "lower": "/jax/core/compile/jaxpr_to_mlir_module_duration",
          "compile": "/jax/core/compile/backend_compile_duration",
          "cache_retrieval": "/jax/compilation_cache/cache_retrieval_time_sec"}

_seconds: dict[str, float] = collections.defaultdict(float)
_counts: collections.Counter = collections.Counter()
_start = time.time()
_names: collections.Counter = collections.Counter()
_name_seconds: dict[str, float] = collections.defaultdict(float)


class _CompileNames(logging.Handler):
    """Counts jax_log_compiles' "Compiling <name> ..." records by function name."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        match = re.match(r"Compiling (\S+)", message)
        if match:
            _names[match.group(1)] += 1
        match = (re.match(r"Finished (?:XLA compilation of|jaxpr to MLIR module conversion) "
                          r"(\S+) in ([\d.e+-]+) sec", message)
                 or re.match(r"Finished tracing (\S+) for jit in ([\d.e+-]+) sec", message))
        if match:
            name = match.group(1)
            _name_seconds[name if name.startswith("jit(") else f"jit({name})"] += float(
                match.group(2))


def _listener(event: str, duration: float, **_) -> None:
    _seconds[event] += duration
    _counts[event] += 1


def summary() -> dict:
    """Wall seconds so far and, per kind of compile event, its seconds and count."""
    wall = time.time() - _start
    out = {"wall_s": round(wall, 1)}
    for name, event in EVENTS.items():
        out[f"{name}_s"] = round(_seconds[event], 1)
        out[f"{name}_events"] = _counts[event]
    total = sum(_seconds[e] for e in EVENTS.values())
    out["total_s"] = round(total, 1)
    out["share_of_wall"] = round(total / max(wall, 1e-9), 4)
    return out


def _report(json_path: str | None, names_path: str | None) -> None:
    s = summary()
    if names_path:
        with open(names_path, "w") as f:
            f.write("compiles  seconds (trace + lower + compile)  function\n")
            f.writelines(f"{n:8d} {_name_seconds[name]:8.2f}  {name}\n"
                         for name, n in _names.most_common())
    print(f"COMPILE-SHARE wall {s['wall_s']} s", file=sys.stderr)
    for name in EVENTS:
        print(f"COMPILE-SHARE {name}: {s[name + '_s']} s over {s[name + '_events']} events",
              file=sys.stderr)
    print(f"COMPILE-SHARE total trace+lower+compile {s['total_s']} s = "
          f"{100 * s['share_of_wall']:.1f}% of wall", file=sys.stderr)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(s, f, indent=1)


def main() -> None:
    argv, paths = [], {"json": None, "names": None}
    for arg in sys.argv[1:]:
        key = arg[2:].split("=", 1)[0]
        if key in paths and "=" in arg:
            paths[key] = arg.split("=", 1)[1]
        else:
            argv.append(arg)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    monitoring.register_event_duration_secs_listener(_listener)
    atexit.register(_report, paths["json"], paths["names"])
    if paths["names"]:
        import jax
        jax.config.update("jax_log_compiles", True)
        logger = logging.getLogger("jax")
        logger.setLevel(logging.WARNING)
        logger.addHandler(_CompileNames())
        logger.propagate = False
    from absl import app

    import launch.main as launch_main
    sys.argv = ["launch.main"] + argv
    app.run(launch_main.main, flags_parser=launch_main.parse_flags)


if __name__ == "__main__":
    main()
