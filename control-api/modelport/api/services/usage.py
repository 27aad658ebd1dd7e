"""Usage: runtimes report counters (docs/contracts.md); owners read counts and latencies."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime, timedelta

from modelport.api.context import AppContext
from modelport.api.db.tables import ApiKey, Model, UsageWindow
from modelport.api.schemas import Latency, UsageBucket, UsageReport, UsageSummary, Window
from modelport.api.services.ids import is_id
from modelport.api.services.models import owned
from modelport.api.services.users import Principal
from modelport.core.errors import BadInput, Unauthenticated
from sqlalchemy import select, update
from sqlalchemy.orm import Session

#: Windows the usage endpoint accepts: the width of each bucket and how many buckets there are.
WINDOWS: dict[str, tuple[timedelta, int]] = {
    "1h": (timedelta(minutes=5), 12),
    "24h": (timedelta(hours=1), 24),
    "7d": (timedelta(hours=6), 28),
    "30d": (timedelta(days=1), 30),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def record_report(session: Session, *, ctx: AppContext, token: str, report: UsageReport) -> None:
    """Store one report: the model's token must match; counts add to the model's totals."""
    model = session.get(Model, report.model) if is_id(report.model) else None
    if not _token_ok(ctx, report.model, token) or model is None:
        raise Unauthenticated("invalid usage token")
    if report.window.end < report.window.start:
        raise BadInput("window.end is before window.start")
    if report.requests == 0 and report.errors == 0:
        return
    session.add(
        UsageWindow(
            model_id=model.id,
            window_start=report.window.start,
            window_end=report.window.end,
            requests=report.requests,
            errors=report.errors,
            p50_ms=report.latency_ms.p50,
            p90_ms=report.latency_ms.p90,
            p99_ms=report.latency_ms.p99,
        )
    )
    session.execute(
        update(Model)
        .where(Model.id == model.id)
        .values(
            request_count=Model.request_count + report.requests,
            error_count=Model.error_count + report.errors,
        )
    )
    last_used = report.last_used or report.window.end
    if model.last_used is None or last_used > model.last_used:
        model.last_used = last_used
    if report.by_key:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id.in_(list(report.by_key)), ApiKey.user_id == model.owner_id)
            .values(last_used_at=last_used)
        )
    session.commit()


def _token_ok(ctx: AppContext, model_id: str, token: str) -> bool:
    """The model's own derived token (or the one an earlier release gave it), or the cluster's
    shared usage token (when configured)."""
    own = hmac.compare_digest(ctx.usage_token(model_id).encode(), token.encode())
    legacy = ctx.settings.signing_keys().legacy_usage_token(model_id)
    earlier = hmac.compare_digest(legacy.encode(), token.encode())
    shared = ctx.settings.usage_token
    cluster = shared is not None and hmac.compare_digest(
        shared.get_secret_value().encode(), token.encode()
    )
    return own or earlier or cluster


def summary(session: Session, *, caller: Principal, model_id: str, window: str) -> UsageSummary:
    """Counts and latency percentiles over the last ``window``, with every bucket of it.

    Buckets are aligned to their width (whole hours for ``24h``) and all present, empty ones
    with zero requests and no latency, so a chart has a time axis; the newest is still filling.
    """
    if window not in WINDOWS:
        raise BadInput(f"window must be one of {', '.join(WINDOWS)}", details={"window": window})
    model = owned(session, caller=caller, model_id=model_id)
    width, count = WINDOWS[window]
    end = datetime.now(UTC)
    start = _floor(end, width) + width - width * count
    rows = session.scalars(
        select(UsageWindow)
        .where(UsageWindow.model_id == model.id, UsageWindow.window_end > start)
        .order_by(UsageWindow.window_end)
    ).all()
    groups: list[list[UsageWindow]] = [[] for _ in range(count)]
    for row in rows:
        index = int((row.window_end - start) / width)
        groups[min(max(index, 0), count - 1)].append(row)
    series = [
        UsageBucket(
            start=start + width * i,
            end=min(end, start + width * (i + 1)),
            requests=sum(r.requests for r in group),
            errors=sum(r.errors for r in group),
            latency_ms=_combine(group),
        )
        for i, group in enumerate(groups)
    ]
    return UsageSummary(
        model_id=model.id,
        window=Window(start=start, end=end),
        requests=sum(r.requests for r in rows),
        errors=sum(r.errors for r in rows),
        latency_ms=_combine(list(rows)),
        request_count=model.request_count,
        last_used=model.last_used,
        buckets=series,
    )


def _floor(moment: datetime, width: timedelta) -> datetime:
    """The start of the ``width`` bucket (counted from the Unix epoch) that holds ``moment``."""
    return _EPOCH + width * ((moment - _EPOCH) // width)


def _combine(rows: list[UsageWindow]) -> Latency:
    """Request-weighted mean of per-report p50 and p90; the largest p99 (a conservative bound)."""

    def weighted(values: list[tuple[float | None, int]]) -> float | None:
        pairs = [(v, w) for v, w in values if v is not None and w > 0]
        total = sum(w for _, w in pairs)
        return round(sum(v * w for v, w in pairs) / total, 3) if total else None

    p99s = [r.p99_ms for r in rows if r.p99_ms is not None]
    return Latency(
        p50=weighted([(r.p50_ms, r.requests) for r in rows]),
        p90=weighted([(r.p90_ms, r.requests) for r in rows]),
        p99=max(p99s) if p99s else None,
    )
