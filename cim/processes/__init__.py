"""OGC API – Processes in the core: process descriptions (:mod:`.process`, :mod:`.catalog`), input
validation and execution (:mod:`.execute`), jobs kept in the store (:mod:`.jobs`) and their runner
(:mod:`.runner`). The analyses themselves are in :mod:`cim.analysis`."""

from cim.processes.catalog import get_process, processes
from cim.processes.jobs import FINISHED, STATUSES, Job, JobQuery, JobStatus, JobStore, NoSuchJob, ResultNotReady
from cim.processes.process import PROCESS_IDS, InvalidInput, NoSuchProcess, Process, Progress, no_progress

__all__ = [
    "FINISHED",
    "PROCESS_IDS",
    "STATUSES",
    "InvalidInput",
    "Job",
    "JobQuery",
    "JobStatus",
    "JobStore",
    "NoSuchJob",
    "NoSuchProcess",
    "Process",
    "Progress",
    "ResultNotReady",
    "get_process",
    "no_progress",
    "processes",
]
