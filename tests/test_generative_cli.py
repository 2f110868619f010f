"""`simfl generator train | sample | evaluate` end to end on a tiny GAN and real
Fashion-MNIST (a 200-image public split), and the error path without a traceback."""

import numpy as np
import pytest

from simfl.cli import main
from simfl.generative.evaluate import frechet_distance

SCENARIO = "tests/data/generator-scenario.yaml"
TINY = ["--set", "generator.config=tiny", "--set", "task.public_samples=200"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_train_sample_evaluate_through_the_cli(tmp_path, capsys):
    cache = ["--cache-dir", str(tmp_path)]
    assert main(["generator", "train", "--kind", "gan", SCENARIO, *TINY, *cache]) == 0
    out = capsys.readouterr()
    assert "gan-tiny-fashion-mnist-pub200-seed1.pt" in out.out
    assert "gan tiny step 30/30 loss" in out.err  # progress lines go to stderr

    npz = tmp_path / "s.npz"
    assert main(["generator", "sample", "--kind", "gan", SCENARIO, *TINY, *cache, "--per-class", "3",
                 "--classes", "1,7", "--out", str(npz)]) == 0
    data = np.load(npz)
    assert data["images"].shape == (6, 1, 28, 28) and data["images"].dtype == np.uint8
    assert data["labels"].tolist() == [1, 1, 1, 7, 7, 7]

    grid = tmp_path / "grid.png"
    csv = tmp_path / "scores.csv"
    assert main(["generator", "evaluate", "--kind", "gan", SCENARIO, *TINY, *cache, "--n-per-class", "20",
                 "--real-per-class", "50",
                 "--grid", str(grid), "--csv", str(csv)]) == 0
    out = capsys.readouterr().out
    assert "CAS" in out and "FD" in out and "Trouser" in out
    assert grid.stat().st_size > 1000
    import pandas as pd

    scores = pd.read_csv(csv)
    assert set(scores["model"]) == {"real test images", "real test images at 8x8", "gan gan"}
    assert (scores["class"] == "all").sum() == 3
    assert scores["cas"].between(0, 1).all()


def test_missing_generator_is_a_message_not_a_traceback(tmp_path, capsys):
    code = main(["generator", "sample", "--kind", "diffusion", SCENARIO, *TINY, "--cache-dir", str(tmp_path),
                       "--out", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert code == 2
    assert "simfl generator train --kind diffusion" in err and "Traceback" not in err


def test_frechet_distance_of_gaussians_matches_closed_form():
    # N(0, I) vs N(m, 4 I) in d dims: ||m||^2 + d (1 + 4 - 2 * 2) = ||m||^2 + d
    rs = np.random.default_rng(0)
    d, n = 4, 200_000
    a = rs.normal(0, 1, (n, d))
    b = rs.normal(0, 2, (n, d)) + np.array([1.0, 0, 0, 2.0])
    assert frechet_distance(a, b) == pytest.approx(5.0 + d, rel=0.02)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_class_indices_that_are_not_numbers_are_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["generator", "sample", SCENARIO, *TINY, "--cache-dir", str(tmp_path), "--classes", "1,abc",
              "--out", str(tmp_path / "x.npz")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err
    assert "argument --classes: expected comma-separated class indices such as 0,3,7, got '1,abc'" in err
    assert not list(tmp_path.iterdir())  # no generator trained, nothing written
