"""Plots render headless, as PNG and SVG, with the artists they promise (weightwatch.plot)."""

import json
import warnings
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from helpers import paper_cnn_weights, torch_paper_cnn
from weightwatch import plot, pretrained
from weightwatch.cli import main
from weightwatch.errors import InvalidArgumentError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _headless(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture(scope="module")
def real_history():
    """A real monitor's history (shipped predictors, forecaster, doom model) of a paper CNN trained by Adam at
    learning rate 0.4 whose weights grow, then hold NaN at epoch 3: warned at epoch 1, doomed from epoch 2."""
    from weightwatch.monitor import Monitor

    rng = np.random.default_rng(0)
    base = paper_cnn_weights(rng, scale=0.2)
    # the paper-CNN forecaster and doom model (given by name): a fixed scenario, stopped at epoch 2
    m = Monitor(epochs=6, forecaster=pretrained.EARLY_PREDICTOR, doom_model=pretrained.DOOM_PREDICTOR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for e in range(5):
            w = [x * (1 + 0.1 * e) for x in base]
            if e == 3:
                w[0] = w[0] * np.nan
            m.step(torch_paper_cnn(w), e, optimizer={"kind": "adam", "learning_rate": 0.4})
    return m


def _artists(fig, gid):
    return [a for a in fig.findobj() if getattr(a, "get_gid", lambda: None)() == gid]


def _check_file(path):
    data = path.read_bytes()
    assert len(data) > 1000
    if path.suffix == ".png":
        assert data.startswith(PNG_MAGIC)
    else:
        root = ET.fromstring(data)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        return root
    return None


def _svg_ids(root):
    return {el.get("id") for el in root.iter() if el.get("id")}


def test_history_plot_of_a_real_run(real_history, tmp_path):
    frame = real_history.history_frame()
    assert frame["doomed"].tolist() == [False, False, True, True, False]  # the run this test depends on
    for suffix in (".png", ".svg"):
        out = tmp_path / f"history{suffix}"
        fig = plot.plot_history(frame, out)
        root = _check_file(out)
        band = _artists(fig, "forecast-band")
        assert len(band) == 1
        # the band spans the forecast's interval at every epoch that has one (4 of the 5; epoch 3 is NaN)
        verts = band[0].get_paths()[0].vertices
        assert set(np.round(verts[:, 0], 6)) == {0.0, 1.0, 2.0, 4.0}
        lo = frame["final_lo"].dropna().to_numpy()
        assert np.isclose(verts[:, 1].min(), lo.min())
        stops = _artists(fig, "stop")
        assert len(stops) == 2 and all(s.get_xdata()[0] == 2 for s in stops)  # both panels, first doomed epoch
        doom = _artists(fig, "doom-probability")
        assert len(doom) == 1 and len(doom[0].get_xdata()) == frame["doom_probability"].notna().sum()
        assert _artists(fig, "accuracy-now") and _artists(fig, "status-warning") and _artists(fig, "status-doomed")
        assert "stopped after epoch 2" in fig.axes[0].get_title()
        if root is not None:
            assert {"forecast-band", "stop", "doom-probability"} <= _svg_ids(root)


def test_history_from_csv_json_and_state_dict_agree(real_history, tmp_path):
    frame = real_history.history_frame()
    csv, js, state = tmp_path / "h.csv", tmp_path / "h.json", tmp_path / "state.json"
    frame.to_csv(csv, index=False)
    js.write_text(frame.to_json(orient="records"))
    state.write_text(json.dumps(real_history.state_dict()))
    rows = [plot.read_history(src) for src in (frame, csv, js, state, real_history.history)]
    for r in rows[1:]:
        assert [x["epoch"] for x in r] == [x["epoch"] for x in rows[0]]
        assert [x["doomed"] for x in r] == [x["doomed"] for x in rows[0]]
        np.testing.assert_allclose([np.nan if x["final_hi"] is None else x["final_hi"] for x in r],
                                   [np.nan if x["final_hi"] is None else x["final_hi"] for x in rows[0]])
    assert plot.stop_epoch(rows[0]) == 2


def test_renamed_columns_are_read(tmp_path):
    """The interval's columns may be called final_low / final_high: the band is drawn from either name."""
    hist = [{"epoch": e, "pred_accuracy": 0.2 + 0.1 * e, "pred_final_accuracy": 0.6, "final_low": 0.5,
             "final_high": 0.7, "doom_probability": 0.1, "status": "ok", "doomed": False} for e in range(3)]
    fig = plot.plot_history(hist, tmp_path / "h.png")
    (band,) = _artists(fig, "forecast-band")
    assert np.isclose(band.get_paths()[0].vertices[:, 1].max(), 0.7)
    assert not _artists(fig, "stop") and "not stopped" in fig.axes[0].get_title()


def test_verdict_card(real_history, tmp_path):
    for suffix in (".png", ".svg"):
        out = tmp_path / f"card{suffix}"
        fig = plot.plot_verdict(real_history.history, out)
        root = _check_file(out)
        (headline,) = _artists(fig, "headline")
        assert headline.get_text().startswith("STOPPED after epoch 2")
        (why,) = _artists(fig, "why")
        assert "forecast at 0.185" in " ".join(why.get_text().split())
        (evidence,) = _artists(fig, "evidence")
        text = " ".join(evidence.get_text().split())
        assert "forecast of the final accuracy: 0.185 (interval 0.095-0.275)" in text
        assert "forecast_doomed" in text
        (domain,) = _artists(fig, "domain")
        assert domain.get_text()
        if root is not None:
            assert {"headline", "why", "evidence", "domain"} <= _svg_ids(root)
    # one record: its own card
    ok = plot.plot_verdict(real_history.history[0], tmp_path / "ok.png")
    assert _artists(ok, "headline")[0].get_text().startswith("OK at epoch 0")


def test_zoo_plot_shows_the_metrics(tmp_path):
    rng = np.random.default_rng(3)
    actual = rng.uniform(0.1, 0.95, 300)
    pred = np.clip(actual + rng.normal(0, 0.05, 300), 0, 1)
    for suffix in (".png", ".svg"):
        fig = plot.plot_zoo({"actual": actual, "predicted": pred}, tmp_path / f"zoo{suffix}")
        _check_file(tmp_path / f"zoo{suffix}")
        (points,) = _artists(fig, "points")
        assert len(points.get_offsets()) == 300
        from weightwatch.predictors import evaluate

        m = evaluate(actual, pred)
        (metrics,) = _artists(fig, "metrics")
        assert f"R² {m['r2']:.3f}" in metrics.get_text() and f"Kendall τ {m['kendall_tau']:.3f}" in metrics.get_text()


def test_bad_inputs_are_clear_errors(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"fig\.jpg: plots are written as \.png or \.svg"):
        plot.plot_zoo({"actual": [0.1, 0.5], "predicted": [0.2, 0.4]}, tmp_path / "fig.jpg")
    with pytest.raises(InvalidArgumentError, match="history is empty"):
        plot.plot_history([], tmp_path / "h.png")
    with pytest.raises(InvalidArgumentError, match="needs columns 'actual' and 'predicted'"):
        plot.plot_zoo({"x": [1]}, tmp_path / "z.png")
    (tmp_path / "h.txt").write_text("x")
    with pytest.raises(InvalidArgumentError, match=r"h\.txt: a history is a \.csv or a \.json file"):
        plot.plot_history(tmp_path / "h.txt", tmp_path / "h.png")


def test_plot_command_line(real_history, tmp_path, capsys):
    csv, js = tmp_path / "history.csv", tmp_path / "history.json"
    real_history.history_frame().to_csv(csv, index=False)
    js.write_text(json.dumps(real_history.history))
    assert main(["plot", str(csv), "--out", str(tmp_path / "fig.png")]) == 0
    _check_file(tmp_path / "fig.png")
    assert main(["plot", "verdict", str(js), "--out", str(tmp_path / "card.svg")]) == 0
    assert "headline" in _svg_ids(_check_file(tmp_path / "card.svg"))
    assert main(["plot", str(js), "--out", str(tmp_path / "fig.pdf")]) == 2
    assert "plots are written as .png or .svg" in capsys.readouterr().err


def test_zoo_plot_command_line(tmp_path, capsys):
    """`weightwatch zoo plot` on a real zoo: the shipped predictor (auto) on its final networks, and a GBM fitted
    on the zoo itself (its held-out runs)."""
    from weightwatch.zoo.build import BuildSpec, build_zoo

    spec = BuildSpec(dataset="digits", runs=12, epochs=1, checkpoints=(0, 1), shard_size=12, seed=4)
    zoo = build_zoo(tmp_path / "build", spec, progress=False)["zoo"]
    assert main(["zoo", "plot", zoo, "--out", str(tmp_path / "auto.svg")]) == 0
    root = _check_file(tmp_path / "auto.svg")
    assert {"points", "metrics", "diagonal"} <= _svg_ids(root)
    assert main(["zoo", "plot", zoo, "--predictor", "fit", "--out", str(tmp_path / "fit.png")]) == 0
    _check_file(tmp_path / "fit.png")
    assert main(["zoo", "plot", zoo, "--predictor", "paper-cnn-early-forecast-gbm", "--out",
                 str(tmp_path / "x.png")]) == 2
    assert "forecasts from a run's trajectory" in capsys.readouterr().err
