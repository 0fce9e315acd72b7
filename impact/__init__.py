"""Impact analysis: blast radius, redundancy, people, teams, change correlation, priority and
common causes, as pure functions over an index built from ``Store.topology()``.

Entry points: :func:`impact.analysis.analyse_impact` (a store in, an ``ImpactReport`` out),
:func:`impact.propagation.propagate` (the algorithm, over an :class:`impact.index.ImpactIndex`),
:func:`impact.analysis.common_causes` / :func:`impact.analysis.incident_causes`.
See ``docs/impact.md``.
"""
