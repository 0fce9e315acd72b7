"""The benchmark harness: a seeded CMDB generator (:mod:`benchmarks.generate`) and
``python -m benchmarks`` (``make bench``), which times every operation against its peers on
the same data in the same run.
"""
