"""The Monitor: history in blocks, NaN stops, cancel checks inside long epochs."""

from worker.monitor import MAX_HISTORY
from worker.monitor import BlockHistory
from worker.monitor import Monitor
from worker.monitor import history_block


def test_block_history_keeps_at_most_max_points():
    epochs = 100_000
    history = BlockHistory(history_block(epochs))
    for epoch in range(epochs):
        history.add({"loss": float(epoch)})
    points = history.result()["loss"]
    assert len(points) == MAX_HISTORY
    assert points[0] == sum(range(100)) / 100


def test_block_history_keeps_a_partial_last_block():
    history = BlockHistory(10)
    for epoch in range(25):
        history.add({"loss": float(epoch)})
    assert history.result()["loss"] == [4.5, 14.5, 22.0]


def test_monitor_stops_on_a_non_finite_loss():
    monitor = Monitor(epochs=5, steps_per_epoch=1, on_progress=print, should_stop=lambda: False)
    monitor.epoch_end({"loss": 1.0})
    monitor.epoch_end({"loss": float("nan")})
    assert monitor.stop
    assert monitor.stopped_by == "The loss became nan at epoch 2."


def test_monitor_checks_for_a_cancel_within_a_long_epoch(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("worker.monitor.time.monotonic", lambda: clock[0])
    reports, asked = [], []
    monitor = Monitor(
        epochs=10,
        steps_per_epoch=1000,
        on_progress=reports.append,
        should_stop=lambda: asked.append(1) or True,
    )
    for step in range(10):  # 10 steps of 0.1 s: one check at 0.5 s
        clock[0] += 0.1
        monitor.step_end(step, {"loss": 0.5})
        if monitor.stop:
            break
    assert monitor.stopped_by == "cancelled"
    assert asked == [1]
    assert reports[-1]["step"] == 5 and reports[-1]["epoch"] == 0


def test_monitor_stops_at_its_deadline_within_a_long_epoch(monkeypatch):
    clock = [100.0]
    monkeypatch.setattr("worker.monitor.time.monotonic", lambda: clock[0])
    monitor = Monitor(
        epochs=10,
        steps_per_epoch=1000,
        on_progress=lambda _: None,
        should_stop=lambda: False,
        deadline=102.0,
    )
    for step in range(1000):  # steps of 0.1 s: checks at 0.5 s, 1.0 s, ...
        clock[0] += 0.1
        monitor.step_end(step, {"loss": 0.5})
        if monitor.stop:
            break
    assert monitor.stopped_by == "time_limit"
    assert 2.0 <= clock[0] - 100.0 < 2.0 + 0.5 + 1e-9  # at the first check past the deadline


def test_progress_carries_the_last_epochs_loss_and_metrics():
    reports = []
    monitor = Monitor(epochs=3, steps_per_epoch=1, on_progress=reports.append,
                      should_stop=lambda: False)  # fmt: skip
    monitor.check(step=0, force=True)
    assert reports[-1]["metrics"] == {}  # no epoch has ended yet
    monitor.epoch_end({"loss": 0.5, "mae": 0.25, "val_loss": float("inf")})
    monitor.epoch_end({"loss": 0.25, "mae": 0.125, "val_loss": 0.75})
    monitor.epoch_end({"loss": 0.125, "mae": 0.0625, "val_loss": float("nan")})
    # The last report (forced at the last epoch) has that epoch's own values,
    # named as in the history; JSON carries no NaN: null.
    assert reports[-1]["epoch"] == 3 and reports[-1]["loss"] == 0.125
    assert reports[-1]["metrics"] == {"loss": 0.125, "mae": 0.0625, "val_loss": None}
    assert set(reports[-1]["metrics"]) == set(monitor.history.result())


def test_monitor_sends_the_history_so_far_every_few_seconds(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("worker.monitor.time.monotonic", lambda: clock[0])
    sent = []
    monitor = Monitor(
        epochs=25_000,  # blocks of 25 epochs
        steps_per_epoch=1,
        on_progress=lambda _: None,
        should_stop=lambda: False,
        on_history=sent.append,
    )
    for epoch in range(60):  # an epoch every 0.125 s: 7.5 s
        clock[0] += 0.125
        monitor.epoch_end({"loss": float(epoch), "val_loss": 2.0 * epoch})
    # At the first check (every 0.5 s) once an epoch has ended, then every
    # HISTORY_INTERVAL (2 s), with the partial block's mean as the last point.
    assert [s["epochs_completed"] for s in sent] == [4, 20, 36, 52]
    assert all(s["history_block"] == 25 for s in sent)
    assert sent[0]["history"] == {"loss": [1.5], "val_loss": [3.0]}
    assert sent[3]["history"]["loss"] == [12.0, 37.0, 50.5]
    assert sent[3]["history"]["val_loss"] == [24.0, 74.0, 101.0]
    # The block itself is not closed by a snapshot.
    assert monitor.history.result()["loss"] == [12.0, 37.0, 54.5]


def test_monitor_sends_no_history_before_an_epoch_ends(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr("worker.monitor.time.monotonic", lambda: clock[0])
    sent = []
    monitor = Monitor(
        epochs=2,
        steps_per_epoch=1000,
        on_progress=lambda _: None,
        should_stop=lambda: False,
        on_history=sent.append,
    )
    for step in range(100):  # 10 s inside the first epoch
        clock[0] += 0.1
        monitor.step_end(step, {"loss": 0.5})
    assert sent == []


def test_non_finite_values_are_kept_as_none_for_json():
    history = BlockHistory(1)
    history.add({"loss": 0.5, "val_loss": float("nan")})
    history.add({"loss": 0.25, "val_loss": float("inf")})
    assert history.snapshot() == {"loss": [0.5, 0.25], "val_loss": [None, None]}
    assert history.result() == {"loss": [0.5, 0.25], "val_loss": [None, None]}


def run_job(monkeypatch, *, epochs, steps, step_seconds, compile_seconds, validation_seconds):
    """Fit on a fake clock: the first step and the first epoch's end cost
    ``compile_seconds`` and ``validation_seconds`` more (JIT compiling);
    returns (reports, the clock at each report, the clock at the end)."""
    clock = [0.0]
    monkeypatch.setattr("worker.monitor.time.monotonic", lambda: clock[0])
    reports, times = [], []

    def report(progress):
        reports.append(progress)
        times.append(clock[0])

    monitor = Monitor(epochs=epochs, steps_per_epoch=steps, on_progress=report,
                      should_stop=lambda: False)  # fmt: skip
    for epoch in range(epochs):
        for step in range(steps):
            clock[0] += step_seconds + (compile_seconds if epoch == step == 0 else 0)
            monitor.step_end(step, {"loss": 0.5})
        clock[0] += validation_seconds if epoch == 0 else 0
        monitor.epoch_end({"loss": 0.5})
    return reports, times, clock[0]


def test_the_eta_never_multiplies_the_compile_time(monkeypatch):
    # A 16 s job: 8 epochs of 1,000 steps of 1 ms, after 5 s of compiling
    # the train step and 1 s the validation step. A rate from the start
    # read 5 s / 1 step x 7,999 steps left: over 11 hours at the first report.
    reports, times, end = run_job(monkeypatch, epochs=8, steps=1000, step_seconds=0.001,
                                  compile_seconds=5.0, validation_seconds=1.0)  # fmt: skip
    etas = [
        (r["eta_seconds"], end - t, r["epoch"] * 1000 + r["step"])
        for r, t in zip(reports, times, strict=True)
    ]
    told = [(eta, left) for eta, left, _ in etas if eta is not None]
    # None until a whole epoch after the first has been timed; then close.
    assert [eta for eta, _, steps in etas if steps < 2000] == [None] * 4
    assert len(told) >= 10
    assert all(abs(eta - left) <= 0.01 + 0.05 * left for eta, left in told)
    assert reports[-1]["eta_seconds"] == 0.0


def test_a_one_step_epoch_job_tells_its_eta_from_the_second_epoch(monkeypatch):
    reports, times, end = run_job(monkeypatch, epochs=100, steps=1, step_seconds=0.25,
                                  compile_seconds=3.0, validation_seconds=0.0)  # fmt: skip
    assert [r["eta_seconds"] for r in reports[:1]] == [None]
    told = [(r["eta_seconds"], end - t) for r, t in zip(reports, times, strict=True)
            if r["eta_seconds"] is not None]  # fmt: skip
    assert len(told) > 40
    assert all(abs(eta - left) < 1e-6 for eta, left in told)
