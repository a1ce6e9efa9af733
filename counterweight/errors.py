"""The error taxonomy and its exit codes.

Every failure a job can report belongs to one of a few kinds, each with its own process exit code so
schedulers (Airflow retries, shell scripts) can tell "fix the config" from "retry later":

====================  ====  =========================================================
kind                  code  meaning
====================  ====  =========================================================
ConfigError             2   invalid configuration: unknown key, wrong type, impossible policy
BadInputError           3   input or artefact at fault: missing path, corrupt model, not a Delta table
ConflictError           4   a concurrent writer changed the table; re-running is safe
TransientError          5   infrastructure hiccup (lost executor, I/O timeout); re-running is safe
ReconciliationError     6   counts do not add up: a bug, never retried automatically
====================  ====  =========================================================

Anything else that escapes a job is an unexpected bug and exits with 1.
"""

from __future__ import annotations


class CounterweightError(Exception):
    """Base class: every error a job reports on purpose."""

    exit_code = 1


class ConfigError(CounterweightError):
    """A configuration value is unknown, of the wrong type, or describes something impossible."""

    exit_code = 2


class BadInputError(CounterweightError):
    """An input file, table or model artefact is missing, unreadable or inconsistent."""

    exit_code = 3


class ConflictError(CounterweightError):
    """Another writer committed to the same table between our read and our commit."""

    exit_code = 4


class TransientError(CounterweightError):
    """A failure that may succeed on retry (lost worker, storage timeout)."""

    exit_code = 5


class ReconciliationError(CounterweightError):
    """Record counts do not reconcile (read != written + quarantined + deduplicated)."""

    exit_code = 6
