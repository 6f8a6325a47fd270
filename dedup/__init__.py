"""Dedup transforms (exact, MinHash-LSH, global page-level graph dedup): not built yet.

The PDF pipeline does not remove repeated pages (copyright, licence, cover pages) until the
global page-level dedup lands here.
"""
