"""A suggested ITIL priority (impact x urgency) from what a failure affects."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PriorityRules:
    """Thresholds for impact. Defaults suit a mid-size company; tune per deployment."""

    high_users: int = 1000  # this many users affected: high impact
    medium_users: int = 50
    high_services: int = 5  # this many services down: high impact
    top_criticality: int = 1  # a service of this tier (or better) down or degraded: high


@dataclass(frozen=True, slots=True)
class Priority:
    impact: int  # 1 high, 2 medium, 3 low
    urgency: int  # 1 high, 2 medium, 3 low
    priority: int  # 1 (critical) .. 5 (planning)
    label: str  # "P1"
    reason: str


_LEVEL = {1: "high", 2: "medium", 3: "low"}


def suggest_priority(
    *,
    users: int,
    services_down: int,
    services_degraded: int,
    top_tier_hit: bool,
    anything_down: bool,
    anything_degraded: bool,
    planned: bool = False,
    rules: PriorityRules = PriorityRules(),
) -> Priority:
    """The ITIL matrix: priority = impact + urgency - 1.

    Impact counts who and what is hurt; urgency says how hard (down, degraded, at risk). A
    failure entirely inside maintenance windows has low urgency.

    Examples
    --------
    >>> p = suggest_priority(users=1200, services_down=1, services_degraded=0,
    ...                      top_tier_hit=False, anything_down=True, anything_degraded=False)
    >>> p.label, p.reason
    ('P1', 'impact high: 1200 users affected (>= 1000); urgency high: services or users down')
    >>> suggest_priority(users=3, services_down=0, services_degraded=0, top_tier_hit=False,
    ...                  anything_down=False, anything_degraded=False).label
    'P5'
    """
    why: list[str] = []
    if users >= rules.high_users:
        impact = 1
        why.append(f"{users} users affected (>= {rules.high_users})")
    elif top_tier_hit:
        impact = 1
        why.append(f"a tier-{rules.top_criticality} service is down or degraded")
    elif services_down >= rules.high_services:
        impact = 1
        why.append(f"{services_down} services down (>= {rules.high_services})")
    elif services_down or services_degraded or users >= rules.medium_users:
        impact = 2
        why.append(f"{services_down} services down, {services_degraded} degraded, {users} users")
    else:
        impact = 3
        why.append(f"no service down or degraded, {users} users")
    if planned:
        urgency, urgent = 3, "inside planned maintenance"
    elif anything_down:
        urgency, urgent = 1, "services or users down"
    elif anything_degraded:
        urgency, urgent = 2, "degraded, not down"
    else:
        urgency, urgent = 3, "only at risk: redundancy absorbed it"
    priority = impact + urgency - 1
    return Priority(
        impact=impact,
        urgency=urgency,
        priority=priority,
        label=f"P{priority}",
        reason=f"impact {_LEVEL[impact]}: {'; '.join(why)}; urgency {_LEVEL[urgency]}: {urgent}",
    )
