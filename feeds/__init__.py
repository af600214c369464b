"""Sequenced feeds: the hub, its in-process and Redis backends, and price state.

Empty until the feed issues land; the package exists so the layout shows the design
(DESIGN.md: web -> auction -> feeds).
"""
