"""Guided exercises (``ledgerlab learn``): one module per exercise, run on the simulator.

Each ``exN_*.py`` defines ``EXERCISE``; :data:`EXERCISES` lists them in order. The answer
to every question is computed from the run it asks about (``facts``), never fixed.
"""

from __future__ import annotations

from scripts.learn import (
    ex1_normal_block,
    ex2_why_3f1,
    ex3_leader_crash,
    ex4_equivocation,
    ex5_partition,
    ex6_block_sync,
    ex7_break_safety,
    ex8_membership,
    ex9_throughput,
)
from scripts.learn.exercise import Answer, AnswerError, Exercise, Run

EXERCISES: tuple[Exercise, ...] = (
    ex1_normal_block.EXERCISE,
    ex2_why_3f1.EXERCISE,
    ex3_leader_crash.EXERCISE,
    ex4_equivocation.EXERCISE,
    ex5_partition.EXERCISE,
    ex6_block_sync.EXERCISE,
    ex7_break_safety.EXERCISE,
    ex8_membership.EXERCISE,
    ex9_throughput.EXERCISE,
)

__all__ = ["EXERCISES", "Answer", "AnswerError", "Exercise", "Run"]
