"""Web archives as sources: WARC/ARC files, Common Crawl's CC-NEWS months, the Wayback Machine.

Each reader turns archived captures into the same work items a feed gives, carrying their
page bytes, so they go through the one processing path (``ingest.process_items``: extract,
NLP, store) into the one ledger without being fetched again:

* ``reader``: WARC and legacy ARC records from a local file or a URL, streamed (FastWARC
  for WARC; ARC by its one-line record header), with a corrupt gzip member stepped over;
* ``load``: filters (domains, window, language) and the per-file ledger, resumable;
* ``ccnews``: a CC-NEWS month's ``warc.paths.gz`` and its files over HTTP;
* ``wayback``: the CDX index of a feed's captures and each item's raw capture.
"""
