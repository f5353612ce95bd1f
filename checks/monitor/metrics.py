"""Prometheus text for a running poller (`poll --metrics-port N`), read from its memory at
scrape time: the same states whether or not the history store is up.

Metrics (labels `environment`, `kind`, `name` per check):
    driftwatch_check_up                      1 when the check is ok, else 0
    driftwatch_check_state{state=…}          1 for the check's current state (one of five)
    driftwatch_check_latency_seconds         the newest result's latency
    driftwatch_check_last_run_timestamp_seconds
    driftwatch_environment_up{environment}   1 when every check of it is ok
    driftwatch_drift_findings{environment, severity}
    driftwatch_migrations_pending{environment}, driftwatch_migrations_failed{environment}
    driftwatch_deployment_status{environment, status}   1 for the newest deployment's status
    driftwatch_store_up                      0 while the history store is unreachable
    driftwatch_rounds_total                  rounds run by this poller
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .results import STATES

CHECK_LABELS = ["environment", "kind", "name"]


class PollerCollector:
    """A prometheus_client collector over a Poller's `states` and `results`."""

    def __init__(self, poller: Any) -> None:
        self.poller = poller

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        p = self.poller
        states = dict(p.states)
        results = dict(p.results)
        up = GaugeMetricFamily("driftwatch_check_up", "1 when the check is ok, else 0", labels=CHECK_LABELS)
        state = GaugeMetricFamily("driftwatch_check_state", "1 for the check's current state",
                                  labels=[*CHECK_LABELS, "state"])
        latency = GaugeMetricFamily("driftwatch_check_latency_seconds", "latency of the newest result",
                                    labels=CHECK_LABELS)
        last = GaugeMetricFamily("driftwatch_check_last_run_timestamp_seconds", "when the check last ran",
                                 labels=CHECK_LABELS)
        for key, status in sorted(states.items()):
            labels = list(key)
            up.add_metric(labels, 1.0 if status.state == "ok" else 0.0)
            for s in STATES:
                state.add_metric([*labels, s], 1.0 if status.state == s else 0.0)
            result = results.get(key)
            if result is not None:
                if result.latency_ms is not None:
                    latency.add_metric(labels, result.latency_ms / 1000.0)
                last.add_metric(labels, result.checked_at.timestamp())
        yield from (up, state, latency, last)

        env_up = GaugeMetricFamily("driftwatch_environment_up", "1 when every check of the environment is ok",
                                   labels=["environment"])
        for env in sorted({k[0] for k in states}):
            env_up.add_metric([env], 1.0 if p.environment_state(env) == "ok" else 0.0)
        yield env_up

        findings = GaugeMetricFamily("driftwatch_drift_findings", "drift findings by severity",
                                     labels=["environment", "severity"])
        pending = GaugeMetricFamily("driftwatch_migrations_pending", "migrations not applied",
                                    labels=["environment"])
        failed = GaugeMetricFamily("driftwatch_migrations_failed", "migrations that failed",
                                   labels=["environment"])
        deployment = GaugeMetricFamily("driftwatch_deployment_status", "1 for the newest deployment's status",
                                       labels=["environment", "status"])
        for (env, kind, _name), result in sorted(results.items()):
            detail = result.detail or {}
            if kind == "drift" and isinstance(detail.get("summary"), dict):
                for severity in ("critical", "warning", "info"):
                    findings.add_metric([env, severity], float(detail["summary"].get(severity, 0) or 0))
            elif kind == "migrations":
                if isinstance(detail.get("pending"), list):
                    pending.add_metric([env], float(len(detail["pending"])))
                if isinstance(detail.get("failed"), list):
                    failed.add_metric([env], float(len(detail["failed"])))
            elif kind == "deployment" and detail.get("status"):
                deployment.add_metric([env, str(detail["status"])], 1.0)
        yield from (findings, pending, failed, deployment)

        store = GaugeMetricFamily("driftwatch_store_up", "0 while the history store is unreachable")
        store.add_metric([], 1.0 if p.store_up else 0.0)
        yield store
        rounds = CounterMetricFamily("driftwatch_rounds", "rounds run by this poller")
        rounds.add_metric([], float(p.rounds))
        yield rounds


def serve(poller: Any, port: int, host: str = "127.0.0.1") -> tuple[Any, int]:
    """Serve /metrics for `poller` on host:port (0: any free port) in a daemon thread;
    return (server, the port bound). `server.shutdown()` stops it."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(PollerCollector(poller))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server, int(server.server_port)
