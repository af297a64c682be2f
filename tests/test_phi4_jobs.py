"""campaign phi4-train / phi4-sample: end to end on a tiny lattice, resume after a kill,
one-line errors."""

import numpy as np
import pytest

from campaign import cli
from campaign import flat_diffusion as fd
from campaign.io import read_scalar_ensemble


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("phi4")
    ens, model = d / "ens.h5", d / "model.pt"
    assert cli.main(["phi4-hmc", "--kappa", "0.15", "--lam", "0.0", "--L", "4", "--configs-per-chain", "8",
                     "--chains", "2", "--therm", "10", "--out", str(ens), "--quiet"]) == 0
    assert cli.main(["phi4-train", "--ensemble", str(ens), "--out", str(model), "--steps", "20", "--batch-size", "8",
                     "--channels", "2", "--layers", "1", "--sigma-max", "10", "--sigma-min", "0.05", "--quiet"]) == 0
    return model


SAMPLE = ["--kappa", "0.15", "--lam", "0.0", "--L", "4", "--configs-per-chain", "5", "--chains", "2",
          "--flow-steps", "3", "--batch", "3", "--quiet"]


def test_sample_writes_an_ensemble_and_resumes_identically(model, tmp_path, monkeypatch, capsys):
    ref = tmp_path / "ref.h5"
    assert cli.main(["phi4-sample", "--model", str(model), "--out", str(ref), *SAMPLE]) == 0
    r = read_scalar_ensemble(ref)
    assert r["phi"].shape == (5, 2, 4, 4)
    assert r["attrs"]["algorithm"] == "diffusion-independence-metropolis"
    assert 0 <= r["attrs"]["acceptance"] <= 1 and 0 < r["attrs"]["ess_per_proposal"] <= 1

    real, calls = fd.sample_flow, []

    def dies_on_third_part(*a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    out = tmp_path / "resumed.h5"
    monkeypatch.setattr(fd, "sample_flow", dies_on_third_part)
    assert cli.main(["phi4-sample", "--model", str(model), "--out", str(out), *SAMPLE]) == 130
    assert not out.exists() and len(list((tmp_path / "resumed.h5.parts").glob("part_*.pt"))) == 2
    monkeypatch.setattr(fd, "sample_flow", real)
    assert cli.main(["phi4-sample", "--model", str(model), "--out", str(out), *SAMPLE]) == 0
    assert np.array_equal(read_scalar_ensemble(out)["phi"].numpy(), r["phi"].numpy())
    capsys.readouterr()
    # a finished output is not overwritten: one line, non-zero exit
    assert cli.main(["phi4-sample", "--model", str(model), "--out", str(out), *SAMPLE]) == 1
    err = capsys.readouterr().err.strip()
    assert "exists already" in err and len(err.splitlines()) == 1


def test_user_errors_are_one_line(model, tmp_path, capsys):
    bad = tmp_path / "not_a_model.pt"
    bad.write_text("junk")
    assert cli.main(["phi4-sample", "--model", str(bad), "--out", str(tmp_path / "o.h5"), *SAMPLE]) == 1
    assert cli.main(["phi4-sample", "--model", str(model), "--out", str(tmp_path / "o3.h5"),
                     *SAMPLE[:6], "--dims", "3", *SAMPLE[6:]]) == 1
    assert cli.main(["phi4-train", "--ensemble", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "m.pt")]) == 1
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 3 and all(ln.startswith("campaign phi4-") for ln in lines), lines
