"""Typed, frozen, strict views of ``params.yaml``, one module per section.

A stage imports only the section modules it reads, so editing one section's schema reruns only
the stages that read that section. The whole file is still checked before any stage computes
(:mod:`actmatch.check`, run by :func:`actmatch.core.stage.run_stage`): a typo in a section a
stage does not read fails too, naming the key path and the allowed values.

This ``__init__`` imports nothing, so that importing one section does not import the others.
"""
