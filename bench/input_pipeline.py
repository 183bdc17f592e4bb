"""Input-pipeline throughput: JPEG decode + RandomResizedCrop 224 + flip, images/s (issue 14).

Writes its own synthetic ImageNet-like JPEG folder (--size, default 500x375, smooth colour
fields + noise, quality 90, a few classes), prepares it with `kdjax.data.prepare` into
array_record shards, then measures over the same images:

* plain loop: one Python process, no workers, for each file: read it, PIL-decode the whole
  JPEG (`Image.open(...).convert('RGB')`), draw a RandomResizedCrop(224, scale (0.08, 1),
  ratio (3/4, 4/3)) box (the same torchvision algorithm as the pipeline), `crop` +
  `resize((224, 224), BILINEAR)`, flip w.p. 1/2, `np.asarray`, stack batches of --batch.
* plain loop + draft: the same, decoding with `transforms.Recipe` (PIL `draft` whenever the
  crop still has >= 224 pixels at 1/2, 1/4 or 1/8 scale, and resize with `box=`): what the
  pipeline's per-image work is, in one process.
* grain pipeline, W workers (W in 1, 2, N=cpu count): `GrainLoader` over the records with the
  'imagenet' training recipe (the same per-image work as 'plain loop + draft'), `worker_count=W`
  processes, --threads read threads each, batches of --batch. Also `worker_count=0` with N
  threads in the main process (PIL releases the GIL while decoding and resizing). grain hands
  out batches round-robin over the workers, so the timed window starts once every worker has
  delivered its first batch (after max(W, 1) batches) and covers as many images again as
  there are in the folder less those (the loader runs endless, so the workers are still alive
  when the CPU time is read); the start-up time is printed separately. The plain loops are
  timed over all images (they have no start-up).

* plain loop x N processes: N independent copies of 'plain loop', each over 1/N of the files,
  in parallel processes with no pipeline between them: the most N cores of this machine give
  this work (a VM's cores may share physical cores or memory bandwidth). The pipeline's
  parallel efficiency is its images/s over this ceiling.

Each measurement is repeated --repeats times, interleaved, and the median reported, with the
CPU time per image (this process plus its worker processes, from /proc) next to it: on a
machine shared with other jobs, images/s follows the CPU share the scheduler grants, while CPU
ms/image shows what the pipeline itself costs. The load average is printed before and after. The last line
reads `best pipeline / plain loop: R.RRx` (best pipeline row over the plain full-decode loop);
the line above it gives the ratio over the plain loop with draft.

    python bench/input_pipeline.py            # 1000 images, 3 repeats
    python bench/input_pipeline.py --quick    # 200 images, 1 repeat
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kdjax.data import loader, prepare, transforms  # noqa: E402


def write_jpegs(root: str, n: int, size: tuple[int, int], classes: int = 4) -> list[str]:
    """n synthetic JPEGs (smooth colour fields + noise), in class folders root/train/cK."""
    from PIL import Image
    rng = np.random.default_rng(0)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    files = []
    for i in range(n):
        d = os.path.join(root, "train", f"c{i % classes}")
        os.makedirs(d, exist_ok=True)
        a, b, c = rng.uniform(1, 6, 3)
        img = np.stack([128 + 90 * np.sin(xx / w * a + k) * np.cos(yy / h * b + c * k)
                        for k in range(3)], -1)
        img += rng.normal(0, 12, img.shape)
        path = os.path.join(d, f"{i:05d}.JPEG")
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=90)
        files.append(path)
    for k in range(classes):  # a test split for the prepare reader (unused by the bench)
        os.makedirs(os.path.join(root, "test", f"c{k}"), exist_ok=True)
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(
            os.path.join(root, "test", f"c{k}", "0.JPEG"))
    return sorted(files)


def cpu_seconds() -> float:
    """CPU seconds (user + system) used so far by this process and its live child processes
    (grain's workers), from /proc; NaN where /proc is missing."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    me, total = os.getpid(), 0.0
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return float("nan")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(pid) == me or int(fields[1]) == me:  # fields[1] = ppid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def plain_loop(files: list[str], batch: int, draft: bool) -> tuple[float, float]:
    """(images/s, CPU ms per image) of the single-process loop (see the module docstring)."""
    from PIL import Image
    recipe = transforms.Recipe("imagenet", 224)
    rng = np.random.default_rng(0)
    c0 = cpu_seconds()
    t0 = time.perf_counter()
    out = []
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        if draft:
            arr = recipe(data, rng, True)
        else:
            import io
            pil = Image.open(io.BytesIO(data)).convert("RGB")
            box = transforms.random_resized_box(rng, *pil.size)
            pil = pil.crop(box).resize((224, 224), Image.BILINEAR)
            if rng.random() < 0.5:
                pil = pil.transpose(Image.FLIP_LEFT_RIGHT)
            arr = np.asarray(pil)
        out.append(arr)
        if len(out) == batch:
            np.stack(out)
            out = []
    wall = time.perf_counter() - t0
    return len(files) / wall, 1000 * (cpu_seconds() - c0) / len(files)


def _plain_chunk(args) -> int:
    files, batch = args
    plain_loop(files, batch, draft=False)
    return len(files)


def parallel_plain(pool, files: list[str], batch: int, procs: int) -> float:
    """images/s of `procs` independent plain loops over 1/procs of the files each, in the
    already started processes of `pool` (the machine's ceiling for this work)."""
    chunks = [(files[i::procs], batch) for i in range(procs)]
    t0 = time.perf_counter()
    count = sum(pool.map(_plain_chunk, chunks))
    return count / (time.perf_counter() - t0)


def pipeline(split, batch: int, workers: int, threads: int) -> tuple[float, float, float]:
    """(images/s once every worker is up, CPU ms per image meanwhile (this process and its
    workers), seconds until then) of the grain loader."""
    gl = loader.GrainLoader(split, batch, seed=0, augment=True, drop_remainder=True,
                            process_index=0, process_count=1, worker_count=workers,
                            read_threads=threads, num_epochs=None)  # endless: workers stay up
    timed = max(1, len(split) // batch - max(workers, 1))  # batches in the timed window
    t0 = time.perf_counter()
    it = gl.iterator()
    for _ in range(max(workers, 1)):
        next(it)
    t1, c1 = time.perf_counter(), cpu_seconds()
    count = 0
    for _ in range(timed):
        count += next(it)["image"].shape[0]
    t2, c2 = time.perf_counter(), cpu_seconds()
    it.close()
    return count / (t2 - t1), 1000 * (c2 - c1) / count, t1 - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="200 images, 1 repeat")
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", default="500x375", help="JPEG width x height")
    p.add_argument("--workers", default="", help="comma list (default 1,2,N)")
    p.add_argument("--threads", type=int, default=1, help="read threads per worker")
    p.add_argument("--dir", default="", help="work folder (default: a temp folder)")
    args = p.parse_args()
    n, repeats = (200, 1) if args.quick else (args.images, args.repeats)
    size = tuple(int(v) for v in args.size.split("x"))
    ncpu = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = sorted({int(w) for w in args.workers.split(",")} if args.workers
                     else {1, 2, ncpu})
    root = args.dir or tempfile.mkdtemp(prefix="kdjax_input_bench_")
    files = write_jpegs(os.path.join(root, "jpeg"), n, size)
    mean_kb = np.mean([os.path.getsize(f) for f in files]) / 1024
    t = time.perf_counter()
    prepare.prepare("folder", os.path.join(root, "jpeg"), os.path.join(root, "records"),
                    examples_per_shard=max(1, n // 4), num_workers=min(4, ncpu))
    prep_s = time.perf_counter() - t
    from kdjax.data.records import load_records
    split = load_records(os.path.join(root, "records"))[0]["train"]
    print(f"{n} JPEGs {size[0]}x{size[1]} (mean {mean_kb:.0f} KiB), {ncpu} CPU cores, batch "
          f"{args.batch}, {repeats} repeat(s); prepare: {prep_s:.1f} s; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    rows = {"plain loop": [], "plain loop + draft": []}
    configs = [(w, args.threads) for w in workers] + [(0, ncpu)]
    names = {c: (f"grain, {c[0]} worker(s)" if c[0] else f"grain, in-process {c[1]} threads")
             for c in configs}
    rows.update({names[c]: [] for c in configs})
    starts = {names[c]: [] for c in configs}
    cpu_ms = {k: [] for k in rows}
    ceiling = f"plain loop x {ncpu} processes"
    ceilings = []
    import concurrent.futures
    pool = concurrent.futures.ProcessPoolExecutor(ncpu)
    list(pool.map(_plain_chunk, [(files[:1], 1)] * ncpu))  # start the processes, untimed
    for _ in range(repeats):
        ceilings.append(parallel_plain(pool, files, args.batch, ncpu))
        for key, draft in (("plain loop", False), ("plain loop + draft", True)):
            rate, ms = plain_loop(files, args.batch, draft=draft)
            rows[key].append(rate)
            cpu_ms[key].append(ms)
        for c in configs:
            rate, ms, start = pipeline(split, args.batch, *c)
            rows[names[c]].append(rate)
            cpu_ms[names[c]].append(ms)
            starts[names[c]].append(start)
    med = {k: statistics.median(v) for k, v in rows.items()}
    for k, v in med.items():
        extra = ""
        if k in starts:
            extra = f"   (start-up {statistics.median(starts[k]):.1f} s)"
        print(f"{k:32s} {v:8.1f} images/s  {v / ncpu:7.1f} /core  "
              f"{statistics.median(cpu_ms[k]):6.2f} CPU ms/image{extra}", flush=True)
    pool.shutdown()
    best = max(v for k, v in med.items() if k.startswith("grain"))
    top = statistics.median(ceilings)
    print(f"{ceiling:32s} {top:8.1f} images/s  {top / ncpu:7.1f} /core  (no pipeline: the "
          f"machine's ceiling, {top / med['plain loop']:.2f}x one loop)")
    print(f"best pipeline / that ceiling (parallel efficiency): {best / top:.2f}")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    print(f"best pipeline / plain loop + draft: {best / med['plain loop + draft']:.2f}x")
    print(f"best pipeline / plain loop: {best / med['plain loop']:.2f}x")


if __name__ == "__main__":
    main()
