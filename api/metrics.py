"""Prometheus metrics (prometheus-client), one registry per app so tests can build many apps."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.http_requests = Counter(
            "allin_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.http_latency = Histogram(
            "allin_http_request_duration_seconds", "HTTP request latency", ["method", "route"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.ws_connections = Gauge("allin_ws_connections", "Open WebSocket connections", registry=r)
        self.turns = Counter("allin_turns_total", "Assistant turns", ["modality", "outcome"], registry=r)
        self.turn_latency = Histogram(
            "allin_turn_duration_seconds", "Whole-turn latency", ["modality"], registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.node_latency = Histogram(
            "allin_graph_node_duration_seconds", "Assistant graph node latency", ["node"], registry=r,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.model_errors = Counter("allin_model_errors_total", "Model call errors", ["provider", "kind"], registry=r)
        self.ingest_jobs = Counter("allin_ingest_jobs_total", "Knowledge sync jobs", ["status"], registry=r)
        self.ingest_files = Counter("allin_ingest_files_total", "Knowledge files processed", ["result"], registry=r)
        self.voice_early_stt = Counter(
            "allin_voice_early_stt_total", "Transcriptions started before an utterance ended, by what became of them",
            ["result"], registry=r,
        )
        self.db_up = Gauge("allin_database_up", "1 when the database answers", registry=r)
        self.db_pool_size = Gauge("allin_db_pool_connections", "Pool connections", ["state"], registry=r)
