"""Deduplication and clustering of citizen reports.

``features`` turns one report into small comparable features (text signature, citizen keys,
place cell), ``logic`` decides what a new report is (new, duplicate, the same citizen again,
or one more report of a known problem) and ``state`` keeps the recent reports of each
partition key in a Faust table.
"""
