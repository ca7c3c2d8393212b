"""SampleRecords for tests that need records without running a model: every field has a plain default."""

from delegate.records import Delegation, RoleUsage, SampleRecord


def make_record(
    id: int = 0, *, usage: dict[str, RoleUsage] | None = None, delegations: list[Delegation] | None = None, **fields
) -> SampleRecord:
    """A valid record for problem `id`; `usage` may name some roles (the others are zero), `fields` override the rest."""
    defaults = dict(
        dataset="sample/sample",
        question=f"question {id}",
        gold="1",
        strategy="llm",
        response="\\boxed{1}",
        extracted="1",
        extraction_rule="boxed",
        correct=True,
        latency_s=1.0,
        tool_calls=0,
        events={},
        cost_usd=0.0,
        cache_saved_usd=0.0,
        error=None,
        transcript=[],
    )
    return SampleRecord(
        id=id,
        usage={role: (usage or {}).get(role, RoleUsage()) for role in ("llm", "slm")},
        delegations=delegations or [],
        **(defaults | fields),
    )
