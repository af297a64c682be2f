"""``campaign phi4-train`` and ``campaign phi4-sample``: a phi^4 diffusion model trained on
an ensemble, and an exact sample from it (independence Metropolis with the flow-map
density, ``campaign.phi4.diffusion``).  Both run inside ``campaign.jobs.ResumableJob``
(lock, fingerprinted checkpoint in ``OUT.parts/``, refusal to overwrite), and a killed run
resumes to the output of an uninterrupted one.

Model file (torch): {"format": MODEL_FORMAT, "net": the ``Phi4Score`` arguments,
"state_dict", "dsm": the training settings, "trained_on": the ensemble's attrs}.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .. import flat_diffusion as fd
from ..errors import CampaignError
from ..jobs import ResumableJob
from ..seeds import seed_from
from .action import Phi4Couplings
from .diffusion import Phi4Score, importance_weights, independence_metropolis

MODEL_FORMAT = "campaign-phi4-score"


@dataclass
class Phi4NetSettings:
    channels: int = 16
    layers: int = 3
    kernel_size: int = 3
    c: float = 1.0  # scale of the N(0, c^2) skip: the untrained model

    def validate(self) -> None:
        if self.channels < 1 or self.layers < 1:
            raise CampaignError(f"channels and layers must be >= 1, got {self.channels}, {self.layers}")
        if self.kernel_size < 1 or self.kernel_size % 2 != 1:
            raise CampaignError(f"kernel size must be odd (centred on the site), got {self.kernel_size}")
        if not (math.isfinite(self.c) and self.c > 0):
            raise CampaignError(f"the skip scale c must be > 0, got {self.c}")


def train(ensemble, out, dsm: fd.DSMSettings, net_settings: Phi4NetSettings, seed: int = 0, *,
          force: bool = False, progress: bool = True) -> Path:
    """Train a ``Phi4Score`` on every configuration of a phi^4 ensemble file."""
    from ..io import read_scalar_ensemble, save_torch_atomic

    dsm.validate()
    net_settings.validate()
    settings = {"dsm": asdict(dsm), "net": asdict(net_settings), "seed": seed}
    with ResumableJob(out, settings, {"ensemble": ensemble}, force=force, label="phi4-train") as job:
        ens = read_scalar_ensemble(ensemble)
        phi = ens["phi"]
        data = phi.reshape(-1, *phi.shape[2:]).double()
        d = data.ndim - 1
        torch.manual_seed(seed_from("phi4-train-init", seed))
        net = Phi4Score(d=d, **asdict(net_settings)).double()
        t0 = time.monotonic()

        def report(step, loss):
            if progress and (step % 100 == 0 or step == dsm.steps):
                print(f"phi4-train: step {step}/{dsm.steps} loss {loss:.4f}", file=sys.stderr)

        losses = fd.train_dsm(net, data, dsm, seed=seed, checkpoint=job.parts / "train.pt", progress=report)
        save_torch_atomic({"format": MODEL_FORMAT, "net": {"d": d, **asdict(net_settings)},
                           "state_dict": net.state_dict(), "dsm": asdict(dsm), "losses": losses,
                           "trained_on": {k: ens["attrs"].get(k) for k in ("kappa", "lam", "shape")},
                           "wall_time_s": time.monotonic() - t0}, out)
        job.finish()
    return Path(out)


def load_model(path) -> tuple[Phi4Score, dict]:
    from ..io import load_torch

    blob = load_torch(path, "phi4 score model")
    if not isinstance(blob, dict) or blob.get("format") != MODEL_FORMAT:
        raise CampaignError(f"{path} is not a phi4 score model (campaign phi4-train)")
    net = Phi4Score(**blob["net"]).double()
    net.load_state_dict(blob["state_dict"])
    net.requires_grad_(False)
    return net, blob


@dataclass
class Phi4SampleSettings:
    kappa: float
    lam: float
    shape: tuple[int, ...]
    configs_per_chain: int
    chains: int = 8
    flow_steps: int = 16
    batch: int = 64  # proposals per checkpointed part
    seed: int = 0

    def validate(self) -> None:
        Phi4Couplings(self.kappa, self.lam)
        for name in ("configs_per_chain", "chains", "flow_steps", "batch"):
            if getattr(self, name) < 1:
                raise CampaignError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(int(n) < 2 for n in self.shape):
            raise CampaignError(f"every lattice extent must be >= 2, got {tuple(self.shape)}")
        if math.prod(self.shape) > 1024:
            raise CampaignError(f"the exact flow density needs the full V x V Jacobian; V = "
                                f"{math.prod(self.shape)} > 1024 is out of reach")


def sample(model, out, s: Phi4SampleSettings, *, force: bool = False, progress: bool = True) -> Path:
    """Independence Metropolis chains driven by the model; writes a scalar ensemble whose
    attrs carry the acceptance and the importance-sampling ESS per proposal."""
    from ..io import load_torch, save_torch_atomic, write_scalar_ensemble

    s.validate()
    with ResumableJob(out, asdict(s), {"model": model}, force=force, label="phi4-sample") as job:
        net, blob = load_model(model)
        if len(s.shape) != blob["net"]["d"]:
            raise CampaignError(f"the model is for d = {blob['net']['d']} lattices, asked for shape {tuple(s.shape)}")
        dsm = blob["dsm"]
        total = s.configs_per_chain * s.chains
        n_parts = math.ceil(total / s.batch)
        t0 = time.monotonic()
        xs, lqs = [], []
        for k in range(n_parts):  # each part has its own seed: a resumed run draws the same proposals
            path = job.parts / f"part_{k:05d}.pt"
            if path.exists():
                part = load_torch(path, "phi4 proposal part")
            else:
                gen = torch.Generator().manual_seed(seed_from("phi4-proposals", k, base=s.seed))
                x, lq = fd.sample_flow(net, tuple(s.shape), s.flow_steps, min(s.batch, total - k * s.batch),
                                       sigma_min=dsm["sigma_min"], sigma_max=dsm["sigma_max"], generator=gen)
                part = {"phi": x, "log_q": lq}
                save_torch_atomic(part, path)
            xs.append(part["phi"])
            lqs.append(part["log_q"])
            if progress:
                print(f"phi4-sample: proposals {min((k + 1) * s.batch, total)}/{total}", file=sys.stderr)
        props = torch.cat(xs).reshape(s.configs_per_chain, s.chains, *s.shape)
        log_q = torch.cat(lqs).reshape(s.configs_per_chain, s.chains)
        c = Phi4Couplings(s.kappa, s.lam)
        chain = independence_metropolis(props, log_q, c,
                                        generator=torch.Generator().manual_seed(seed_from("phi4-imh", base=s.seed)))
        w = importance_weights(props.reshape(total, *s.shape), log_q.reshape(-1), c)
        job.check_count(chain["phi"].shape[0] * chain["phi"].shape[1], total)
        attrs = {"theory": "phi4", "kappa": s.kappa, "lam": s.lam, "shape": list(s.shape),
                 "algorithm": "diffusion-independence-metropolis", "acceptance": chain["acceptance"],
                 "ess_per_proposal": w["ess_per_sample"], "flow_steps": s.flow_steps, "seed": s.seed,
                 "density": "exact flow-map Jacobian", "wall_time_s": time.monotonic() - t0,
                 "independent": False}
        accepted = torch.cat([torch.ones(1, s.chains, dtype=torch.bool), chain["accepted"]])
        write_scalar_ensemble(out, chain["phi"], attrs, history={"accepted": accepted.numpy(),
                                                                 "log_q": log_q.numpy()})
        job.finish()
    return Path(out)
