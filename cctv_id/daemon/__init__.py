"""The live monitoring daemon (``cctv-id monitor``): cameras watched continuously, hits stored
and alerted as they happen."""
