"""What a busy machine does to a demo training, with the old thread settings and with the suite's.

A fixed workload (the README job's model, GM-DF at ``scale=demo``: ``--steps`` training steps of
batch 32, each loading its batch in the main process as the demo does, then forward with every
training loss, backward and an Adam step) runs in a fresh subprocess per measurement, so that the
OpenMP environment is read at torch's start. Each thread setting runs with no background load and
with ``--background`` CPU-bound processes that this script starts and stops itself; rounds
interleave the settings so that the other users of a shared machine weigh on all of them alike.
It prints the median seconds, the spread and the ratios, with ``uptime``'s load average:

    python benchmarks/busy_machine.py --background 2 --rounds 3

``--command`` times a whole command line instead (run in a shell from the repository root, with the
setting's environment; the thread counts are then the command's own, as run.py and tests/conftest.py
choose them), e.g. the default test suite idle and beside two CPU-bound processes:

    python benchmarks/busy_machine.py --settings new --background 2 --rounds 1 --command "python -m pytest -q"

Settings (``--settings``):
- ``old``: what the suite did before engine/threads.py: torch's defaults (intra-op = the machine's
  cores, OpenMP's default wait policy, which spins before it sleeps).
- ``new``: the suite's: :func:`engine.threads.apply_threads` (intra-op = the CPU budget of the
  process, one inter-op thread) and ``OMP_WAIT_POLICY=PASSIVE`` as run.py sets it.
- ``one``: one intra-op thread (``threads.intra_op=1``), the choice for a machine known to be shared.
- ``spin``: the new thread counts with OpenMP's spinning wait policy (isolates the wait policy).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SETTINGS = {
    "old": {"env": {}, "threads": None},
    "new": {"env": {"OMP_WAIT_POLICY": "PASSIVE"}, "threads": {}},
    "one": {"env": {"OMP_WAIT_POLICY": "PASSIVE"}, "threads": {"intra_op": 1}},
    "spin": {"env": {"OMP_WAIT_POLICY": "ACTIVE"}, "threads": {}},
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def _burn(parent: int) -> None:
    """A CPU-bound background process; it ends with its parent (also when the parent is killed)."""
    while os.getppid() == parent:
        for _ in range(1_000_000):
            pass


def workload(steps: int, threads: dict | None, experiment: str) -> dict:
    """The measured part, run inside the subprocess: seconds of ``steps`` training steps after one warm-up."""
    import tempfile

    import torch
    from hydra.utils import instantiate
    from train_step import stand_in_trainer  # benchmarks/ is on sys.path when this runs as a script

    from engine.compose import compose_run_config
    from engine.threads import apply_threads

    if threads is not None:
        apply_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"experiment={experiment}", "scale=demo", "data.synthetic.progress=false", "detector.pretrained=null"]
        if experiment.startswith("gmdf"):
            overrides.append("detector.mim.target=pixels")  # no tokenizer training inside the measurement
        cfg = compose_run_config(overrides, Path(tmp))
        torch.manual_seed(0)
        datamodule = instantiate(cfg.data, _convert_="all")
        datamodule.setup("fit")
        model = instantiate(cfg.detector, _convert_="all")
        model._trainer = stand_in_trainer(datamodule)
        model.setup("fit")
        model.train()
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        loader = datamodule.train_dataloader()
        loader.sampler.set_epoch(0)

        def batches():
            while True:
                yield from loader

        source = batches()
        start = None
        for step in range(steps + 1):
            if step == 1:  # the first step warms up allocators
                start = time.perf_counter()
            batch = datamodule.on_after_batch_transfer(next(source), 0)  # as Lightning does after the transfer
            output = model(batch["image"], batch)
            loss, _ = model.combine_losses(output, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}


def _environment(setting: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(SETTINGS[setting]["env"])
    env["PYTHONPATH"] = str(REPO)
    return env


def measure_command(setting: str, command: str) -> dict:
    """Wall seconds of ``command`` (a shell command line, from the repository root); its failure is an error."""
    start = time.perf_counter()
    done = subprocess.run(command, shell=True, cwd=REPO, env=_environment(setting), capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"busy_machine: {command!r} ({setting}) exited {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}")
    return {"seconds": seconds, "intra_op": "own", "inter_op": "own"}


def measure(setting: str, steps: int, experiment: str) -> dict:
    env = _environment(setting)
    request = json.dumps({"steps": steps, "threads": SETTINGS[setting]["threads"], "experiment": experiment})
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", request], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"busy_machine worker ({setting}) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", nargs="+", default=["old", "new", "one"], choices=sorted(SETTINGS))
    parser.add_argument("--background", type=int, default=2, help="CPU-bound processes started for the loaded runs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--experiment", default="gmdf_multidomain")
    parser.add_argument("--command", default=None, help="time this shell command line instead of the training steps")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        request = json.loads(args.worker)
        print(json.dumps(workload(request["steps"], request["threads"], request["experiment"])), flush=True)
        return

    times: dict[tuple[str, int], list[float]] = {}
    what = repr(args.command) if args.command else f"{args.steps} steps of {args.experiment} (demo)"
    print(f"load average before: {load_average()}; {os.cpu_count()} cores; {what}", flush=True)
    for round_ in range(args.rounds):
        for background in (0, args.background):
            burners = [multiprocessing.Process(target=_burn, args=(os.getpid(),), daemon=True) for _ in range(background)]
            for burner in burners:
                burner.start()
            try:
                for setting in args.settings:
                    result = (measure_command(setting, args.command) if args.command
                              else measure(setting, args.steps, args.experiment))
                    times.setdefault((setting, background), []).append(result["seconds"])
                    print(
                        f"round {round_} background={background} {setting:5s}: {result['seconds']:7.2f} s "
                        f"(intra-op {result['intra_op']}, inter-op {result['inter_op']}; load {load_average()})",
                        flush=True,
                    )
            finally:
                for burner in burners:
                    burner.terminate()
                for burner in burners:
                    burner.join()
    print(f"load average after: {load_average()}")
    print("\nsetting background  median s  (min-max)   loaded/unloaded  vs old (same load)")
    for setting in args.settings:
        for background in (0, args.background):
            values = times[(setting, background)]
            median = statistics.median(values)
            unloaded = statistics.median(times[(setting, 0)])
            old = statistics.median(times[("old", background)]) if ("old", background) in times else float("nan")
            print(
                f"{setting:7s} {background:10d} {median:9.2f}  ({min(values):.2f}-{max(values):.2f})"
                f"  {median / unloaded:15.2f}  {median / old:18.2f}"
            )


if __name__ == "__main__":
    main()
