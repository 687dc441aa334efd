"""Usage history: seats in use, consumptions and refusals per license and feature over time.

The pure parts live here (``buckets``: tiers, merging, compaction; ``recorder``: the
open minute a license actor fills; ``query``: windows, points, CSV); the license actor
(floatkey.actors.license) records and writes, storage/records.py holds the stored shape.
"""
