"""Optional MLflow export (``[tracking] mlflow = true``, extra ``autoresearch[mlflow]``).

Each experiment that reaches a terminal status becomes an MLflow run in the experiment
``autoresearch/TAG`` (or ``[tracking] experiment``): params (description, proposer,
commit, parent, attempt), metrics (every finite metric of the experiment), tags (status,
reason, campaign, experiment id), and the diff and log tail as artifacts. The tracking URI
is ``[tracking] uri``, else the user's ``MLFLOW_TRACKING_URI``, else an SQLite store in the
arena's ``.autoresearch/mlflow.db``; a local store keeps its artifacts under
``.autoresearch/mlflow-artifacts/TAG`` (never ``./mlruns`` in the current directory).

It runs in a thread of its own with its own ledger connection, so a slow or broken
tracking server never slows or stops the campaign: failures are reported as notes and the
campaign goes on. Export is idempotent (runs are tagged with the campaign and experiment
id), and on start every terminal experiment not yet exported is sent, so a resumed
campaign catches up.
"""

from __future__ import annotations

import math
import queue
import threading
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError
from .store.ledger import Ledger

TAG_CAMPAIGN = "autoresearch.campaign"
TAG_EXPERIMENT = "autoresearch.experiment"


def require_mlflow() -> Any:
    try:
        import mlflow
    except ImportError:
        raise ConfigError("[tracking] mlflow = true needs MLflow: pip install 'autoresearch[mlflow]' "
                          "(or mlflow-skinny), or turn it off") from None
    return mlflow


class MlflowExporter:
    def __init__(self, ledger_path: Path, tag: str, *, uri: str | None, experiment: str | None,
                 note: Callable[[str], None] = lambda s: None):
        self.mlflow = require_mlflow()
        self.ledger_path, self.tag, self.note = ledger_path, tag, note
        self.uri = uri
        self.experiment_name = experiment or f"autoresearch/{tag}"
        self.queue: queue.Queue[int | None] = queue.Queue()
        self.exported: set[int] = set()
        self.failed = False
        self.thread = threading.Thread(target=self._main, name="mlflow", daemon=True)

    def start(self) -> "MlflowExporter":
        self.thread.start()
        return self

    def submit(self, experiment_id: int) -> None:
        self.queue.put(experiment_id)

    def close(self, timeout: float = 60.0) -> None:
        """Send what is queued (waiting at most ``timeout``), then stop."""
        self.queue.put(None)
        self.thread.join(timeout)

    # -- the export thread ------------------------------------------------------------------
    def _main(self) -> None:
        ledger = None
        try:
            client = self._client()
            ledger = Ledger(self.ledger_path)
            campaign = ledger.campaign(self.tag)
            assert campaign is not None
            exp_id = self._experiment_id(client)
            for run in client.search_runs([exp_id], filter_string=f"tags.`{TAG_CAMPAIGN}` = '{self.tag}'", max_results=50000):
                self.exported.add(int(run.data.tags.get(TAG_EXPERIMENT, -1)))
            for e in ledger.experiments(campaign):  # catch up after a resume
                if e.status.terminal and e.status.value != "interrupted" and e.id not in self.exported:
                    self._export(client, exp_id, ledger, campaign, e.id)
            while True:
                item = self.queue.get()
                if item is None:
                    return
                if item not in self.exported:
                    self._export(client, exp_id, ledger, campaign, item)
        except Exception as e:  # never the campaign's problem
            self.failed = True
            self.note(f"MLflow export stopped: {type(e).__name__}: {str(e)[:300]}")
        finally:
            if ledger is not None:
                ledger.close()

    def _client(self) -> Any:
        return self.mlflow.tracking.MlflowClient(tracking_uri=self.tracking_uri())

    def tracking_uri(self) -> str:
        """``[tracking] uri``, else the user's MLFLOW_TRACKING_URI, else a store in the arena's
        ``.autoresearch/`` (MLflow's own default is ``./mlruns`` wherever the harness was started)."""
        import os

        if self.uri:
            return self.uri
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        return f"sqlite:///{self.ledger_path.parent / 'mlflow.db'}"

    def _experiment_id(self, client: Any) -> str:
        found = client.get_experiment_by_name(self.experiment_name)
        if found is not None:
            return found.experiment_id
        return client.create_experiment(self.experiment_name, artifact_location=self._artifacts())

    def _artifacts(self) -> str | None:
        """Where a local store keeps artifacts: under ``.autoresearch/`` too (a local store's
        default is ``./mlruns`` in the current directory). A tracking server decides itself."""
        scheme = self.tracking_uri().split(":", 1)[0] if ":" in self.tracking_uri() else "file"
        if scheme not in ("sqlite", "file"):
            return None
        path = self.ledger_path.parent / "mlflow-artifacts" / self.tag
        path.mkdir(parents=True, exist_ok=True)
        return path.as_uri()

    def _export(self, client: Any, exp_id: str, ledger: Ledger, campaign: Any, experiment_id: int) -> None:
        e = ledger.experiment(campaign, experiment_id)
        if e is None or not e.status.terminal:
            return
        tags = {TAG_CAMPAIGN: self.tag, TAG_EXPERIMENT: str(e.id), "status": e.status.value,
                "reason": e.reason[:4000], "mlflow.runName": f"#{e.id} {e.description}"[:250]}
        run = client.create_run(exp_id, tags=tags)
        rid = run.info.run_id
        params = {"description": e.description[:6000], "proposer": e.proposer, "commit": e.commit or "",
                  "parent": e.parent or "", "attempt": e.attempt}
        for k, v in params.items():
            client.log_param(rid, k, v)
        metrics = {k: v for k, v in e.metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        if e.metric is not None and math.isfinite(e.metric):
            metrics[campaign.metric] = e.metric
        for k, v in metrics.items():
            client.log_metric(rid, k, float(v))
        if e.tokens:
            client.log_metric(rid, "tokens", float(e.tokens))
            client.log_metric(rid, "cost_usd", float(e.cost))
        if e.diff:
            client.log_text(rid, e.diff, "diff.patch")
        runs = ledger.runs(campaign, e.id)
        if runs and runs[-1]["log_tail"]:
            client.log_text(rid, runs[-1]["log_tail"], "log_tail.txt")
        client.set_terminated(rid, status="FINISHED" if e.status.value in ("keep", "discard") else "FAILED")
        self.exported.add(e.id)
