"""Every file name doublewin writes, in one place.

No other module spells a file name: a stage writes ``out / paths.WEIGHTS``, the store
``entry / paths.DONE``, the report ``report / paths.figure(name)``. A newcomer looking for
"where does ``metrics.json`` come from" searches for ``METRICS`` and finds every writer and
reader. ``tests/test_layout.py`` keeps it so.
"""

from __future__ import annotations

import os
from pathlib import Path

SAFETENSORS = ".safetensors"  # weights, tickets and cached datasets
# The ``format`` entry of a doublewin safetensors header, so a weights loader can recognise a
# ticket handed to it by mistake (and the other way round).
TICKET_FORMAT = "doublewin-ticket"

# A stage's output folder (a store entry, or the work folder of a standalone command).
WEIGHTS = "weights.safetensors"  # θp written by pretrain
TRAIN_DIR = "train"  # pretrain's training work folder (holds CHECKPOINT)
CHECKPOINT = "checkpoint.pt"  # the engine's per-epoch checkpoint, for resume
LOG = "log.jsonl"  # one JSON record per line
TENSORBOARD_DIR = "tensorboard"  # beside LOG when tensorboard is installed
METRICS = "metrics.json"
BEST_WEIGHTS = {"sa": "best_sa.safetensors", "ra": "best_ra.safetensors"}  # transfer

# The store.
# doublewin export (tickets/export.py): the deployable model, beside WEIGHTS
EXPORT_TICKET = "ticket.safetensors"  # the ticket that was exported
EXPORT_CSR = "csr.safetensors"  # the pruned layers in CSR form (--csr)
EXPORT_ARCHITECTURE = "architecture.json"  # a channel export's layer widths
EXPORT_MODULE = "model.py"  # a channel export's plain torch module definition
EXPORT_SUMMARY = "export.json"  # parameters, bytes, FLOPs, the check's largest difference
# A certified export (experiments/certify): the claim, and the card the Hugging Face Hub shows.
CERTIFICATE = "certificate.json"
MODEL_CARD = "README.md"
CERTIFICATE_SCHEMA = "certificate.schema.json"  # shipped beside tickets/certificate.py

# What a ticket file can be called: doublewin's, and the official torch.save'd state dicts.
TICKET_SUFFIXES = (".safetensors", ".pt", ".pth", ".tar")
HF_CONFIG = "config.json"  # a Hugging Face checkpoint folder, as save_pretrained writes it
HF_WEIGHTS = "model.safetensors"
ROBUSTBENCH_CATALOG = "robustbench_entries.json"  # the entries' architectures, beside models/

STORE_DIR = "store"
SPEC = "spec.json"
DONE = "DONE"  # written last: an entry without it is incomplete
LOCK = ".lock"
LOCK_BREAK = ".lock-break"  # taken while a stale lock is broken (experiments/store/locks.py)
LEASE = "lease.json"  # the lock holder's heartbeat
IMP_TRUNKS_DIR = "imp-trunks"  # IMP trunks shared by every ladder length, under the store

# Tickets and IMP.
IMP_TRUNK_DIR = "imp-trunk"  # a standalone find-tickets run's trunk, under its output
REWIND_STATE = "rewind-state.pt"  # θ after k steps, with rewind_to: step
TICKET_GLOB = f"ticket-*{SAFETENSORS}"  # the tickets of one ladder, as ticket() names them
OFFICIAL_TICKET_SUFFIXES = (".pt", ".pth", ".tar")  # torch state dicts, as the official code saves


def ticket(sparsity: float) -> str:
    """``ticket-0.800000.safetensors``: one ticket of a ladder."""
    return f"ticket-{sparsity:.6f}{SAFETENSORS}"


def network(sparsity: float) -> str:
    """``network-0.800000.safetensors``: the network a SuperTicket of that sparsity brings
    (its shrunk architecture and weights), beside ``ticket(sparsity)``."""
    return f"network-{sparsity:.6f}{SAFETENSORS}"


def search_dir(sparsity: float | None) -> str:
    """``search-0.800000``: the work folder of one SuperTickets search (``search``: the shared
    search of search-then-prune, which prunes nothing)."""
    return "search" if sparsity is None else f"search-{sparsity:.6f}"


SEARCH_STATE = "search-state.pt"  # a SuperTickets search between two phases, for resume


def phase_dir(epoch: int) -> str:
    """``phase-012``: the engine's work folder of the search phase starting at that epoch."""
    return f"phase-{epoch:03d}"


def imp_dir(sparsity: float) -> str:
    """``imp-0.800000``: the IMP trunk search-then-prune prunes one rung's network in."""
    return f"imp-{sparsity:.6f}"


def score_search_checkpoint(sparsity: float) -> str:
    """``search-0.800000.pt``: a HYDRA or HARP score search's per-epoch checkpoint."""
    return f"search-{sparsity:.6f}.pt"


def rung(k: int) -> str:
    """``rung-03.safetensors``: IMP's mask after round ``k`` (1-based)."""
    return f"rung-{k:02d}{SAFETENSORS}"


RUNG_PATTERN = r"rung-(\d+)\.safetensors$"


def imp_round_dir(k: int) -> str:
    """``round-03``: the training work folder of IMP round ``k``."""
    return f"round-{k:02d}"


# The landscape stage (stages/landscape.py).
TRAJECTORY_DIR = "trajectory"  # the transfer run's snapshots, removed once the grid is done
LANDSCAPE_GRID = "landscape.npz"  # loss grids, plane coordinates, projected trajectory
LANDSCAPE_PARTIAL = "landscape-partial.npz"  # the grid rows done so far, for resume
LANDSCAPE_SHARPNESS_PARTIAL = "sharpness-partial.npz"  # the same for the sharpness grid
LANDSCAPE_FIGURE = "landscape.png"  # contours and trajectory
SNAPSHOT_PATTERN = r"step-(\d+)\.safetensors"


def snapshot(step: int) -> str:
    """``step-000120.safetensors``: the plane parameters after ``step`` optimizer steps."""
    return f"step-{step:06d}{SAFETENSORS}"


# A run folder.
EXPERIMENT = "experiment.yaml"  # the resolved experiment
RESULTS = "results.csv"
REPORT_DIR = "report"
SLURM_DIR = "slurm"  # submitit's job files and logs, under the run directory
REPORT_MARKDOWN = "report.md"
REPORT_HTML = "report.html"
FIGURES_DIR = "figures"
FIGURE_SUFFIX = ".png"


def figure(stem: str) -> str:
    """``accuracy-digits-100.png``: a report figure."""
    return f"{stem}{FIGURE_SUFFIX}"


# What the project reads: the images of an ImageFolder tree.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")

# The shipped experiments.
DEMO_CONFIG = "demo.yaml"
QUICK_DEMO_CONFIG = "demo-quick.yaml"
VIT_DEMO_CONFIG = "demo-vit.yaml"


# A standalone command (pretrain) writes W.safetensors from a work folder beside it.
def work_folder(out: Path) -> Path:
    """``W.safetensors.work``: where a standalone command works before its output is moved."""
    return out.with_name(out.name + ".work")


def log_beside(out: Path) -> Path:
    """``W.safetensors.log.jsonl``: the training log kept next to a standalone output."""
    return out.with_name(out.name + "." + LOG)


def cache_dir() -> Path:
    """The cache of generated datasets: ``$DOUBLEWIN_CACHE``, else ``~/.cache/doublewin``."""
    env = os.environ.get("DOUBLEWIN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "doublewin"


def cached_dataset(name: str) -> Path:
    """``<cache>/datasets/<name>.safetensors``: a generated dataset."""
    return cache_dir() / "datasets" / f"{name}{SAFETENSORS}"


def verify_work(certificate_sha256: str) -> Path:
    """``<cache>/verify/<sha>``: the transfers `doublewin verify --transfer` reruns for one
    certificate, kept so an interrupted verification resumes."""
    return cache_dir() / "verify" / certificate_sha256[:16]


def rates_cache() -> Path:
    """``<cache>/rates.json``: the measured speeds of job shapes, per machine (cost estimates)."""
    return cache_dir() / "rates.json"
