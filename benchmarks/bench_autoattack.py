"""AutoAttack against the demo's PGD test attack, on its final dense and ticket models.

After `doublewin demo` (or `doublewin run` of an experiment), this trains again, with the
fine-tuned weights kept, the AT transfers of seed 0 at full data for the dense model and the
IMP ticket on the transferred rung nearest 50%, for each pre-training given, from the run's own store; then
it runs standard AutoAttack (APGD-CE, APGD-T, FAB-T, Square; torchattacks) on the first N test
points and the experiment's PGD test attack on the same points. A PGD RA more than 3 points
above AutoAttack's would mean the PGD numbers overstate robustness (gradient masking).

    python benchmarks/bench_autoattack.py [RUN_DIR] [--points 500] [--pretrainings STD,FAT,AT]
        [--variants]

``--variants`` also prints, on the same points, the test attack with each PGD loss (ce,
margin, ce+margin), with and without early stop: which reading of PGD comes within 3 points.
``--loss`` replaces the test attack's loss (e.g. ``ce+margin``, the per-example worst of both).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import torch

from doublewin.core import paths
from doublewin.core.build import load_spec
from doublewin.data import prepare_data
from doublewin.experiments.run.folder import context_for, make_plan
from doublewin.experiments.run.job import inputs_for
from doublewin.models import load_model
from doublewin.stages import Inputs, run_stage
from doublewin.train import evaluate

GAP = 3.0  # points: PGD RA may exceed AutoAttack RA by at most this much


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", nargs="?", default="runs/demo")
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--pretrainings", default="STD,FAT,AT")
    parser.add_argument("--variants", action="store_true", help="also PGD's loss × early stop")
    parser.add_argument(
        "--loss", choices=("ce", "margin", "ce+margin"), help="the test attack's loss instead"
    )
    args = parser.parse_args()
    run_dir = Path(args.run_dir)
    plan = make_plan(run_dir / paths.EXPERIMENT, run_dir=run_dir)
    context = context_for(plan, device="cpu")
    wanted = args.pretrainings.split(",")
    full = max(plan.experiment.fractions)
    candidates = [
        job
        for job in plan.jobs
        if job.stage == "transfer"
        and job.labels["pretraining"] in wanted
        and job.labels["regime"] == "at"
        and float(job.labels["fraction"]) == full
        and int(job.labels["seed"]) == 0
        and job.labels["method"] in ("dense", "imp")
    ]
    # The IMP ticket on the transferred rung nearest 50% (the paper's moderate sparsity).
    rungs = {float(j.labels["sparsity"]) for j in candidates if j.labels["method"] == "imp"}
    nearest = min(rungs, key=lambda s: abs(s - 0.5)) if rungs else None
    picked = [
        j
        for j in candidates
        if j.labels["method"] == "dense" or float(j.labels["sparsity"]) == nearest
    ]
    print(f"{'model':34}{'PGD RA':>9}{'AutoAttack RA':>15}{'gap':>7}  (first {args.points} points)")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for job in picked:
            spec = dataclasses.replace(job.spec, save_models="best_ra")
            out = Path(tmp) / job.id
            run_stage("transfer", spec, inputs_for(job, context), out, device=torch.device("cpu"))
            attack = spec.eval_attack
            if args.loss:
                attack = dataclasses.replace(attack, loss=args.loss)
            evaluation = load_spec(
                "evaluate",
                {
                    "weights": str(out / paths.BEST_WEIGHTS["ra"]),
                    "data": {"name": spec.data.name, "resolution": spec.data.resolution},
                    # The experiment's whole test attack (loss, restarts, early stop).
                    "attack": {**dataclasses.asdict(attack), "bn_mode": "eval"},
                    "autoattack": args.points,
                    "check_points": 100,
                },
            )  # fmt: skip
            # The fine-tuned ticket's weights hold its zeros: no mask to apply again.
            report = run_stage(
                "evaluate", evaluation, Inputs(weights=out / paths.BEST_WEIGHTS["ra"]), None,
                device=torch.device("cpu"),
            )  # fmt: skip
            pgd, aa = report["pgd_ra_autoattack_points"], report["autoattack_ra"]
            worst = max(worst, pgd - aa)
            name = f"{job.labels['pretraining']} {job.labels['method']} {float(job.labels['sparsity']):.0%}"
            print(f"{name:34}{pgd:>9.2f}{aa:>15.2f}{pgd - aa:>+7.2f}", flush=True)
            if args.variants:
                weights = out / paths.BEST_WEIGHTS["ra"]
                print("    " + _variants(weights, spec, args.points, aa), flush=True)
    verdict = "within" if worst <= GAP else "MORE than"
    print(f"\nlargest PGD − AutoAttack gap {worst:+.2f} points: {verdict} {GAP:g} points")


def _variants(weights: Path, spec, points: int, aa: float) -> str:
    """The test attack with each loss, with and without early stop, on the first points."""
    model, meta = load_model(weights)
    _, _, test, _ = prepare_data(spec.data, resolution_default=meta.input_size, batch_size=points)
    x, y = next(iter(test))
    cells = []
    for loss in ("ce", "margin", "ce+margin"):
        for early_stop in (False, True):
            attack = dataclasses.replace(
                spec.eval_attack, loss=loss, early_stop=early_stop, bn_mode="eval"
            )
            torch.manual_seed(0)
            ra = evaluate(model, [(x[:points], y[:points])], attack=attack)["ra"]
            cells.append(f"{loss}{', early stop' if early_stop else ''} {ra:.2f} ({ra - aa:+.2f})")
    return "; ".join(cells)


if __name__ == "__main__":
    main()
