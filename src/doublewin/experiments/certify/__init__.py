"""Certified exports: a run's ticket exported by name with its certificate and model card
(named.py finds it, document.py writes the certificate's parts, export.py the folder), and
`doublewin verify`, which checks such a folder anywhere (integrity.py, remeasure.py,
retransfer.py, verify.py; checks.py holds what it reports). docs/certificate.md."""
